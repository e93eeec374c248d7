"""Wire a study into MLflow: the parent run, one child per trial, the summary and artifacts.

The study's tracking identity (URI, MLflow experiment, study uid) is written once into
``tracking.json`` in the study folder, so ``hpsearch resume`` logs into the same runs.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpsearch._version import __version__
from hpsearch.config.experiment import ExperimentConfig
from hpsearch.config.strategy import LDOS_METRIC, METRIC, STD_METRIC
from hpsearch.tracking import summary as keys
from hpsearch.tracking.mirror import trial_params
from hpsearch.tracking.plots import architecture_in_words, plot_architectures
from hpsearch.tracking.tracker import StudyTracker, TrialRecord, default_tracking_uri
from hpsearch.tune.adapters import MLflowStudyCallback
from hpsearch.tune.results import COLUMNS

logger = logging.getLogger(__name__)

TRACKING_FILE = "tracking.json"


def study_tracker(config: ExperimentConfig, folder: Path) -> StudyTracker | None:
    """The study's tracker (None when tracking is off); identity kept in tracking.json."""
    if not config.tracking.is_enabled:
        return None
    path = folder / TRACKING_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
    else:
        import uuid

        saved = {
            "uri": config.tracking.uri or default_tracking_uri(folder.parent / "mlruns"),
            "experiment": config.tracking.experiment or config.name,
            "study_uid": uuid.uuid4().hex[:12],
        }
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=2) + "\n")
    return StudyTracker(saved["uri"], saved["experiment"], config.name, folder, study_uid=saved["study_uid"])


