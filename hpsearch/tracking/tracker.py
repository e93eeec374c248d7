"""One MLflow experiment per hpsearch experiment, one parent run per study, one child per trial.

Runs are addressed by stable keys (``<study_uid>/study``, ``<study_uid>/trial/<trial_id>``), so a
resumed study or a replayed journal logs into the runs it already has: never a duplicate.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.config.strategy import finite_or_none
from hpsearch.tracking.journal import Journal, OperationApplier, configure_client_retries

logger = logging.getLogger(__name__)

#: MLflow run status for each trial status. MLflow has no "pruned": a pruned trial ended as
#: planned, so its run is FINISHED, with PRUNED in its name and the tag ``hpsearch.pruned``.
RUN_STATUS = {"completed": "FINISHED", "pruned": "FINISHED", "diverged": "FAILED", "failed": "FAILED"}

#: Short names of common hyperparameters in run names.
_SHORT_NAMES = {"n_layers": "L", "width": "w", "learning_rate": "lr", "batch_size": "bs", "patience": "pat",
                "max_epochs": "ep", "activation": ""}


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.3g}"
    return str(value)


def short_config(params: dict[str, Any], limit: int = 60) -> str:
    """A few words for a run name: ``L2 w64 ReLU lr0.003 bs64`` (hyperparameters, not bookkeeping)."""
    words = []
    for key, value in params.items():
        if key.startswith(("_", "n_candidates", "phase", "kind")) or isinstance(value, (list, tuple, dict)):
            continue
        words.append(f"{_SHORT_NAMES.get(key, key + '=')}{_short_value(value)}")
    text = " ".join(words)
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def trial_number(trial_id: str) -> int | None:
    """1-based trial number from Ray Tune's ``<experiment>_<index>`` trial id (None otherwise)."""
    tail = trial_id.rsplit("_", 1)[-1]
    return int(tail) + 1 if "_" in trial_id and tail.isdigit() else None


def default_tracking_uri(folder: str | Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a local SQLite store in `folder` (or ./mlruns)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    base = Path(folder) if folder is not None else Path.cwd() / "mlruns"
    base.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(base / 'mlflow.db').resolve()}"


#: MLflow's tracking URI is one per process: blocks that set it (studies running at once in threads
#: of one driver, e.g. a benchmark's parallel studies) take turns, so none restores it under another
_URI_LOCK = threading.RLock()


