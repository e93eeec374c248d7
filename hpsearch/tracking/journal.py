"""A write-ahead journal of MLflow operations: logging never blocks or fails a study.

Every tracking call becomes a JSON-serialisable *operation* that names runs by local keys
(``"study"``, ``"trial:<id>"``) rather than MLflow run ids. A background thread applies the
operations in order. When the server does not answer (after the client's own retries), the
operation and every later one are appended to ``pending.jsonl`` in the fallback folder; the
worker retries them periodically, and ``hpsearch tracking sync FOLDER`` replays what is left.
The key -> run-id map is persisted (``runs.json``), so a resumed study logs into the same runs
and a replay never creates a run twice.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpsearch import _env

logger = logging.getLogger(__name__)

Operation = dict[str, Any]
PENDING = "pending.jsonl"
RUN_MAP = "runs.json"


def configure_client_retries(max_retries: int = 2, timeout_s: int = 10) -> None:
    """Keep MLflow's HTTP retries short (its defaults wait minutes); users may override."""
    _env.mlflow_client_defaults(max_retries, timeout_s)


def artifact_location(tracking_uri: str) -> str | None:
    """For a local SQLite store, ``artifacts/`` beside the database (MLflow's default is ./mlruns
    of whatever folder the process runs in); None (the server decides) for any other store."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    database = Path(tracking_uri[len(prefix):].split("?", 1)[0])
    return (database.resolve().parent / "artifacts").as_uri()


class OperationApplier:
    """Applies operations to one MLflow tracking server, keeping the key -> run-id map."""

    def __init__(self, tracking_uri: str, folder: Path) -> None:
        self.tracking_uri = tracking_uri
        self.folder = folder
        self._client: Any = None
        self._runs: dict[str, str] = {}
        self._experiments: dict[str, str] = {}
        map_path = folder / RUN_MAP
        if map_path.exists():
            self._runs = json.loads(map_path.read_text())

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def run_id(self, key: str) -> str | None:
        return self._runs.get(key)

    def run_ids(self) -> dict[str, str]:
        return dict(self._runs)

    def _save_map(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (RUN_MAP + ".tmp")
        tmp.write_text(json.dumps(self._runs, indent=1, sort_keys=True))
        os.replace(tmp, self.folder / RUN_MAP)

    def _experiment_id(self, name: str) -> str:
        if name not in self._experiments:
            from hpsearch.tracking.views import save_comparison_view

            self._experiments[name] = self._get_or_create_experiment(name)
            save_comparison_view(self.client, self._experiments[name])
        return self._experiments[name]

    def _get_or_create_experiment(self, name: str) -> str:
        """The experiment's id, created when missing; studies starting at the same time (a benchmark's
        parallel studies) may race to create it: the loser reads the winner's."""
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(name, artifact_location=artifact_location(self.tracking_uri)))
        except MlflowException:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def apply(self, op: Operation) -> None:
        """Apply one operation; raises when the server cannot be reached."""
        handler: Callable[[Operation], None] = getattr(self, f"_op_{op['op']}")
        handler(op)

    def _op_create_run(self, op: Operation) -> None:
        key = op["key"]
        if key in self._runs:  # resumed study or replay: the run exists already
            return
        tags = dict(op.get("tags", {}))
        tags["hpsearch.key"] = key
        parent = op.get("parent_key")
        if parent is not None:
            tags["mlflow.parentRunId"] = self._runs[parent]
        experiment_id = self._experiment_id(op["experiment"])
        existing = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`hpsearch.key` = '{key}'", max_results=1
        )
        if existing:
            self._runs[key] = existing[0].info.run_id
        else:
            run = self.client.create_run(experiment_id, tags=tags, run_name=op.get("run_name"),
                                         start_time=op.get("time_ms"))
            self._runs[key] = run.info.run_id
        self._save_map()

    def _op_log_batch(self, op: Operation) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run_id = self._runs[op["key"]]
        params = [Param(k, str(v)[:6000]) for k, v in op.get("params", {}).items()]
        if params:  # params are immutable: log only those the run does not hold yet
            held = self.client.get_run(run_id).data.params
            params = [p for p in params if p.key not in held]
        metrics = [Metric(n, float(v), int(ts), int(step)) for n, v, step, ts in op.get("metrics", [])]
        tags = [RunTag(k, str(v)[:5000]) for k, v in op.get("tags", {}).items()]
        for start in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[start : start + 100])
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])
        for start in range(0, len(tags), 100):
            self.client.log_batch(run_id, tags=tags[start : start + 100])

    def _op_log_artifact(self, op: Operation) -> None:
        path = Path(op["path"])
        if not path.exists():
            logger.warning("artifact %s vanished before it could be logged; skipped", path)
            return
        self.client.log_artifact(self._runs[op["key"]], str(path), op.get("artifact_path"))

    def _op_end_run(self, op: Operation) -> None:
        # the time the operation was submitted, not applied: a journal replayed later keeps real times
        self.client.set_terminated(self._runs[op["key"]], status=op.get("status", "FINISHED"),
                                   end_time=op.get("time_ms"))


