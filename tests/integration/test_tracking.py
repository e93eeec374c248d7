"""MLflow tracking against a real server on loopback: hierarchy, histories, outage, UI."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from hpsearch.tracking.compare import comparison_table, study_runs
from hpsearch.tracking.journal import sync_pending
from hpsearch.tracking.server import start_server
from hpsearch.tracking.tracker import StudyTracker, TrialRecord

pytestmark = pytest.mark.mlflow


def _record(i: int, epochs: int = 6, status: str = "completed") -> TrialRecord:
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 2.0 / (e + 1)} for e in range(epochs)]
    error = 10.0 + i if status == "completed" else None
    return TrialRecord(str(i), {"width": 8 * (i + 1), "activation": "ReLU"}, status,
                       val_error_mev_per_atom=error, history=history if error else [])


def _runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_hierarchy_history_and_statuses(mlflow_server, tmp_path: Path) -> None:
    tracker = StudyTracker(mlflow_server.url, "hier", "tpe", tmp_path)
    tracker.start(params={"strategy": "tpe"}, artifacts=[_write(tmp_path / "exp.yaml", "name: hier\n")])
    for i in range(3):
        tracker.log_trial(_record(i))
    tracker.log_trial(_record(3, status="pruned"))
    assert tracker.finish({"best_val_error_mev_per_atom": 10.0}) == 0

    runs = _runs(mlflow_server.url, "hier")
    parents = [r for r in runs if r.data.tags.get("hpsearch.role") == "study"]
    children = [r for r in runs if r.data.tags.get("hpsearch.role") == "trial"]
    assert len(parents) == 1 and len(children) == 4
    parent_id = parents[0].info.run_id
    assert all(c.data.tags["mlflow.parentRunId"] == parent_id for c in children)
    assert {c.info.status for c in children} == {"FINISHED"}  # a pruned trial ended as planned
    names = sorted(c.info.run_name for c in children)
    assert names == ["PRUNED tpe #4 w32 ReLU", "tpe #1 w8 ReLU", "tpe #2 w16 ReLU", "tpe #3 w24 ReLU"]
    pruned = [c for c in children if c.data.tags["hpsearch.status"] == "pruned"]
    assert len(pruned) == 1 and pruned[0].data.tags["hpsearch.pruned"] == "true"
    client = MlflowClient(mlflow_server.url)
    done = [c for c in children if c.data.tags["hpsearch.status"] == "completed"][0]
    history = client.get_metric_history(done.info.run_id, "val_loss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(6))
    assert parents[0].data.metrics["best_val_error_mev_per_atom"] == 10.0
    artifacts = [a.path for a in client.list_artifacts(parent_id)]
    assert "exp.yaml" in artifacts


def test_resumed_tracker_never_duplicates(mlflow_server, tmp_path: Path) -> None:
    first = StudyTracker(mlflow_server.url, "resume", "grid", tmp_path, study_uid="fixeduid")
    first.start(params={"strategy": "grid"})
    first.log_trial(_record(0))
    first.finish(status="KILLED")
    again = StudyTracker(mlflow_server.url, "resume", "grid", tmp_path, study_uid="fixeduid")
    again.start(params={"strategy": "grid"})
    again.log_trial(_record(0))
    again.log_trial(_record(1))
    again.finish()
    runs = _runs(mlflow_server.url, "resume")
    assert len(runs) == 3  # one study, two trials


def test_study_survives_server_outage_and_syncs(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server")
    tracker = StudyTracker(server.url, "outage", "tpe", tmp_path / "study")
    tracker.start(params={"strategy": "tpe"})
    tracker.log_trial(_record(0))
    tracker.journal.close()  # make sure the first part reached the server
    tracker._journal = None
    server.stop()
    for i in range(1, 4):
        tracker.log_trial(_record(i))  # must not raise nor block
    left = tracker.finish({"best_val_error_mev_per_atom": 10.0})
    assert left > 0
    pending = tmp_path / "study" / "mlflow-journal" / "pending.jsonl"
    assert pending.exists()

    logged_before_ms = int(time.time() * 1000)
    time.sleep(0.05)
    server = start_server(tmp_path / "server")
    try:
        applied, still = sync_pending(tmp_path / "study" / "mlflow-journal", server.url)
        assert still == 0 and applied == left
        runs = _runs(server.url, "outage")
        trials = [r for r in runs if r.data.tags.get("hpsearch.role") == "trial"]
        assert len(trials) == 4
        # runs replayed later keep the times they were logged at, not the time of the sync
        assert all(r.info.end_time <= logged_before_ms for r in trials)
        assert all(r.info.start_time <= r.info.end_time for r in trials)
        assert len([r for r in runs if r.data.tags.get("hpsearch.role") == "study"]) == 1
    finally:
        server.stop()


def test_ui_and_rest_api_answer(mlflow_server, tmp_path: Path) -> None:
    tracker = StudyTracker(mlflow_server.url, "rest", "naswot", tmp_path)
    tracker.start(params={"strategy": "naswot"})
    tracker.log_trial(_record(0))
    tracker.finish()
    with urllib.request.urlopen(mlflow_server.url + "/", timeout=10) as page:
        assert page.status == 200
    exp = MlflowClient(mlflow_server.url).get_experiment_by_name("rest")
    body = json.dumps({"experiment_ids": [exp.experiment_id]}).encode()
    request = urllib.request.Request(mlflow_server.url + "/api/2.0/mlflow/runs/search", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert len(json.load(response)["runs"]) == 2


def test_comparison_table_from_mlflow(mlflow_server, tmp_path: Path) -> None:
    for strategy, cost, mean in (("tpe", 1000.0, 10.0), ("naswot", 10.0, 14.0)):
        tracker = StudyTracker(mlflow_server.url, "cmp", strategy, tmp_path / strategy)
        tracker.start(params={"strategy": strategy})
        tracker.finish({"search_core_s": cost, "test_error_mev_per_atom": mean, "test_error_std_mev_per_atom": 1.0})
    table = comparison_table(study_runs("cmp", mlflow_server.url))
    speedups = dict(zip(table["strategy"], table["speedup_vs_tpe"]))
    assert speedups == {"tpe": pytest.approx(1.0), "naswot": pytest.approx(100.0)}
    mlflow.set_tracking_uri(None)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_naswot_score_run_lists_its_architectures(mlflow_server, tmp_path: Path) -> None:
    tracker = StudyTracker(mlflow_server.url, "scores", "naswot", tmp_path)
    tracker.start(params={"strategy": "naswot"})
    candidates = [{"n_layers": 1, "width": 8}, {"n_layers": 2, "width": 16}]
    tracker.open_trial("s1", {"kind": "score", "n_candidates": 2})
    tracker.log_trial(TrialRecord("s1", {"kind": "score", "n_candidates": 2}, "completed"))
    tracker.log_scored_architectures("s1", candidates, [12.5, float("-inf")], ["", "dead network"])
    assert tracker.finish() == 0
    run = next(r for r in _runs(mlflow_server.url, "scores") if r.data.tags.get("hpsearch.role") == "trial")
    assert run.info.run_name == "naswot #1 scores 2 architectures"
    client = MlflowClient(mlflow_server.url)
    local = client.download_artifacts(run.info.run_id, "naswot_scores.json", str(tmp_path / "down"))
    rows = json.loads(Path(local).read_text())
    assert [r["architecture"] for r in rows] == candidates
    assert rows[0]["naswot_score"] == 12.5 and rows[1]["naswot_score"] is None and rows[1]["reason"] == "dead network"


def test_sqlite_artifacts_sit_beside_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not ./mlruns of the working folder: artifacts/ next to mlflow.db."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    tracker = StudyTracker(uri, "beside", "grid", tmp_path / "study")
    tracker.start(artifacts=[_write(tmp_path / "exp.yaml", "name: beside\n")])
    assert tracker.finish() == 0
    experiment = MlflowClient(uri).get_experiment_by_name("beside")
    assert experiment.artifact_location == (tmp_path / "store" / "artifacts").as_uri()
    assert list((tmp_path / "store" / "artifacts").rglob("exp.yaml"))
    assert not (tmp_path / "mlruns").exists()
