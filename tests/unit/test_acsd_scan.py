"""The descriptor scan: the paper's rule, the scan on real Be2 (serial and Ray), config errors, CLI + MLflow."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from hpsearch.cli import app
from hpsearch.data import open_store
from hpsearch.data.mala import import_mala
from hpsearch.descriptors import acsd_with_uncertainty, snap_grid
from hpsearch.descriptors.scan import (
    AcsdScanConfig,
    SettingResult,
    acsd_for_setting,
    choose_descriptors,
    parse_scan_config,
    run_scan,
    sample_snapshot,
    scan_grid,
)
from hpsearch.errors import ConfigError, DataError
from hpsearch.physics import EnergyGrid
from hpsearch.api import load_scan_config, run_acsd_scan
from hpsearch.data.descriptor_scan import load_sampled_snapshots
from hpsearch.data.generate import resolve_store

runner = CliRunner()
N_POINTS = 40
GRID = dict(rcut=(3.5, 4.67637), twojmax=(4, 6))


def _result(rcut: float, twojmax: int, value: float, std: float = 0.0) -> SettingResult:
    return SettingResult(rcut=rcut, twojmax=twojmax, acsd=value, std=std, n_components=0, seconds=0.0)


# --------------------------------------------------------------------------- the rule


def test_rule_picks_the_strict_minimum() -> None:
    values = {(3.0, 4): 0.05, (3.0, 6): 0.04, (4.0, 4): 0.02, (4.0, 6): 0.03, (5.0, 4): 0.025, (5.0, 6): 0.06}
    choice = choose_descriptors([_result(r, j, v) for (r, j), v in values.items()])
    assert (choice.rcut, choice.twojmax, choice.acsd) == (4.0, 4, 0.02)
    assert (choice.minimum_rcut, choice.minimum_twojmax) == (4.0, 4)
    assert choice.tied == ((4.0, 4),)


def test_exact_ties_prefer_smallest_twojmax_then_largest_rcut() -> None:
    results = [_result(3.0, 6, 0.01), _result(5.0, 6, 0.01), _result(4.0, 8, 0.01), _result(4.0, 4, 0.02)]
    choice = choose_descriptors(results)
    assert (choice.rcut, choice.twojmax) == (5.0, 6)
    assert choice.tied == ((5.0, 6), (3.0, 6), (4.0, 8))
    # among the ties with the same (smallest) twojmax, the largest rcut; order of input irrelevant
    assert choose_descriptors(results[::-1]).to_dict() == choice.to_dict()
    ties_same_j = [_result(3.0, 6, 0.01), _result(4.5, 6, 0.01), _result(4.0, 6, 0.01)]
    assert choose_descriptors(ties_same_j).rcut == 4.5


def test_tie_sigma_counts_statistically_equal_settings_as_the_minimum() -> None:
    results = [_result(4.0, 10, 0.0100, 0.0004), _result(4.0, 6, 0.0104, 0.0003),
               _result(5.0, 6, 0.0130, 0.0003), _result(5.0, 10, 0.0103, 0.0002)]
    strict = choose_descriptors(results)
    assert (strict.rcut, strict.twojmax) == (4.0, 10)
    # 0.0104 - 0.0100 = 4e-4 <= 1 * hypot(3e-4, 4e-4) = 5e-4: a tie; twojmax 6 beats 10
    loose = choose_descriptors(results, tie_sigma=1.0)
    assert (loose.rcut, loose.twojmax) == (4.0, 6)
    assert set(loose.tied) == {(4.0, 10), (4.0, 6), (5.0, 10)}
    assert (loose.minimum_rcut, loose.minimum_twojmax) == (4.0, 10)
    assert choose_descriptors(results, tie_sigma=0.5).twojmax == 10  # 4e-4 > 2.5e-4


def test_rule_skips_nan_and_rejects_nothing_to_choose() -> None:
    choice = choose_descriptors([_result(3.0, 4, math.nan), _result(4.0, 4, 0.3)])
    assert choice.rcut == 4.0
    with pytest.raises(DataError, match="no finite ACSD"):
        choose_descriptors([_result(3.0, 4, math.nan)])
    with pytest.raises(ConfigError, match="tie_sigma"):
        choose_descriptors([_result(3.0, 4, 0.1)], tie_sigma=-1)


# --------------------------------------------------------------------------- config


def _raw(**changes: object) -> dict[str, object]:
    return {"name": "t", "store": "x.h5", "rcut": [4.0, 3.0], "twojmax": [6], **changes}


def test_config_defaults_sorting_and_grid() -> None:
    config = parse_scan_config(_raw())
    assert config.rcut == (3.0, 4.0) and config.n_points == 200 and config.mode == "abs"
    assert [(s.rcut, s.twojmax) for s in config.grid()] == [(3.0, 6), (4.0, 6)]
    assert [(s.rcut, s.twojmax) for s in scan_grid([5.0, 4.0], [8, 2])] == [(4.0, 2), (4.0, 8), (5.0, 2), (5.0, 8)]
    with pytest.raises(Exception):  # frozen
        config.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rcuts": [4.0]}, "rcuts: unknown key"),
        ({"rcut": [4.0, -1.0]}, "rcut must be distinct positive numbers"),
        ({"rcut": [4.0, 4.0]}, "rcut must be distinct"),
        ({"rcut": []}, "rcut: Tuple should have at least 1 item"),
        ({"twojmax": [6, 30]}, "twojmax must be distinct integers in [0, 20]"),
        ({"mode": "signed"}, "mode: Input should be 'abs' or 'one_sided'"),
        ({"n_points": 0}, "n_points: Input should be greater than or equal to 1"),
        ({"snapshots": 0}, "snapshots must be a positive count"),
        ({"snap_options": {"rfac": 0.9}}, "unknown SNAP option(s) ['rfac']"),
        ({"snap_options": {"rcut": 5.0}}, "snap_options must not set ['rcut']"),
        ({"tracking": {"url": "x"}}, "tracking.url: unknown key"),
        ({"name": "a b"}, "name: String should match pattern"),
    ],
)
def test_config_errors_name_the_key(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scan_config(_raw(**changes), source="scan.yaml")
    assert message in str(info.value) and str(info.value).startswith("scan.yaml: ")


def test_file_and_store_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_scan_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scan_config(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_scan_config(bad)
    with pytest.raises(ConfigError, match="store 'nowhere.h5' does not exist"):
        resolve_store("nowhere.h5")


# --------------------------------------------------------------------------- real Be2


LAMMPS = pytest.mark.lammps


@pytest.fixture(scope="module")
def be2_store(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("acsd-scan") / "be2.h5"
    return import_mala(be2_dir, path, EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=11),
                       names=["Be_snapshot0", "Be_snapshot2"])


@pytest.fixture(scope="module")
def serial_results(be2_store: Path) -> list[SettingResult]:
    snapshots, _ = load_sampled_snapshots(be2_store, None, N_POINTS, seed=3)
    return run_scan(snapshots, scan_grid(GRID["rcut"], GRID["twojmax"]), seed=3, n_bootstrap=100,
                    parallel="serial")


@LAMMPS
def test_scan_equals_full_grid_reference(be2_store: Path, serial_results: list[SettingResult]) -> None:
    """Each setting's value and std are those of the full SNAP grid through acsd_with_uncertainty."""
    assert [(r.rcut, r.twojmax) for r in serial_results] == [(3.5, 4), (3.5, 6), (4.67637, 4), (4.67637, 6)]
    result = serial_results[1]  # rcut 3.5, twojmax 6
    with open_store(be2_store) as store:
        pairs = [(store.metadata(n).to_atoms(), store.read_arrays(n)[1]) for n in store.names]
    per_snapshot = [
        acsd_with_uncertainty(snap_grid(atoms, ldos.shape[:3], rcut=3.5, twojmax=6), ldos, N_POINTS, 3,
                              n_bootstrap=100)
        for atoms, ldos in pairs
    ]
    values = [v for v, _ in per_snapshot]
    assert result.per_snapshot == pytest.approx(dict(zip(["Be_snapshot0", "Be_snapshot2"], values)), rel=1e-5)
    assert result.acsd == pytest.approx(np.mean(values), rel=1e-5)
    expected_std = math.sqrt(sum(s * s for _, s in per_snapshot)) / 2
    assert result.std == pytest.approx(expected_std, rel=1e-4)
    assert result.n_components == 30 and result.seconds > 0
    # the settings differ by more than their noise: the scan resolves them
    assert all(r.acsd > 0 and 0 < r.std < 0.5 * r.acsd for r in serial_results)
    assert len({round(r.acsd, 6) for r in serial_results}) == 4
    # the mutual information of the same sampled points: the KSG estimate of the reference features
    from hpsearch.descriptors.mi import mutual_information
    from hpsearch.descriptors.scan import sample_snapshot
    from hpsearch.descriptors.snap import snap_at_points

    atoms, ldos = pairs[0]
    sampled = sample_snapshot("Be_snapshot0", atoms, ldos, N_POINTS, 3)
    features = snap_at_points(atoms, sampled.points_angstrom, rcut=3.5, twojmax=6)
    expected_mi = mutual_information(features, sampled.ldos, n_points=len(features), seed=3)
    assert result.per_snapshot_mi["Be_snapshot0"] == pytest.approx(expected_mi, rel=1e-6)
    assert all(math.isfinite(r.mi) and r.mi > 0.2 for r in serial_results)