@contextlib.contextmanager
def using_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's module-level calls go to `uri` inside the block; outside, everything is as before.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` to the process environment,
    so without this a later study of the same process (its default tracking URI, or a benchmark's
    server lookup) would follow an earlier study's store or a server that has since stopped.
    One thread at a time holds the block.
    """
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from hpsearch import _env

    with _URI_LOCK, _env.preserved(["MLFLOW_TRACKING_URI"]):
        global_before = getattr(tracking_utils, "_tracking_uri", None)
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(global_before)  # type: ignore[arg-type]  # None: back to the default


def _warm_up(tracking_uri: str, experiment_name: str) -> None:
    started = time.perf_counter()
    try:
        configure_client_retries()
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401 - the study's figures need it at its end
        import mlflow.pytorch  # noqa: F401 - the winner's model is logged with it
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment_name)
    except Exception as exc:  # noqa: BLE001 - a warm-up only; the journal reports real failures
        logger.debug("MLflow warm-up failed (%s); the journal will retry", exc)
    logger.debug("MLflow warm-up took %.1f s", time.perf_counter() - started)


@dataclass
class TrialRecord:
    """Everything hpsearch logs about one finished trial."""

    trial_id: str
    params: dict[str, Any]
    status: str  # completed | pruned | diverged | failed
    reason: str = ""
    val_error_mev_per_atom: float | None = None
    val_error_std_mev_per_atom: float | None = None
    naswot_score: float | None = None
    training_seconds: float | None = None
    phase: str = ""
    retries: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    extra_metrics: dict[str, float] = field(default_factory=dict)


def _now_ms() -> int:
    return int(time.time() * 1000)


class StudyTracker:
    """Logs a study to MLflow through a fail-safe journal (see :mod:`hpsearch.tracking.journal`).

    Example::

        tracker = StudyTracker("http://127.0.0.1:5000", "al298", "tpe", folder="results/al298/tpe")
        tracker.start(params={"strategy": "tpe"}, tags={"hpsearch.version": "0.1.0"})
        tracker.log_trial(TrialRecord("t1", {"width": 64}, "completed", val_error_mev_per_atom=12.3))
        tracker.finish({"best_val_error_mev_per_atom": 12.3})
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        study_name: str,
        folder: str | Path,
        study_uid: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.study_name = study_name
        self.folder = Path(folder) / "mlflow-journal"
        self.study_uid = study_uid or uuid.uuid4().hex[:12]
        self._journal: Journal | None = None
        self._run_names: dict[str, str] = {}
        self._numbered: int | None = None

    def warm_up(self) -> threading.Thread:
        """Load MLflow (its store: a new SQLite file is created and migrated here) and matplotlib
        in a background thread, best effort, so that this happens while the driver waits (on the
        data actors) rather than during the search or at its end. Join the thread before the
        first logging call."""
        thread = threading.Thread(target=_warm_up, args=(self.tracking_uri, self.experiment_name),
                                  name="hpsearch-mlflow-warm-up", daemon=True)
        thread.start()
        return thread

    @property
    def study_key(self) -> str:
        return f"{self.study_uid}/study"

    def trial_key(self, trial_id: str) -> str:
        return f"{self.study_uid}/trial/{trial_id}"

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            configure_client_retries()
            self._journal = Journal(OperationApplier(self.tracking_uri, self.folder)).start()
        return self._journal

    def start(
        self,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        artifacts: list[str | Path] | None = None,
    ) -> None:
        """Open (or, on resume, find) the study's parent run."""
        self.journal.submit(
            {
                "op": "create_run",
                "time_ms": _now_ms(),
                "key": self.study_key,
                "experiment": self.experiment_name,
                "run_name": self.study_name,
                "tags": {"hpsearch.role": "study", "hpsearch.study_uid": self.study_uid, **(tags or {})},
            }
        )
        if params:
            self.journal.submit({"op": "log_batch", "key": self.study_key, "params": params})
        for path in artifacts or []:
            self.log_artifact(path)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None, trial_id: str | None = None) -> None:
        key = self.trial_key(trial_id) if trial_id else self.study_key
        op = {"op": "log_artifact", "key": key, "path": str(Path(path).resolve()), "artifact_path": artifact_path}
        self.journal.submit(op)

    def open_trial(self, trial_id: str, params: dict[str, Any], phase: str = "") -> None:
        """Create the trial's child run when it starts, so the dashboard shows it running."""
        key = self.trial_key(trial_id)
        self.journal.submit(
            {
                "op": "create_run",
                "time_ms": _now_ms(),
                "key": key,
                "parent_key": self.study_key,
                "experiment": self.experiment_name,
                "run_name": self.trial_run_name(trial_id, params, phase),
                "tags": {"hpsearch.role": "trial", "hpsearch.trial_id": trial_id, "hpsearch.phase": phase},
            }
        )
        if params:
            self.journal.submit({"op": "log_batch", "key": key, "params": params})

    def trial_run_name(self, trial_id: str, params: dict[str, Any], phase: str = "") -> str:
        """``<study> #<n> <short config>``, e.g. ``tpe #3 L2 w64 ReLU lr0.003``; remembered per trial."""
        if trial_id not in self._run_names:
            number = trial_number(trial_id) or self._next_number()
            label = f"#{number}"
            words = f"scores {params['n_candidates']} architectures" if "n_candidates" in params else ""
            self._run_names[trial_id] = " ".join(
                w for w in (self.study_name, label, words or short_config(params)) if w).strip()
        return self._run_names[trial_id]

    def log_scored_architectures(self, trial_id: str, candidates: list[dict[str, Any]], scores: list[Any],
                                 reasons: list[Any] | None = None) -> Path:
        """The architectures a NASWOT score trial scored, with their scores, as the artifact
        ``naswot_scores.json`` of its run (and the count as a param); returns the file written."""
        import json

        reasons = list(reasons or [""] * len(scores))
        rows = [{"architecture": dict(c), "naswot_score": finite_or_none(s), "reason": r or ""}
                for c, s, r in zip(candidates, scores, reasons)]
        path = self.folder / "naswot" / trial_id / "naswot_scores.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=1) + "\n")
        self.journal.submit({"op": "log_artifact", "key": self.trial_key(trial_id), "path": str(path.resolve()),
                             "artifact_path": None})
        return path

    def _next_number(self) -> int:
        """1 + the trials named so far (on a resume: also those the run map already holds)."""
        if self._numbered is None:
            self._numbered = sum(1 for key in self.logged_keys() if key.startswith(f"{self.study_uid}/trial/"))
        self._numbered += 1
        return self._numbered

    def log_history(self, trial_id: str, rows: list[dict[str, float]]) -> None:
        """Per-epoch metrics as metric history (one batched write for many epochs)."""
        metrics = []
        stamp = _now_ms()
        for row in rows:
            step = int(row.get("epoch", 0))
            for name in ("train_loss", "val_loss"):
                if name in row and row[name] is not None:
                    metrics.append([name, float(row[name]), step, stamp])
        if metrics:
            self.journal.submit({"op": "log_batch", "key": self.trial_key(trial_id), "metrics": metrics})

    def log_trial(self, record: TrialRecord) -> None:
        """Log a finished trial: params, final metrics, status tags; ends its run."""
        self.open_trial(record.trial_id, record.params, record.phase)
        self.log_history(record.trial_id, record.history)
        stamp = _now_ms()
        metrics = [[name, value, 0, stamp] for name, value in _final_metrics(record).items()]
        tags = {
            "hpsearch.status": record.status,
            "hpsearch.retries": record.retries,
            "hpsearch.retried": str(record.retries > 0).lower(),
        }
        if record.reason:
            tags["hpsearch.reason"] = record.reason
        key = self.trial_key(record.trial_id)
        self.journal.submit({"op": "log_batch", "key": key, "metrics": metrics, "tags": tags})
        self.close_trial(record)

    def close_trial(self, record: TrialRecord) -> None:
        """Set the trial run's status tag (and PRUNED name) and end it (safe to repeat)."""
        key = self.trial_key(record.trial_id)
        tags: dict[str, Any] = {"hpsearch.status": record.status}
        if record.status == "pruned":
            name = self.trial_run_name(record.trial_id, record.params, record.phase)
            tags.update({"hpsearch.pruned": "true", "mlflow.runName": f"PRUNED {name}"})
        self.journal.submit({"op": "log_batch", "key": key, "tags": tags})
        self.journal.submit({"op": "end_run", "key": key, "status": RUN_STATUS.get(record.status, "FAILED"),
                             "time_ms": _now_ms()})

    def log_retrain(self, index: int, seed: int, val_error_mev_per_atom: float, status: str,
                    saved: bool = False) -> None:
        """One retrain of the winner as its own child run: seed, status and *validation* error.
        Its test error stays on the study's run (no run below a study holds a test error)."""
        key = f"{self.study_uid}/retrain/{index}"
        self.journal.submit({
            "op": "create_run", "time_ms": _now_ms(), "key": key, "parent_key": self.study_key,
            "experiment": self.experiment_name,
            "run_name": f"{self.study_name} retrain {index + 1} seed {seed}" + (" (saved model)" if saved else ""),
            "tags": {"hpsearch.role": "retrain", "hpsearch.seed": str(seed), "hpsearch.status": status,
                     "hpsearch.saved_model": str(saved).lower()},
        })
        metrics = [["val_error_mev_per_atom", float(val_error_mev_per_atom), 0, _now_ms()]] if finite_or_none(
            val_error_mev_per_atom) is not None else []
        self.journal.submit({"op": "log_batch", "key": key, "params": {"seed": seed}, "metrics": metrics})
        self.journal.submit({"op": "end_run", "key": key, "time_ms": _now_ms(),
                             "status": "FINISHED" if status == "completed" else "FAILED"})

    def log_series(self, values: dict[str, list[float]]) -> None:
        """Per-index metrics of the study's run (step = index), e.g. one value per retrain seed."""
        stamp = _now_ms()
        rows = [[name, float(v), step, stamp] for name, series in values.items()
                for step, v in enumerate(series) if finite_or_none(v) is not None]
        if rows:
            self.journal.submit({"op": "log_batch", "key": self.study_key, "metrics": rows})

    def log_summary(self, metrics: dict[str, float], tags: dict[str, Any] | None = None) -> None:
        stamp = _now_ms()
        rows = [[k, float(v), 0, stamp] for k, v in metrics.items() if v is not None]
        self.journal.submit({"op": "log_batch", "key": self.study_key, "metrics": rows, "tags": tags or {}})

    def finish(self, summary: dict[str, float] | None = None, status: str = "FINISHED") -> int:
        """Log the summary, end the parent run, flush; returns operations left pending."""
        if summary:
            self.log_summary(summary)
        self.journal.submit({"op": "end_run", "key": self.study_key, "status": status, "time_ms": _now_ms()})
        left = self.journal.close()
        self._journal = None
        return left

    def run_id(self, trial_id: str | None = None) -> str | None:
        """The MLflow run id of the study (or a trial), once created (None before)."""
        applier = self._journal.applier if self._journal is not None else OperationApplier(self.tracking_uri, self.folder)
        return applier.run_id(self.trial_key(trial_id) if trial_id else self.study_key)

    def logged_keys(self) -> set[str]:
        """Keys of the runs created so far (persisted across driver restarts)."""
        applier = self._journal.applier if self._journal is not None else OperationApplier(self.tracking_uri, self.folder)
        return set(applier.run_ids())

    def flush(self) -> int:
        """Apply everything queued (or buffer it when the server is down); returns ops pending."""
        if self._journal is None:
            return 0
        left = self._journal.close()
        self._journal = None
        return left

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune pickles callbacks with the experiment state: threads cannot travel
        state = dict(self.__dict__)
        state["_journal"] = None
        return state


def _final_metrics(record: TrialRecord) -> dict[str, float]:
    values = {
        "val_error_mev_per_atom": record.val_error_mev_per_atom,
        "val_error_std_mev_per_atom": record.val_error_std_mev_per_atom,
        "naswot_score": record.naswot_score,
        "training_seconds": record.training_seconds,
        **record.extra_metrics,
    }
    return {k: float(v) for k, v in values.items() if finite_or_none(v) is not None}