def study_params(config: ExperimentConfig, store_path: str, store_hash: str,
                 settled: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Params of the parent run (never secrets: the config holds no credentials); ``settled``: what the
    strategy and scheduler report of themselves (``tracking_params``, e.g. the proxy and its sign)."""
    params: dict[str, Any] = {
        "strategy": config.strategy.name,
        "strategy_options": json.dumps(config.strategy.options, sort_keys=True),
        "scheduler": config.scheduler.name if config.scheduler else "none",
        "store_path": store_path,
        "store_hash": store_hash,
        "hpsearch_version": __version__,
        "git_commit": keys.git_commit(),
        "seed": config.seed,
        "repeats": config.repeats,
        "max_trials": config.budget.max_trials,
        "search_space": ",".join(config.search_space.names),
    }
    defaults = config.hyperparameter_defaults()
    for lever in ("points_per_epoch", "validation_points"):  # the training's cost levers; "all": not set
        value = defaults.get(lever)
        params[lever] = "searched" if lever in config.search_space.names else value if value is not None else "all"
    if config.scheduler:
        params["scheduler_options"] = json.dumps(config.scheduler.options, sort_keys=True)
    params.update(settled or {})
    return params


class StudyCallback(MLflowStudyCallback):
    """Opens the parent run when Tune starts (also after a restore) and flushes at the end."""

    def __init__(self, tracker: StudyTracker, params: dict[str, Any], artifacts: list[str],
                 tags: Mapping[str, str] | None = None) -> None:
        super().__init__(tracker)
        self.params = params
        self.artifacts = artifacts
        self.tags = dict(tags or {})

    def setup(self, **info: Any) -> None:
        tags = {**getattr(self, "tags", {}), "hpsearch.study": self.tracker.study_name}  # a pickle of old had no tags
        self.tracker.start(params=self.params, tags=tags, artifacts=self.artifacts)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.tracker.flush()


def log_study_end(tracker: StudyTracker, result: Any, final: Any, best_training: Any) -> int:
    """Trials not logged yet (e.g. lost with a killed driver), summary, artifacts; ends the run."""
    logged = tracker.logged_keys()
    for row in result.trials.to_dict("records"):
        record = _record_from_row(row)
        if tracker.trial_key(record.trial_id) not in logged:
            tracker.log_trial(record)
        else:  # its end may have been lost with a killed driver: close it again (idempotent)
            tracker.close_trial(record)
    counts = result.counts()
    summary = {
        keys.TRIALS_COMPLETED: counts.get("completed", 0),
        keys.TRIALS_PRUNED: counts.get("pruned", 0),
        keys.TRIALS_FAILED: counts.get("failed", 0) + counts.get("diverged", 0),
        keys.CORE_SECONDS: result.core_seconds,
        keys.GPU_SECONDS: result.gpu_seconds,
        keys.WALL_SECONDS: result.wall_seconds,
    }
    if result.best_val_error_mev_per_atom is not None:
        summary[keys.BEST_ERROR] = result.best_val_error_mev_per_atom
    summary.update({keys.TEST_LDOS_RMSE: result.test_ldos_rmse, keys.TEST_LDOS_RMSE_STD: result.test_ldos_rmse_std,
                    keys.RIDGE_TEST_LDOS_RMSE: result.ridge_test_ldos_rmse,
                    keys.CONSTANT_TEST_LDOS_RMSE: result.constant_test_ldos_rmse, keys.SKILL: result.skill})
    for name in ("result.json", "trials.csv"):
        if (result.results_dir / name).is_file():
            tracker.log_artifact(result.results_dir / name)
    if final is not None:
        summary.update({keys.RETRAIN_MEAN: final.test_mean, keys.RETRAIN_STD: final.test_std,
                        keys.BEST_N_PARAMETERS: final.n_parameters,
                        keys.RETRAIN_CORE_SECONDS: final.core_seconds, keys.RETRAIN_GPU_SECONDS: final.gpu_seconds})
        if final.chosen is not None:
            summary[keys.RETRAIN_VAL] = final.val_errors[final.chosen]
        # each retrain's test error on the study's run (step = retrain index); each retrain also
        # has a child run of its own with its seed and validation error, never its test error
        tracker.log_series({"retrain_val_error_mev_per_atom": final.val_errors,
                            "retrain_test_error_mev_per_atom": final.test_errors,
                            "retrain_test_ldos_rmse": final.test_ldos_rmses})
        for index, (seed, value, status) in enumerate(zip(final.seeds, final.val_errors, final.statuses)):
            tracker.log_retrain(index, seed, value, status, saved=index == final.chosen)
        _log_winner(tracker, result.results_dir, final, best_training)
    summary = {k: float(v) for k, v in summary.items() if v is not None and math.isfinite(float(v))}
    return tracker.finish(summary)


def _log_winner(tracker: StudyTracker, folder: Path, final: Any, best_training: Any) -> None:
    arch = final.architecture
    words = architecture_in_words(arch["n_in"], arch["widths"], arch["activations"], arch["n_out"])
    (folder / "architecture.txt").write_text(words + "\n")
    tracker.log_artifact(folder / "architecture.txt", "best_model")
    figure = plot_architectures([{"strategy": tracker.study_name, **arch}], folder / "architecture.png")
    tracker.log_artifact(figure, "best_model")
    (folder / "final.json").write_text(json.dumps(final.to_dict(), indent=2) + "\n")
    tracker.log_artifact(folder / "final.json")
    if best_training is not None:
        tracker.flush()  # the model goes straight to MLflow: the queue must be applied first
        _log_model(tracker, best_training)


def _log_model(tracker: StudyTracker, best_training: Any) -> None:
    """mlflow.pytorch model of network + scalers; skipped with a warning if the server is down."""
    run_id = tracker.run_id()
    if run_id is None:
        logger.warning("the study's MLflow run does not exist yet (server down?): model not logged; "
                       "it is saved as final_model.pt in the study folder")
        return
    try:
        from hpsearch.model.predictor import LdosPredictor
        from hpsearch.tracking.models import log_pytorch_model

        predictor = LdosPredictor(best_training.model.cpu(), best_training.scalers.to("cpu"), best_training.spec)
        log_pytorch_model(tracker.tracking_uri, run_id, predictor)
    except Exception as exc:  # noqa: BLE001 - logging must never fail the study
        logger.warning("could not log the model to MLflow (%s); it is saved as final_model.pt", exc)


def _record_from_row(row: dict[str, Any]) -> TrialRecord:
    def number(key: str) -> float | None:
        value = row.get(key)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    params = {k: v for k, v in row.items() if k not in COLUMNS and v is not None and v == v}
    return TrialRecord(
        trial_id=str(row["trial_id"]), params=trial_params(params), status=str(row.get("status", "failed")),
        reason=str(row.get("reason") or ""), val_error_mev_per_atom=number(METRIC),
        val_error_std_mev_per_atom=number(STD_METRIC), naswot_score=number("naswot_score"),
        training_seconds=number("training_seconds"), phase=str(row.get("phase") or ""),
        extra_metrics={LDOS_METRIC: v} if (v := number(LDOS_METRIC)) is not None else {},
    )

