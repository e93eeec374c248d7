"""The saved comparison view: MLflow's envelope and column keys."""

from __future__ import annotations

import json

from hpsearch.tracking import summary as keys
from hpsearch.tracking.views import COMPARISON_METRICS, VIEW_KEY, comparison_view_state, comparison_view_tag


def test_view_tag_is_mlflows_saved_view_envelope() -> None:
    key, value = comparison_view_tag(now_ms=1234)
    assert key == f"mlflow.sharedViewState.{VIEW_KEY}"
    envelope = json.loads(value)
    assert envelope["name"] == "hpsearch comparison"
    assert envelope["createdAt"] == envelope["updatedAt"] == 1234
    assert isinstance(envelope["state"], str)  # MLflow parses the state from a string
    assert json.loads(envelope["state"]) == comparison_view_state()


def test_view_selects_the_protocol_columns_and_study_runs() -> None:
    state = comparison_view_state()
    assert state["selectedColumns"][0] == f"metrics.`{keys.RETRAIN_MEAN}`"
    assert f"metrics.`{keys.BEST_ERROR}`" in state["selectedColumns"]
    assert "params.`strategy`" in state["selectedColumns"]
    assert len(state["selectedColumns"]) == len(set(state["selectedColumns"]))
    assert state["orderByKey"] == f"metrics.`{keys.RETRAIN_MEAN}`" and state["orderByAsc"] is True
    assert "hpsearch.role" in state["searchFilter"]
    # no test error among trial-level names: the view shows study runs only
    assert all("val_error_mev_per_atom" != m for m in COMPARISON_METRICS)


def test_view_shows_the_benchmark_strategy_first_and_the_baselines_beside_the_ldos_rmse() -> None:
    state = comparison_view_state()
    assert state["columnOrder"][0] == "tags.`strategy`" and "tags.`strategy`" in state["selectedColumns"]
    assert sorted(state["columnOrder"]) == sorted(state["selectedColumns"])
    metrics = list(COMPARISON_METRICS)
    ldos = metrics.index(keys.TEST_LDOS_RMSE)
    assert metrics[ldos + 1: ldos + 3] == [keys.RIDGE_TEST_LDOS_RMSE, keys.CONSTANT_TEST_LDOS_RMSE]
    assert "tags.`hpsearch.verdict`" in state["selectedColumns"]
