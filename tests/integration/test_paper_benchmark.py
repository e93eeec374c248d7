"""The paper benchmark: its experiment files, the target check, and a tiny real run (Ray + MLflow)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from hpsearch.api import Experiment
from hpsearch.bench import PAPER_STRATEGIES, QUICK_STRATEGIES, BenchmarkSettings, check_target, run_paper_benchmark
from hpsearch.bench.paper import LABELS, experiment_files
from hpsearch.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"
TABLE1 = {"direct", "tpe", "tpe-pruner", "oat", "naswot", "naswot-optimized"}
MULTI_FIDELITY = {"random-asha", "tpe-asha", "naswot-halving"}
NULL = {"null"}  # no search: the row TPE must beat for the benchmark to decide anything


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("quick", [False, True])
def test_experiment_files_parse_and_share_one_search_space(quick: bool) -> None:
    files = experiment_files(quick=quick, experiments_dir=EXPERIMENTS / "quick" if quick else EXPERIMENTS)
    assert set(files) == (set(QUICK_STRATEGIES) if quick else TABLE1 | MULTI_FIDELITY | NULL)
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
    assert strategies["null"] == "null" and configs["null"].budget.max_trials == 1 and configs["null"].scheduler is None
    if not quick:
        assert all(c.retrains == 2 for c in configs.values())  # the test LDOS RMSE varies by a few % between seeds
        assert strategies["direct"] == "direct" and strategies["naswot-optimized"] == "naswot-optimized"


def test_quick_space_is_the_full_space() -> None:
    full = Experiment.from_yaml(EXPERIMENTS / "tpe.yaml").config.search_space
    quick = Experiment.from_yaml(EXPERIMENTS / "quick" / "tpe.yaml").config.search_space
    assert full == quick
    # the space of supplementary table 1, every parameter with discrete levels (OAT, direct)
    assert set(full.names) == {"n_layers", "width", "activation", "learning_rate", "batch_size", "patience"}
    assert all(len(full.levels(name)) >= 2 for name in full.names)


def test_every_benchmark_strategy_has_a_label_and_a_file() -> None:
    assert set(PAPER_STRATEGIES) == TABLE1 | MULTI_FIDELITY | NULL == set(LABELS)
    assert NULL <= set(QUICK_STRATEGIES) <= TABLE1 | NULL and LABELS["null"] == "no search"
    assert _raw(EXPERIMENTS / "acsd_scan.yaml")["name"]  # the ACSD scan is there too


def _runs(naswot: list[tuple[float, float]], tpe: list[tuple[float, float]]) -> pd.DataFrame:
    rows = [{"strategy": label, "repeat": r, "test_error_mev_per_atom": e, "search_core_s": c}
            for label, values in (("naswot (fixed)", naswot), ("tpe", tpe)) for r, (e, c) in enumerate(values)]
    return pd.DataFrame(rows)


def test_target_check_pass_and_miss() -> None:
    tpe = [(10.0, 1000.0), (12.0, 1100.0), (8.0, 900.0)]
    passed = check_target(_runs([(19.9, 10.0), (23.0, 11.0), (15.0, 9.0)], tpe))
    assert passed is not None and passed.passed and passed.holds_with_ci and "PASS" in passed.verdict
    assert passed.n_repeats == 3 and passed.error_ratio == pytest.approx(23 / 12)  # median of 1.99, 1.917, 1.875
    assert passed.compute_ratio == pytest.approx(0.01)
    # the median meets the target but one repeat does not: a pass at the median, not over the CI
    edge = check_target(_runs([(19.9, 10.0), (30.0, 11.0), (15.0, 9.0)], tpe))
    assert edge is not None and edge.passed and not edge.holds_with_ci and "not over the CI" in edge.verdict
    too_slow = check_target(_runs([(10.0, 21.0)] * 3, [(10.0, 1000.0)] * 3))  # 1/47.6 of TPE's compute
    assert too_slow is not None and too_slow.error_ok and not too_slow.compute_ok and "MISS" in too_slow.verdict
    too_bad = check_target(_runs([(20.5, 1.0)] * 3, [(10.0, 1000.0)] * 3))
    assert too_bad is not None and not too_bad.error_ok and too_bad.compute_ok
    only = _runs([(10.0, 1.0)], [(10.0, 1000.0)])
    assert check_target(only[only["strategy"] == "tpe"]) is None  # no NASWOT row


def test_comparison_over_repeats_pairs_by_repeat() -> None:
    from hpsearch.bench.report import comparison_over_repeats, markdown_over_repeats

    runs = _runs([(2.0, 10.0), (4.0, 10.0), (6.0, 10.0)], [(1.0, 100.0), (1.0, 100.0), (1.0, 100.0)])
    runs["best_val_error_mev_per_atom"] = 1.0
    runs["retrain_core_s"] = 5.0
    runs["wall_seconds"] = 3.0
    runs["test_ldos_rmse"] = [0.5, 0.25, 0.5, 1.0, 1.0, 1.0]  # naswot's three repeats, then tpe's
    table = comparison_over_repeats(runs, ["tpe"]).set_index("strategy")
    naswot = table.loc["naswot (fixed)"]
    assert naswot["test_error_mev_per_atom"] == pytest.approx(4.0) and naswot["repeats"] == 3
    assert naswot["error_ratio_vs_tpe"] == pytest.approx(4.0) and naswot["p_vs_tpe"] == pytest.approx(0.25)
    assert naswot["speedup_vs_tpe"] == pytest.approx(10.0) and naswot["better_than_tpe"] == 0
    # the same pairing on the test LDOS RMSE: ratios 0.5, 0.25, 0.5 -> median 0.5, every repeat better
    assert naswot["test_ldos_rmse"] == pytest.approx(0.5) and naswot["ldos_ratio_vs_tpe"] == pytest.approx(0.5)
    assert naswot["ldos_p_vs_tpe"] == pytest.approx(0.25) and naswot["ldos_better_than_tpe"] == 3
    assert table.loc["tpe", "error_ratio_vs_tpe"] == 1.0 and table.loc["tpe", "ldos_ratio_vs_tpe"] == 1.0
    text = markdown_over_repeats(table.reset_index(), ["tpe"], baselines=_baselines(ridge=(3.0, 0.8)))
    assert "4 [2, 6]" in text and "0.25" in text and "10.0x" in text and "0.5 [0.25, 0.5]" in text
    lines = text.splitlines()
    assert len(lines) == 6 and lines[0].count("|") == lines[-1].count("|")  # every row has every column
    assert lines[-2].startswith("| ridge (baseline) | - | 3 | 0.8 |") and lines[-1].startswith("| constant (baseline)")
    old = comparison_over_repeats(runs.drop(columns="test_ldos_rmse"), ["tpe"])  # rows of older studies
    assert "n/a" in markdown_over_repeats(old, ["tpe"]) and old["ldos_ratio_vs_tpe"].isna().iloc[0]


def _baselines(ridge: tuple[float, float], constant: tuple[float, float] = (9.0, 2.0)) -> Any:
    """A BaselineReport with one test snapshot: (band-energy error meV/atom, LDOS RMSE) per predictor."""
    from hpsearch.model.baselines import BaselineReport
    from hpsearch.model.evaluation import Evaluation

    def one(error: float, rmse: float) -> Evaluation:
        return Evaluation(["t"], [error], error, [rmse], rmse, [1.0], [1.0], [error])

    evaluations = {name: {"test": one(*values), "validation": one(*values)}
                   for name, values in (("ridge", ridge), ("constant", constant))}
    return BaselineReport("store.h5", {"train": ["a"], "validation": ["v"], "test": ["t"]}, 1e-3, "feature-standard",
                          "minmax", 10, evaluations, {"test": float("nan"), "validation": float("nan"), "all": 1.0})


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.mlflow
def test_tiny_benchmark_writes_table_figures_and_mlflow(ray_local, mlflow_server, small_store: Path,
                                                          tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    small = {"max_trials": 3, "max_concurrent": 2}
    settings = BenchmarkSettings(
        out=tmp_path / "bench", strategies=("null", "naswot", "tpe-pruner", "tpe"), repeats=2,
        experiments_dir=EXPERIMENTS, mlflow_experiment="bench-test", tracking_uri=mlflow_server.url,
        progress=False,
        overrides={"dataset": {"store": str(small_store), "split": {"train": 2, "validation": 1, "test": 1}},
                   "fixed": {"max_epochs": 4, "batch_size": 64},
                   "search_space": {"parameters": {"n_layers": {"values": [1, 2]}, "width": {"values": [16, 32]}}},
                   "retrains": 2},
        strategy_overrides={"tpe": {"budget": small}, "tpe-pruner": {"budget": small}},
    )
    report = run_paper_benchmark(settings)

    labels = {"no search", "naswot (fixed)", "tpe + naswot-pruner", "tpe"}
    assert set(report.table["strategy"]) == labels and len(report.table) == 4
    assert len(report.runs) == 8 and sorted(set(report.runs["repeat"])) == [0, 1]
    null = report.runs[report.runs["strategy"] == "no search"]
    assert list(null["trials"]) == [1, 1] and (null["test_ldos_rmse"] > 0).all()  # one network, retrained
    tpe = report.table[report.table["strategy"] == "tpe"].iloc[0]
    assert tpe["speedup_vs_tpe"] == pytest.approx(1.0) and tpe["repeats"] == 2
    assert (report.table["search_core_s"] > 0).all() and (report.table["retrain_core_s"] > 0).all()
    summary = json.loads((report.folder / "summary.json").read_text())
    for stem, studies in summary["studies"].items():
        assert [s["name"] for s in studies] == [f"{studies[0]['name'][:-3]}-r0", f"{studies[0]['name'][:-3]}-r1"]
        seeds = [s["config"]["seed"] for s in studies]
        assert seeds[1] == seeds[0] + 1, (stem, seeds)  # repeats differ by their search seed
    for row in report.table.itertuples():
        mine = report.runs[report.runs["strategy"] == row.strategy]
        assert row.test_error_mev_per_atom == pytest.approx(float(np.nanmedian(mine["test_error_mev_per_atom"])))
    naswot = report.table[report.table["strategy"] == "naswot (fixed)"].iloc[0]
    assert 0 < naswot["test_error_mev_per_atom_ci_low"] <= naswot["test_error_mev_per_atom"]
    assert naswot["test_error_mev_per_atom"] <= naswot["test_error_mev_per_atom_ci_high"]
    # four strategies, then the ridge and constant baselines of the benchmark's split
    assert (report.folder / "comparison.md").read_text().count("\n| ") == 6
    # two repeats cannot decide (p >= 0.5): the verdict says so, and no claim or met/missed is stated
    assert report.verdict is not None and report.verdict.state == "not decidable" and report.claims == []
    assert "cannot tell searches apart on this data" in report.markdown
    assert "Strategy claims: not decidable" in (report.folder / "comparison.md").read_text()
    assert summary["verdict"]["decidable"] is False and summary["claims"] == []
    assert report.baselines is not None
    assert [len(report.baselines.split[k]) for k in ("train", "validation", "test")] == [2, 1, 1]
    assert summary["data"]["split"] == report.baselines.split and summary["data"]["parallel_studies"] == 1
    assert "| ridge (baseline) |" in report.markdown and "| constant (baseline) |" in report.markdown
    assert summary["baselines"]["ridge_test_ldos_rmse"] == pytest.approx(report.baselines.ldos_rmse("ridge", "test"))
    assert (report.runs["test_ldos_rmse"] > 0).all() and (report.table["test_ldos_rmse"] > 0).all()
    assert report.table["ldos_ratio_vs_tpe"].notna().all()
    for stem, studies in summary["studies"].items():  # each study carries the baseline of its own (same) split
        for study in studies:
            saved = json.loads((Path(study["folder"]) / "result.json").read_text())
            assert saved["baselines"]["split"] == report.baselines.split and saved["skill"] is not None, stem
    assert (report.folder / "studies.csv").is_file() and (report.folder / "comparison.csv").is_file()
    for name in ("figure3", "figure6"):
        assert report.figures[name].is_file() and report.figures[name].stat().st_size > 5000
    assert report.target is not None and report.target.n_repeats == 2 and not report.target.decidable
    assert report.target.verdict.startswith("target not decidable") and summary["target"]["passed"] is None

    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("bench-test")
    runs = client.search_runs([experiment.experiment_id])
    roles = [r.data.tags.get("hpsearch.role") for r in runs]
    assert roles.count("study") == 8 and roles.count("comparison") == 1
    comparison = next(r for r in runs if r.data.tags.get("hpsearch.role") == "comparison")
    logged = {a.path for a in client.list_artifacts(comparison.info.run_id)}
    assert {"comparison.md", "summary.json", "studies.csv", "figures"} <= logged
    figures = {Path(a.path).name for a in client.list_artifacts(comparison.info.run_id, "figures")}
    assert {"figure3_error_vs_compute.png", "figure6_architectures.png"} <= figures
    assert "target_passed" not in comparison.data.metrics and comparison.data.metrics["verdict_decidable"] == 0.0
    assert comparison.data.tags["hpsearch.verdict"] == "not decidable" and comparison.data.params["verdict"] == (
        "not decidable")
    assert comparison.data.metrics["ridge_test_ldos_rmse"] == pytest.approx(report.baselines.ldos_rmse("ridge", "test"))
    # the comparison is on every study's parent run too (the runs table shows it)
    studies = [r for r in runs if r.data.tags.get("hpsearch.role") == "study"]
    assert all("speedup_vs_tpe" in r.data.metrics and "hpsearch.comparison" in r.data.tags for r in studies)
    # the strategy as the table names it, a column of the runs table (tagged when the run opened)
    assert sorted(r.data.tags["strategy"] for r in studies) == sorted([*labels, *labels])
    assert all(r.data.tags["hpsearch.verdict"] == "not decidable" for r in studies)
    for key in ("test_ldos_rmse", "ridge_test_ldos_rmse", "constant_test_ldos_rmse", "skill"):
        assert all(key in r.data.metrics for r in studies), key
    tpe_runs = [r for r in studies if r.data.params.get("strategy") == "tpe" and "scheduler" in r.data.params
                and r.data.params["scheduler"] == "none"]
    assert tpe_runs and all(r.data.metrics["speedup_vs_tpe"] == pytest.approx(1.0) for r in tpe_runs)

    # a benchmark run in pieces: --resume keeps every finished study (no study runs again) ...
    results = sorted((report.folder / "studies").glob("*/result.json"))
    stamps = {path: path.stat().st_mtime_ns for path in results}
    again = run_paper_benchmark(dataclasses.replace(settings, resume=True))
    assert {path: path.stat().st_mtime_ns for path in results} == stamps and len(stamps) == 8
    assert list(again.runs["test_error_mev_per_atom"]) == list(report.runs["test_error_mev_per_atom"])
    # ... and refuses a folder whose study had other settings
    with pytest.raises(ConfigError, match="other settings"):
        run_paper_benchmark(dataclasses.replace(settings, resume=True, overrides={**settings.overrides, "retrains": 3}))
    with pytest.raises(ConfigError, match="--resume"):
        run_paper_benchmark(settings)


def test_noise_floor_by_hand() -> None:
    from types import SimpleNamespace

    from hpsearch.bench.report import noise_floor

    studies = {"a": [SimpleNamespace(test_errors_mev_per_atom=[1.0, 3.0], test_error_mev_per_atom=2.0)],
               "b": [SimpleNamespace(test_errors_mev_per_atom=[4.0, 8.0], test_error_mev_per_atom=6.0),
                     SimpleNamespace(test_errors_mev_per_atom=[float("nan")], test_error_mev_per_atom=None)]}
    noise = noise_floor(studies)  # type: ignore[arg-type]
    # within: std(1, 3) = sqrt(2), std(4, 8) = sqrt(8); median = (sqrt(2) + sqrt(8)) / 2
    assert noise["retrain_seed_std_mev_per_atom"] == pytest.approx((2**0.5 + 8**0.5) / 2)
    assert noise["between_winners_std_mev_per_atom"] == pytest.approx(8**0.5)  # std(2, 6)
    assert noise["n_studies"] == 2 and noise["ratio"] == pytest.approx(0.75)
