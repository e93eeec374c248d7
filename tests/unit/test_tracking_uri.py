"""MLflow's global tracking URI does not leak out of hpsearch calls into the process environment.

``mlflow.set_tracking_uri`` exports ``MLFLOW_TRACKING_URI``; a later study or benchmark of the
same process would otherwise log to an earlier study's store, or to a server that has stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hpsearch.tracking.compare import study_runs
from hpsearch.tracking.models import log_pytorch_model
from hpsearch.tracking.tracker import default_tracking_uri, using_tracking_uri


@pytest.mark.parametrize("before", [None, "http://127.0.0.1:9/never-used"])
def test_calls_leave_the_tracking_uri_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                before: str | None) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    if before is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", before)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("leak", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment, tags={"hpsearch.role": "study"})

    assert len(study_runs("leak", uri)) == 1
    assert os.environ.get("MLFLOW_TRACKING_URI") == before
    log_pytorch_model(uri, run.info.run_id, torch.nn.Linear(2, 1))
    assert os.environ.get("MLFLOW_TRACKING_URI") == before
    logged = client.search_logged_models(experiment_ids=[experiment])
    assert [m.source_run_id for m in logged] == [run.info.run_id]  # it went to `uri`
    # what a second study of this process would use by default
    expected = before or f"sqlite:///{(tmp_path / 'next' / 'mlflow.db').resolve()}"
    assert default_tracking_uri(tmp_path / "next") == expected
    with using_tracking_uri(uri):
        assert mlflow.get_tracking_uri() == uri
    assert os.environ.get("MLFLOW_TRACKING_URI") == before
