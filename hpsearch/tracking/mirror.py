"""Mirror a running study into MLflow: a child run per trial, epoch metrics in batches.

Plain code that knows no Ray: :class:`hpsearch.tune.adapters.MLflowStudyCallback` feeds it
Tune's trial events on the driver (it never blocks the driver: the tracker journals and sends
in the background).
"""

from __future__ import annotations

import math
import time
from typing import Any

from hpsearch.config.strategy import LDOS_METRIC, METRIC, NASWOT_METRIC, STD_METRIC, finite_or_none, reported_list
from hpsearch.tracking.tracker import StudyTracker, TrialRecord

_EPOCH_KEYS = ("epoch", "train_loss", "val_loss")


def trial_params(config: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters of a trial config as MLflow params (reserved keys summarised)."""
    params: dict[str, Any] = {}
    for key, value in config.items():
        if key == "_candidates":
            params["n_candidates"] = len(value)
        elif key.startswith("_"):
            params[key.lstrip("_")] = value
        else:
            params[key] = value
    return params


def trial_status(result: dict[str, Any] | None, errored: bool) -> tuple[str, str]:
    """(status, reason) of a finished trial from its last result."""
    if errored:
        return "failed", "the trial raised; see the Ray Tune error file of the trial"
    if not result:
        return "failed", "the trial reported nothing"
    status = str(result.get("status", ""))
    if status in ("diverged", "failed"):
        return status, str(result.get("reason", ""))
    if result.get("naswot_scores") is not None:
        return "completed", ""
    value = result.get(METRIC)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "pruned", str(result.get("reason", "stopped by the scheduler before training"))
    return "completed", ""


class StudyMirror:
    """Child run per trial under the study's parent run; epoch metrics written in batches.

    Example::

        mirror = StudyMirror(tracker)
        mirror.trial_started("t1", {"width": 32})
        mirror.trial_result("t1", {"epoch": 1, "val_loss": 0.5})
        mirror.trial_finished("t1", {"width": 32}, last_result, errored=False)
    """

    def __init__(self, tracker: StudyTracker, flush_interval_s: float = 5.0) -> None:
        self.tracker = tracker
        self.flush_interval_s = flush_interval_s
        self._history: dict[str, list[dict[str, float]]] = {}
        self._last_flush: dict[str, float] = {}
        self._retries: dict[str, int] = {}

    def trial_started(self, trial_id: str, config: dict[str, Any]) -> None:
        """Open the trial's child run."""
        self.tracker.open_trial(trial_id, trial_params(config), str(config.get("_phase", "")))
        self._last_flush[trial_id] = time.monotonic()

    def trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Keep an epoch's metrics; write the kept ones every ``flush_interval_s``."""
        if "train_loss" in result or "val_loss" in result:
            self._history.setdefault(trial_id, []).append(
                {k: result[k] for k in _EPOCH_KEYS if result.get(k) is not None}
            )
        if time.monotonic() - self._last_flush.get(trial_id, 0.0) >= self.flush_interval_s:
            self._flush(trial_id)

    def _flush(self, trial_id: str) -> None:
        rows = self._history.pop(trial_id, [])
        if rows:
            self.tracker.log_history(trial_id, rows)
        self._last_flush[trial_id] = time.monotonic()

    def trial_recovered(self, trial_id: str) -> None:
        """Count a retry of the trial (logged with its end)."""
        self._retries[trial_id] = self._retries.get(trial_id, 0) + 1

    def trial_finished(self, trial_id: str, config: dict[str, Any], result: dict[str, Any], errored: bool) -> None:
        """Close the trial's child run with its status, metrics and scored architectures."""
        self._flush(trial_id)
        status, reason = trial_status(result, errored)
        scores = reported_list(result.get("naswot_scores"))
        extra = {"n_parameters": result["n_parameters"]} if "n_parameters" in result else {}
        if finite_or_none(result.get(LDOS_METRIC)) is not None:
            extra[LDOS_METRIC] = float(result[LDOS_METRIC])
        if scores:
            finite = [s for s in scores if s is not None and math.isfinite(s)]
            extra["n_scored"] = float(len(scores))
            if finite:
                extra["best_naswot_score"] = max(finite)
        self.tracker.log_trial(
            TrialRecord(
                trial_id=trial_id,
                params=trial_params(config),
                status=status,
                reason=reason,
                val_error_mev_per_atom=finite_or_none(result.get(METRIC)),
                val_error_std_mev_per_atom=finite_or_none(result.get(STD_METRIC)),
                naswot_score=finite_or_none(result.get(NASWOT_METRIC)),
                training_seconds=finite_or_none(result.get("training_seconds")),
                phase=str(config.get("_phase", "")),
                retries=self._retries.get(trial_id, 0),
                extra_metrics=extra,
            )
        )
        if scores and config.get("_candidates"):  # after log_trial: its run exists even on a resume
            self.tracker.log_scored_architectures(trial_id, [dict(c) for c in config["_candidates"]],
                                                  scores, reported_list(result.get("naswot_reasons")))
