"""A real study logged to a real MLflow server: hierarchy, histories, retrains, the model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from hpsearch.api import Experiment
from hpsearch.data import open_store

pytestmark = [pytest.mark.ray, pytest.mark.mlflow, pytest.mark.slow]


def test_grid_study_in_mlflow(ray_local, mlflow_server, small_store: Path, tmp_path: Path) -> None:
    experiment = Experiment.from_dict({
        "name": "tracked-grid",
        "dataset": {"store": str(small_store), "split": {"train": 2, "validation": 1, "test": 1}},
        "search_space": {"width": [8, 16], "n_layers": [1, 2]},
        "fixed": {"max_epochs": 6, "batch_size": 32, "learning_rate": 0.003},
        "strategy": {"name": "grid"},
        "retrains": 2,
        "tracking": {"enabled": True, "uri": mlflow_server.url, "experiment": "tracked"},
        "storage_path": str(tmp_path / "tracked-grid"),
    })
    result = experiment.run()
    assert len(result.trials) == 4
    assert result.final is not None and len(result.test_errors_mev_per_atom) == 2
    # the saved model is the retrain with the best validation error; the test only reports
    final = result.final
    assert final.chosen == int(np.nanargmin(final.val_errors))
    assert result.test_error_mev_per_atom == pytest.approx(np.nanmean(final.test_errors))
    assert result.retrain_core_seconds > 0

    client = MlflowClient(mlflow_server.url)
    exp = client.get_experiment_by_name("tracked")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("hpsearch.role") == "study"]
    children = [r for r in runs if r.data.tags.get("hpsearch.role") == "trial"]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert parent.data.params["strategy"] == "grid"
    with open_store(small_store) as store:
        assert parent.data.params["store_hash"] == store.content_hash()
    metrics = parent.data.metrics
    assert metrics["trials_completed"] == 4
    assert metrics["test_error_mev_per_atom"] == pytest.approx(result.test_error_mev_per_atom)
    assert metrics["saved_model_val_error_mev_per_atom"] == pytest.approx(final.val_errors[final.chosen])
    assert metrics["best_val_error_mev_per_atom"] == pytest.approx(result.best_val_error_mev_per_atom)
    assert metrics["search_core_s"] > 0 and metrics["retrain_core_s"] > 0
    retrains = client.get_metric_history(parent.info.run_id, "retrain_test_error_mev_per_atom")
    assert sorted(m.step for m in retrains) == [0, 1]
    assert sorted(m.value for m in retrains) == pytest.approx(sorted(final.test_errors))
    retrain_runs = sorted((r for r in runs if r.data.tags.get("hpsearch.role") == "retrain"),
                          key=lambda r: int(r.data.params["seed"]))
    assert [int(r.data.params["seed"]) for r in retrain_runs] == sorted(final.seeds)
    assert {r.data.tags["mlflow.parentRunId"] for r in retrain_runs} == {parent.info.run_id}
    assert [r.data.tags["hpsearch.saved_model"] for r in retrain_runs].count("true") == 1
    for run in retrain_runs:
        index = final.seeds.index(int(run.data.params["seed"]))
        assert run.data.metrics["val_error_mev_per_atom"] == pytest.approx(final.val_errors[index])
    for child in children + retrain_runs:  # no child run and no trials column holds a test error
        assert not any("test" in name for name in child.data.metrics), child.data.metrics
    assert not any("test" in column for column in result.trials.columns)
    history = client.get_metric_history(children[0].info.run_id, "val_loss")
    assert len(history) >= 1
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"experiment.json", "trials.csv", "best_model"} <= artifacts

    mlflow.set_tracking_uri(mlflow_server.url)
    predictor = mlflow.pytorch.load_model(f"runs:/{parent.info.run_id}/model")
    with open_store(small_store) as store:
        descriptors, ldos = store.read_arrays(store.names[-1])
    x = torch.as_tensor(descriptors.reshape(-1, descriptors.shape[-1])[:100])
    with torch.no_grad():
        prediction = predictor(x).numpy()
    assert prediction.shape == (100, ldos.shape[-1])
    assert np.isfinite(prediction).all()
    mlflow.set_tracking_uri(None)
