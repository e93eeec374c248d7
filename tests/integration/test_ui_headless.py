"""The MLflow UI as a user opens it, in a headless browser (Debian's chromium; skipped without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from hpsearch.tracking.server import runs_table_link
from hpsearch.tracking.tracker import StudyTracker, TrialRecord

pytestmark = pytest.mark.mlflow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _dom(url: str) -> str:
    """The page after its scripts ran (virtual time), as HTML."""
    done = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                           "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `apt-get install chromium` to load the MLflow UI headlessly")
def test_printed_link_opens_the_runs_table_with_named_runs(mlflow_server, tmp_path: Path) -> None:
    tracker = StudyTracker(mlflow_server.url, "ui-headless", "ui-tpe", tmp_path)
    tracker.start(params={"strategy": "tpe"})
    for i in range(3):
        params = {"n_layers": 2, "width": 16 * (i + 1), "activation": "ReLU", "learning_rate": 0.003}
        tracker.log_trial(TrialRecord(f"t_{i:05d}", params, "pruned" if i == 2 else "completed",
                                      val_error_mev_per_atom=None if i == 2 else 10.0 + i))
    assert tracker.finish({"best_val_error_mev_per_atom": 10.0, "test_error_mev_per_atom": 12.5,
                           "search_core_s": 42.0}) == 0

    link = runs_table_link(mlflow_server.url, "ui-headless")
    experiment = MlflowClient(mlflow_server.url).get_experiment_by_name("ui-headless")
    assert link == (f"{mlflow_server.url}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
                    "&viewStateShareKey=hpsearch-comparison")
    table = _dom(link)
    assert "matching run" in table and "ui-tpe" in table  # the runs table, with the study's parent run
    assert "Detect Issues" not in table  # not MLflow's GenAI overview
    # the saved comparison view: the protocol's metric columns without picking them by hand
    for column in ("test_error_mev_per_atom", "best_val_error_mev_per_atom", "search_core_s"):
        assert column in table, column
    assert "share key" not in table  # no "share key ... does not exist" error

    pruned = tracker.run_id("t_00002")
    page = _dom(f"{mlflow_server.url}/#/experiments/{experiment.experiment_id}/runs/{pruned}")
    assert "PRUNED ui-tpe #3 L2 w48 ReLU lr0.003" in page
