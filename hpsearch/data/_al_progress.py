"""Progress display of the dataset generator: one bar for snapshots, one for the current step."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class Reporter:
    """Rich progress bars on stderr (or nothing when ``enabled`` is False).

    Example::

        with Reporter(enabled=True, n_snapshots=8) as reporter:
            reporter.step("bands", 3, 32)
            reporter.snapshot_done()
    """

    def __init__(self, enabled: bool, n_snapshots: int) -> None:
        self.enabled = enabled
        self.n_snapshots = n_snapshots
        self._progress: Any = None
        self._overall: Any = None
        self._current: Any = None

    def __enter__(self) -> Reporter:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(stderr=True))
            self._progress.start()
            self._overall = self._progress.add_task("snapshots", total=self.n_snapshots)
            self._current = self._progress.add_task("starting", total=1)
        return self

    def step(self, description: str, completed: int, total: int) -> None:
        """Show the current step and how far it is (e.g. k-points done)."""
        if self._progress is not None:
            self._progress.update(self._current, description=description, completed=completed, total=total)

    def snapshot_done(self) -> None:
        """Advance the snapshot bar by one."""
        if self._progress is not None:
            self._progress.advance(self._overall)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
