"""Ray Tune seen from plain hpsearch code: callbacks that hand trial events to it, ``report``, ``FINISHED``.

Outside :mod:`hpsearch.tune` and :mod:`hpsearch.parallel` no module imports Ray: MLflow mirroring
(:class:`hpsearch.tracking.mirror.StudyMirror`) and progress displays take plain calls, and these
adapters turn Tune's callback protocol into them; the conformance suite reports and checks a
searcher's end through the names here.

Example::

    callback = MLflowStudyCallback(tracker)          # a child run per trial
    progress = TrialEndCallback(display.trial_finished)   # a function per finished trial
    tuner = build_tuner(..., callbacks=[callback, progress])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray import tune
from ray.tune import Callback
from ray.tune.search import Searcher

from hpsearch.tracking.mirror import StudyMirror
from hpsearch.tracking.tracker import StudyTracker

__all__ = ["FINISHED", "MLflowStudyCallback", "TrialEndCallback", "report"]

#: What a Tune Searcher's ``suggest`` returns when it has nothing more to suggest.
FINISHED = Searcher.FINISHED


def report(metrics: dict[str, Any]) -> None:
    """Report ``metrics`` from inside a Tune function trainable."""
    tune.report(metrics)


class MLflowStudyCallback(Callback):
    """Child run per trial under the study's parent run (Tune's events -> :class:`StudyMirror`)."""

    def __init__(self, tracker: StudyTracker, flush_interval_s: float = 5.0) -> None:
        self.mirror = StudyMirror(tracker, flush_interval_s)

    @property
    def tracker(self) -> StudyTracker:
        return self.mirror.tracker

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.mirror.trial_started(trial.trial_id, dict(trial.config))

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        self.mirror.trial_result(trial.trial_id, result)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.mirror.trial_recovered(trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.mirror.trial_finished(trial.trial_id, dict(trial.config), dict(trial.last_result or {}), errored=False)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.mirror.trial_finished(trial.trial_id, dict(trial.config), dict(trial.last_result or {}), errored=True)


class TrialEndCallback(Callback):
    """Calls ``on_end(last_result)`` on the driver when a trial ends (``{"status": "failed"}`` when
    it raised); pickled without the function (Tune saves callbacks with its experiment state)."""

    def __init__(self, on_end: Callable[[dict[str, Any]], None] | None) -> None:
        self.on_end = on_end

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.on_end is not None:
            self.on_end(dict(trial.last_result or {}))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.on_end is not None:
            self.on_end({"status": "failed"})

    def __getstate__(self) -> dict[str, Any]:
        return {"on_end": None}
