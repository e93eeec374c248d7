"""The proxy study end to end from the command line: real store, training, MLflow server."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hpsearch.scoring.proxies import PROXIES


@pytest.fixture
def one_thread():
    """Small networks train far faster on one torch thread on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.mlflow
def test_proxy_study_cli_writes_table_figure_and_mlflow(mlflow_server, small_store: Path, tmp_path: Path,
                                                        monkeypatch, one_thread) -> None:
    from mlflow.tracking import MlflowClient

    from hpsearch.cli import app

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    config = tmp_path / "study.yaml"
    config.write_text("n_init: 2\nn_bootstrap: 50\nexperiment: proxy-test\nmax_epochs: 10\npatience: 3\n"
                      "train_batch_size: 128\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "proxy-study", "--store", str(small_store), "--config", str(config), "--out", str(out),
        "--exhaustive", "--depths", "1,2", "--widths", "8,16", "--activations", "ReLU,Tanh",
        "--ensemble", "naswot,params", "--tracking"])
    assert result.exit_code == 0, result.output
    assert "| proxy | Kendall tau" in result.output and "top-1 rank" in result.output
    assert "8 architectures, every depth x width x activation" in result.output
    assert "at most 10 epochs, early-stopping patience 3" in result.output and "mini-batch 128" in result.output

    summary = json.loads((out / "proxy_study.json").read_text())
    assert summary["split"]["test"] == [] and len(summary["split"]["validation"]) == 2
    assert summary["error"] == "validation LDOS RMSE"
    assert sorted(r["label"] for r in summary["rows"]) == sorted(
        f"{'x'.join([str(w)] * d)} {a}" for d in (1, 2) for w in (8, 16) for a in ("ReLU", "Tanh"))
    names = {c["name"] for c in summary["calibration"]}
    assert names == set(PROXIES) | {"ensemble(naswot+params)"}
    finite = [r for r in summary["rows"] if math.isfinite(r["val_ldos_rmse"])]
    assert len(finite) >= 3 and all(len(r["val_ldos_rmses"]) == 2 == len(r["val_errors_mev_per_atom"])
                                    for r in finite)
    assert all({"top1_rank", "top5_rank", "top1_regret", "tau_second", "beats_params"} <= set(c)
               for c in summary["calibration"])
    table = (out / "proxy_table.md").read_text()
    assert table.count("\n| ") == len(names) + 1  # the header row and one row each
    assert (out / "proxy_study.png").stat().st_size > 10_000

    client = MlflowClient(mlflow_server.url)
    runs = client.search_runs([client.get_experiment_by_name("proxy-test").experiment_id])
    parent = [r for r in runs if r.data.tags.get("hpsearch.kind") == "proxy-study"]
    assert len(parent) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert len(children) == 8
    assert any("proxy.synflow" in c.data.metrics and "val_ldos_rmse" in c.data.metrics for c in children)
    synflow = next(c for c in summary["calibration"] if c["name"] == "synflow")
    assert parent[0].data.metrics["tau.synflow"] == pytest.approx(synflow["tau"])
    assert parent[0].data.metrics["top1_rank.synflow"] == pytest.approx(synflow["top1_rank"])
    assert parent[0].data.params["max_epochs"] == "10" and parent[0].data.params["architectures"] == "all"
    logged = {a.path for a in client.list_artifacts(parent[0].info.run_id)}
    assert {"proxy_table.md", "proxy_study.png", "proxy_study.json"} <= logged


def test_proxy_study_config_rejects_unknown_keys_and_proxies(tmp_path: Path) -> None:
    from hpsearch.errors import ConfigError
    from hpsearch.scoring.proxy_study import load_proxy_study_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("n_architectures: 4\nproxys: [synflow]\n")
    with pytest.raises(ConfigError, match="proxys: unknown key"):
        load_proxy_study_config(bad)
    bad.write_text("proxies: [synflow, nope]\n")
    with pytest.raises(ConfigError, match="unknown proxy 'nope'"):
        load_proxy_study_config(bad)
    bad.write_text("ensembles: [[synflow]]\n")
    with pytest.raises(ConfigError, match="at least 2"):
        load_proxy_study_config(bad)


@pytest.mark.slow
def test_choose_proxy_on_a_trained_pilot(small_store: Path, one_thread) -> None:
    from hpsearch.scoring import ProxyStudyConfig, choice_scores, choose_proxy

    config = ProxyStudyConfig(store=str(small_store), n_init=2, n_bootstrap=20, max_epochs=10, patience=3,
                              train_batch_size=128, tracking=False, proxies=("naswot", "zico", "params"),
                              ensembles=(("naswot", "params"),))
    choice = choose_proxy(config, m=5, seed=1)
    rows = {c.name: c for c in choice.pilot}
    assert set(rows) == {"naswot", "naswot-v1", "zico", "params", "ensemble(naswot+params)"}  # both signs always
    best = min(c.tau for c in choice.pilot if c.tau == c.tau)
    assert choice.pilot_tau == (best if best < rows["params"].tau else rows["params"].tau)
    assert choice.m == 5 and choice.pilot_training_seconds > 0
    ranked = choice_scores(choice, {"naswot": [1.0, 2.0], "zico": [2.0, 1.0], "params": [5.0, 3.0]})
    assert ranked.shape == (2,)