@pytest.mark.ray
def test_ray_gives_the_same_values(
    ray_local: object, be2_store: Path, serial_results: list[SettingResult]
) -> None:
    snapshots, _ = load_sampled_snapshots(be2_store, None, N_POINTS, seed=3)
    seen: list[str] = []
    parallel = run_scan(snapshots, scan_grid(GRID["rcut"], GRID["twojmax"]), seed=3, n_bootstrap=100,
                        parallel="ray", on_result=lambda r: seen.append(r.key))
    assert sorted(seen) == sorted(r.key for r in serial_results)
    for a, b in zip(parallel, serial_results):
        assert (a.rcut, a.twojmax, a.acsd, a.std, a.per_snapshot) == (b.rcut, b.twojmax, b.acsd, b.std, b.per_snapshot)


@LAMMPS
def test_snapshot_selection_and_sampling_errors(be2_store: Path, be2_dir: Path) -> None:
    one, digest = load_sampled_snapshots(be2_store, ("Be_snapshot2",), 10, seed=0)
    assert [s.name for s in one] == ["Be_snapshot2"] and len(digest) == 64
    assert one[0].points_angstrom.shape == (20, 3) and one[0].ldos.shape == (20, 11)
    with pytest.raises(DataError, match=r"\['Be_snapshot9'\] are not in"):
        load_sampled_snapshots(be2_store, ("Be_snapshot9",), 10, seed=0)
    with pytest.raises(ConfigError, match="3 requested"):
        load_sampled_snapshots(be2_store, 3, 10, seed=0)
    atoms, ldos = one[0].atoms, np.load(be2_dir / "Be_snapshot2.out.npy")
    with pytest.raises(DataError, match="LDOS must be"):
        sample_snapshot("flat", atoms, ldos.reshape(-1, 11))
    with pytest.raises(ConfigError, match="n_points"):
        sample_snapshot("big", atoms, ldos, n_points=10_000)
    with pytest.raises(DataError, match="at least one snapshot"):
        acsd_for_setting([], scan_grid([4.0], [4])[0])


