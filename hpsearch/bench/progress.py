"""A status line per study while it runs: trials finished, pruned, best error so far, elapsed."""

from __future__ import annotations

import math
from types import TracebackType
from typing import TYPE_CHECKING, Any

from hpsearch.config.strategy import METRIC, NASWOT_METRIC, reported_list

if TYPE_CHECKING:
    from ray.tune import Callback


class StudyProgress:
    """Rich spinner for one study (nothing when disabled); `callback()` feeds it from Ray Tune.

    Example::

        with StudyProgress("study 1/4: tpe") as progress:
            result = experiment.run(callbacks=[progress.callback()])
            progress.done(result)
    """

    def __init__(self, title: str, enabled: bool = True) -> None:
        self.title = title
        self.enabled = enabled
        self.finished = 0
        self.pruned = 0
        self.scored = 0
        self.best = math.inf
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> StudyProgress:
        if self.enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            self._progress.start()
            self._task = self._progress.add_task(self._line(), total=None)
        return self

    def _line(self, note: str = "") -> str:
        best = f"{self.best:.3g} meV/atom" if math.isfinite(self.best) else "-"
        parts = [f"{self.finished} trials done"]
        if self.pruned:
            parts.append(f"{self.pruned} pruned")
        if self.scored:
            parts.append(f"{self.scored} architectures scored")
        return f"{self.title}: {', '.join(parts)}; best {best}{note}"

    def trial_finished(self, result: dict[str, Any]) -> None:
        """Count a finished trial (its last result) and refresh the line."""
        self.finished += 1
        error = result.get(METRIC)
        if error is not None and math.isfinite(float(error)) and result.get("status", "completed") == "completed":
            self.best = min(self.best, float(error))
        elif NASWOT_METRIC in result and "status" not in result and "naswot_scores" not in result:
            self.pruned += 1
        self.scored += len(reported_list(result.get("naswot_scores")) or [])
        self._update()

    def _update(self, note: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=self._line(note))

    def done(self, result: Any) -> None:
        """The study's final line: retrained winner and compute."""
        final = result.final
        note = ""
        if final is not None:
            note = f"; winner retrained {final.mean:.3g} ± {final.std:.2g} meV/atom"
        self._update(f"{note}; {result.core_seconds:.0f} core-s")

    def callback(self) -> Callback:
        """A Ray Tune callback that feeds this display (pickled without it)."""
        from hpsearch.tune.adapters import TrialEndCallback

        return TrialEndCallback(self.trial_finished)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
