"""The paper benchmark: its experiment files, the target check, and a tiny real run (Ray + MLflow)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hpsearch.api import Experiment
from hpsearch.bench import PAPER_STRATEGIES, QUICK_STRATEGIES, BenchmarkSettings, check_target, run_paper_benchmark
from hpsearch.bench.paper import LABELS, experiment_files

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"
TABLE1 = {"direct", "tpe", "tpe-pruner", "oat", "naswot", "naswot-optimized"}


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("quick", [False, True])
def test_experiment_files_parse_and_share_one_search_space(quick: bool) -> None:
    files = experiment_files(quick=quick, experiments_dir=EXPERIMENTS / "quick" if quick else EXPERIMENTS)
    assert set(files) == (set(QUICK_STRATEGIES) if quick else TABLE1)
    configs = {stem: Experiment.from_yaml(path).validate().config for stem, path in files.items()}
    spaces = {stem: c.search_space.model_dump() for stem, c in configs.items()}
    reference = spaces["tpe"]
    assert all(space == reference for space in spaces.values()), spaces
    # the same dataset, training defaults, seed and MLflow experiment everywhere: only the strategy differs
    for field in ("dataset", "fixed", "training", "naswot", "seed", "tracking", "retrains", "resources"):
        values = {json.dumps(getattr(c, field) if not hasattr(getattr(c, field), "model_dump")
                             else getattr(c, field).model_dump(mode="json"), sort_keys=True, default=str)
                  for c in configs.values()}
        assert len(values) == 1, (field, values)
    names = [c.name for c in configs.values()]
    assert len(set(names)) == len(names)
    assert configs["tpe-pruner"].scheduler is not None and configs["tpe-pruner"].scheduler.name == "naswot-pruner"
    assert configs["tpe"].scheduler is None
    strategies = {stem: c.strategy.name for stem, c in configs.items()}
    assert strategies["naswot"] == "naswot" and strategies["oat"] == "oat" and strategies["tpe-pruner"] == "tpe"
    if not quick:
        assert all(c.retrains == 5 for c in configs.values())
        assert strategies["direct"] == "direct" and strategies["naswot-optimized"] == "naswot-optimized"


def test_quick_space_is_the_full_space() -> None:
    full = Experiment.from_yaml(EXPERIMENTS / "tpe.yaml").config.search_space
    quick = Experiment.from_yaml(EXPERIMENTS / "quick" / "tpe.yaml").config.search_space
    assert full == quick
    # the space of supplementary table 1, every parameter with discrete levels (OAT, direct)
    assert set(full.names) == {"n_layers", "width", "activation", "learning_rate", "batch_size", "patience"}
    assert all(len(full.levels(name)) >= 2 for name in full.names)


def test_every_benchmark_strategy_has_a_label_and_a_file() -> None:
    assert set(PAPER_STRATEGIES) == TABLE1 == set(LABELS)
    assert set(QUICK_STRATEGIES) <= TABLE1
    assert _raw(EXPERIMENTS / "acsd_scan.yaml")["name"]  # the ACSD scan is there too


def _table(naswot: tuple[float, float], tpe: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame({
        "strategy": ["naswot (fixed)", "tpe"],
        "error_mean_mev_per_atom": [naswot[0], tpe[0]],
        "best_trial_error_mev_per_atom": [naswot[0], tpe[0]],
        "core_seconds": [naswot[1], tpe[1]],
    })


def test_target_check_pass_and_miss() -> None:
    passed = check_target(_table((19.9, 10.0), (10.0, 1000.0)))
    assert passed is not None and passed.passed and "PASS" in passed.verdict
    assert passed.error_ratio == pytest.approx(1.99) and passed.compute_ratio == pytest.approx(0.01)
    too_slow = check_target(_table((10.0, 21.0), (10.0, 1000.0)))  # 1/47.6 of TPE's compute
    assert too_slow is not None and too_slow.error_ok and not too_slow.compute_ok and "MISS" in too_slow.verdict
    too_bad = check_target(_table((20.5, 1.0), (10.0, 1000.0)))
    assert too_bad is not None and not too_bad.error_ok and too_bad.compute_ok
    assert check_target(_table((10.0, 1.0), (10.0, 1000.0)).iloc[:1]) is None  # no TPE row


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.mlflow
def test_tiny_benchmark_writes_table_figures_and_mlflow(ray_local, mlflow_server, small_store: Path,
                                                          tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    small = {"max_trials": 4, "max_concurrent": 2}
    settings = BenchmarkSettings(
        out=tmp_path / "bench", strategies=("naswot", "naswot-optimized", "tpe-pruner", "direct", "tpe"),
        experiments_dir=EXPERIMENTS, mlflow_experiment="bench-test", tracking_uri=mlflow_server.url,
        progress=False,
        overrides={"dataset": {"store": str(small_store), "split": {"train": 2, "validation": 1, "test": 1}},
                   "fixed": {"max_epochs": 6, "batch_size": 64},
                   "search_space": {"parameters": {"n_layers": {"values": [1, 2]}, "width": {"values": [16, 32]}}},
                   "retrains": 2},
        strategy_overrides={"tpe": {"budget": small}, "tpe-pruner": {"budget": small}, "direct": {"budget": small},
                            "naswot-optimized": {"strategy": {"options": {"n_trials": 2, "n_startup_trials": 1}}}},
    )
    report = run_paper_benchmark(settings)

    labels = {"naswot (fixed)", "naswot (optimized)", "tpe + naswot-pruner", "direct", "tpe"}
    assert set(report.table["strategy"]) == labels and len(report.table) == 5
    tpe = report.table[report.table["strategy"] == "tpe"].iloc[0]
    assert tpe["speedup_vs_tpe"] == pytest.approx(1.0)
    assert (report.table["core_seconds"] > 0).all() and (report.table["wall_seconds"] > 0).all()
    summary = json.loads((report.folder / "summary.json").read_text())
    for row in report.table.itertuples():
        stem = next(s for s, label in LABELS.items() if label == row.strategy)
        final = summary["studies"][stem]["final"]
        assert row.error_mean_mev_per_atom == pytest.approx(final["mean"], nan_ok=True)
        assert row.n_parameters == final["n_parameters"]
    assert summary["studies"]["naswot"]["status_counts"].get("completed", 0) >= 1
    assert (report.folder / "comparison.md").read_text().count("\n| ") == 5
    assert (report.folder / "comparison.csv").is_file()
    for name in ("figure3", "figure6"):
        assert report.figures[name].is_file() and report.figures[name].stat().st_size > 5000
    assert report.target is not None
    assert report.target.tpe_core_seconds == pytest.approx(float(tpe["core_seconds"]))
    assert summary["target"]["passed"] == report.target.passed

    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("bench-test")
    runs = client.search_runs([experiment.experiment_id])
    roles = [r.data.tags.get("hpsearch.role") for r in runs]
    assert roles.count("study") == 5 and roles.count("comparison") == 1
    comparison = next(r for r in runs if r.data.tags.get("hpsearch.role") == "comparison")
    logged = {a.path for a in client.list_artifacts(comparison.info.run_id)}
    assert {"comparison.md", "summary.json", "figures"} <= logged
    figures = {Path(a.path).name for a in client.list_artifacts(comparison.info.run_id, "figures")}
    assert {"figure3_error_vs_compute.png", "figure6_architectures.png"} <= figures
    assert comparison.data.metrics["target_passed"] == float(report.target.passed)