# --------------------------------------------------------------------------- CLI and MLflow


@pytest.mark.mlflow
def test_cli_scan_logs_to_mlflow(mlflow_server: object, be2_store: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    scan_file = tmp_path / "scan.yaml"
    scan_file.write_text(yaml.safe_dump({
        "name": "be2-cli", "store": str(be2_store), "snapshots": 1, "rcut": [4.0, 4.67637], "twojmax": [4, 6],
        "n_points": 30, "n_bootstrap": 50, "tracking": {"experiment": "acsd-test"},
    }))
    out = tmp_path / "out"
    url = mlflow_server.url  # type: ignore[attr-defined]
    result = runner.invoke(app, ["acsd", str(scan_file), "--out", str(out), "--uri", url, "--parallel", "serial"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "acsd_scan.json").read_text())
    choice = saved["choice"]
    assert f"chosen: rcut {choice['rcut']:.4g}" in result.output and "MLflow run" in result.output
    assert saved["snapshots"] == ["Be_snapshot0"] and len(saved["results"]) == 4
    best = min(saved["results"], key=lambda r: r["acsd"])
    assert (choice["rcut"], choice["twojmax"]) == (best["rcut"], best["twojmax"])
    for name in ("acsd_vs_rcut.png", "acsd_vs_twojmax.png", "acsd_table.md"):
        assert (out / name).stat().st_size > 1000 or name.endswith(".md")

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("acsd-test")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("hpsearch.role") == "study")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.run_id == saved["mlflow_run_id"] and parent.info.status == "FINISHED"
    assert parent.data.params["rcut"] == "4,4.67637" and parent.data.params["mode"] == "abs"
    assert parent.data.metrics["chosen_twojmax"] == choice["twojmax"]
    by_setting = {(float(c.data.params["rcut"]), int(c.data.params["twojmax"])): c for c in children}
    assert len(by_setting) == 4
    for row in saved["results"]:
        child = by_setting[(row["rcut"], row["twojmax"])]
        assert child.data.metrics["acsd"] == pytest.approx(row["acsd"])
        assert child.data.metrics["acsd_std"] == pytest.approx(row["std"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"acsd_vs_rcut.png", "acsd_vs_twojmax.png", "acsd_scan.json", "acsd_table.md"} <= artifacts


def test_cli_reports_config_errors(tmp_path: Path) -> None:
    scan_file = tmp_path / "scan.yaml"
    scan_file.write_text("name: x\nstore: x.h5\nrcut: [4.0]\ntwojmax: [6]\nnpoints: 3\n")
    result = runner.invoke(app, ["acsd", str(scan_file), "--no-tracking"])
    assert isinstance(result.exception, ConfigError) and "npoints: unknown key" in str(result.exception)


def test_example_scan_file_is_valid() -> None:
    config = load_scan_config(Path(__file__).resolve().parents[2] / "experiments" / "acsd_scan.yaml")
    assert isinstance(config, AcsdScanConfig) and config.n_settings >= 4


@LAMMPS
def test_api_run_without_tracking(be2_store: Path, tmp_path: Path) -> None:
    config = parse_scan_config({"name": "api", "store": str(be2_store), "rcut": [4.67637], "twojmax": [2, 4],
                                "n_points": 20, "n_bootstrap": 20, "tracking": {"enabled": False}})
    report = run_acsd_scan(config, folder=tmp_path)
    assert report.run_id is None and report.folder == tmp_path.resolve()
    assert [r.twojmax for r in report.results] == [2, 4] and report.snapshots == ("Be_snapshot0", "Be_snapshot2")
    assert not (tmp_path / "mlflow-journal").exists()
