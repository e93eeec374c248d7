"""A status line per study while it runs: trials finished, pruned, best error so far, elapsed.

Studies that run at the same time (``--parallel-studies``) share one :class:`ProgressBoard`, one
line each (a terminal holds one live display at a time).
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import TYPE_CHECKING, Any

from hpsearch.config.strategy import LDOS_METRIC, NASWOT_METRIC, OBJECTIVES, reported_list

if TYPE_CHECKING:
    from ray.tune import Callback


class StudyProgress:
    """Rich spinner for one study (nothing when disabled); `callback()` feeds it from Ray Tune.

    Example::

        with StudyProgress("study 1/4: tpe") as progress:
            result = experiment.run(callbacks=[progress.callback()])
            progress.done(result)
    """

    def __init__(self, title: str, enabled: bool = True, board: ProgressBoard | None = None,
                 objective: str = "ldos_mse") -> None:
        self.title = title
        self.metric = OBJECTIVES[objective]  # the line shows what the study selects on
        self.ldos = self.metric == LDOS_METRIC
        self.enabled = enabled
        self.board = board
        self.finished = 0
        self.pruned = 0
        self.scored = 0
        self.best = math.inf
        self.final_note = ""
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> StudyProgress:
        if self.enabled and self.board is not None and self.board.progress is not None:
            self._progress = self.board.progress
            self._task = self._progress.add_task(self._line(), total=None)
        elif self.enabled:
            self._progress = _new_progress()
            self._progress.start()
            self._task = self._progress.add_task(self._line(), total=None)
        return self

    def _line(self, note: str = "") -> str:
        if not math.isfinite(self.best):
            best = "-"
        elif self.ldos:
            best = f"val LDOS RMSE {math.sqrt(self.best):.3g} (scaled)"
        else:
            best = f"{self.best:.3g} meV/atom"
        parts = [f"{self.finished} trials done"]
        if self.pruned:
            parts.append(f"{self.pruned} pruned")
        if self.scored:
            parts.append(f"{self.scored} architectures scored")
        return f"{self.title}: {', '.join(parts)}; best {best}{note}"

    def trial_finished(self, result: dict[str, Any]) -> None:
        """Count a finished trial (its last result) and refresh the line."""
        self.finished += 1
        error = result.get(self.metric)
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
        ldos_rmse = getattr(result, "test_ldos_rmse", None)
        if self.ldos and ldos_rmse is not None:
            spread = getattr(result, "test_ldos_rmse_std", None)
            note = f"; winner retrained: test LDOS RMSE {ldos_rmse:.3g}" + (f" ± {spread:.2g}" if spread else "")
        elif final is not None:
            note = f"; winner retrained {final.mean:.3g} ± {final.std:.2g} meV/atom"
        self.final_note = f"{note}; {result.core_seconds:.0f} core-s"
        self._update(self.final_note)

    def callback(self) -> Callback:
        """A Ray Tune callback that feeds this display (pickled without it)."""
        from hpsearch.tune.adapters import TrialEndCallback

        return TrialEndCallback(self.trial_finished)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._progress is None:
            return
        if self.board is not None and self._progress is self.board.progress:
            self._progress.stop_task(self._task)  # the line stays, its clock stops
        else:
            self._progress.stop()


def _new_progress() -> Any:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())


class ProgressBoard:
    """One live display for studies running at the same time: each :class:`StudyProgress` given
    this board adds its line to it (nothing when disabled).

    Example::

        with ProgressBoard() as board, StudyProgress("study 1/8: tpe", board=board) as progress:
            ...
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.progress: Any = None

    def __enter__(self) -> ProgressBoard:
        if self.enabled:
            self.progress = _new_progress()
            self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()