class Journal:
    """Ordered, non-blocking, fail-safe application of operations (a background thread)."""

    def __init__(self, applier: OperationApplier, retry_interval_s: float = 10.0) -> None:
        self.applier = applier
        self.retry_interval_s = retry_interval_s
        self._queue: queue.Queue[Operation | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_retry = 0.0

    @property
    def pending_path(self) -> Path:
        return self.applier.folder / PENDING

    def start(self) -> Journal:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="hpsearch-mlflow", daemon=True)
            self._thread.start()
        return self

    def submit(self, op: Operation) -> None:
        """Queue an operation; returns at once."""
        self._queue.put(op)

    def close(self, timeout_s: float = 120.0) -> int:
        """Apply what is queued, try the pending file once more; return operations still pending."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None
        self.retry_pending()
        left = self.count_pending()
        if left:
            logger.warning(
                "MLflow unreachable: %d operations kept in %s; run `hpsearch tracking sync %s` "
                "when the server is back",
                left,
                self.pending_path,
                self.applier.folder,
            )
        return left

    def count_pending(self) -> int:
        if not self.pending_path.exists():
            return 0
        return sum(1 for line in self.pending_path.read_text().splitlines() if line.strip())

    def _append_pending(self, op: Operation) -> None:
        self.applier.folder.mkdir(parents=True, exist_ok=True)
        with self.pending_path.open("a") as handle:
            handle.write(json.dumps(op) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _work(self) -> None:
        while True:
            op = self._queue.get()
            if op is None:
                return
            with self._lock:
                if self.count_pending() and not self._retry_due():
                    self._append_pending(op)  # keep order behind what is waiting
                    continue
                if self.count_pending():
                    self._retry_locked()
                if self.count_pending():
                    self._append_pending(op)
                    continue
                try:
                    self.applier.apply(op)
                except Exception as exc:  # noqa: BLE001 - any failure means: keep it for later
                    logger.warning("MLflow logging failed (%s); buffering to %s", exc, self.pending_path)
                    self._last_retry = time.monotonic()
                    self._append_pending(op)

    def _retry_due(self) -> bool:
        return time.monotonic() - self._last_retry >= self.retry_interval_s

    def retry_pending(self) -> int:
        """Replay the pending file in order; stop at the first failure. Returns ops applied."""
        with self._lock:
            return self._retry_locked()

    def _retry_locked(self) -> int:
        self._last_retry = time.monotonic()
        if not self.pending_path.exists():
            return 0
        ops = [json.loads(line) for line in self.pending_path.read_text().splitlines() if line.strip()]
        done = 0
        for op in ops:
            try:
                self.applier.apply(op)
            except Exception as exc:  # noqa: BLE001
                logger.debug("replay stopped at operation %d: %s", done, exc)
                break
            done += 1
        rest = ops[done:]
        tmp = self.pending_path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(op) + "\n" for op in rest))
        os.replace(tmp, self.pending_path)
        if not rest:
            self.pending_path.unlink()
        return done


def sync_pending(folder: str | Path, tracking_uri: str) -> tuple[int, int]:
    """Replay a study's pending operations to `tracking_uri`; returns (applied, still pending)."""
    configure_client_retries()
    journal = Journal(OperationApplier(tracking_uri, Path(folder)))
    applied = journal.retry_pending()
    return applied, journal.count_pending()
