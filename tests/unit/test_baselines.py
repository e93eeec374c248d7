"""Ridge and constant-mean baselines against direct numpy computations, on the small store and on a
store whose LDOS is exactly an affine function of the descriptors; the CLI and the API."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hpsearch.api import baseline_split, baselines
from hpsearch.cli import app
from hpsearch.config.experiment import SplitConfig
from hpsearch.data import Split, open_store, write_store
from hpsearch.data.splits import default_split_counts
from hpsearch.errors import ConfigError, DataError
from hpsearch.model.baselines import BaselineReport, fit_linear_baselines, store_baselines
from hpsearch.physics import band_energy_from_ldos

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def _arrays(store: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors and LDOS of ``names`` flattened to points, float64."""
    xs, ys = [], []
    with open_store(store) as opened:
        for name in names:
            x, y = opened.read_arrays(name)
            xs.append(np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1]))
            ys.append(np.asarray(y, dtype=np.float64).reshape(-1, y.shape[-1]))
    return np.concatenate(xs), np.concatenate(ys)


def _numpy_ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Feature-standard descriptors, min-max LDOS; ridge as least squares on the augmented system
    [A; sqrt(N lam) D] b = [y; 0] (an independent route to the normal equations)."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    lo, span = y.min(), y.max() - y.min()
    a = np.hstack([(x - mean) / std, np.ones((x.shape[0], 1))])
    ys = (y - lo) / span
    penalty = np.sqrt(x.shape[0] * lam) * np.eye(a.shape[1])[:-1]  # no row for the bias
    coef = np.linalg.lstsq(np.vstack([a, penalty]), np.vstack([ys, np.zeros((penalty.shape[0], y.shape[1]))]),
                           rcond=None)[0]
    return coef, mean, std, lo, span


def _predict(coef: np.ndarray, mean: np.ndarray, std: np.ndarray, lo: float, span: float, x: np.ndarray) -> np.ndarray:
    a = np.hstack([(x - mean) / std, np.ones((x.shape[0], 1))])
    return (a @ coef) * span + lo


def _rmse(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - ref) ** 2)))


def _reference_mev_per_atom(store: Path, name: str) -> float:
    """Band energy per atom (meV) of a snapshot's own LDOS, straight from the physics functions."""
    with open_store(store) as opened:
        meta = opened.metadata(name)
        _, ldos = opened.read_arrays(name)
    energy, _ = band_energy_from_ldos(np.asarray(ldos, dtype=np.float64), meta.energy_grid,
                                      meta.voxel_volume_angstrom3, meta.n_electrons, meta.temperature_k)
    return energy / meta.n_atoms * 1000.0


@pytest.fixture(scope="module")
def names(small_store: Path) -> list[str]:
    with open_store(small_store) as opened:
        return list(opened.names)


def test_ridge_and_constant_match_numpy(small_store: Path, names: list[str]) -> None:
    split = Split(train=tuple(names[:1]), validation=tuple(names[1:2]), test=tuple(names[2:]))
    report = store_baselines(small_store, split, ridge_lambda=1e-3, chunk_points=300)  # chunks cross no snapshot
    x, y = _arrays(small_store, split.train)
    coef, mean, std, lo, span = _numpy_ridge(x, y, 1e-3)
    for part, part_names in (("validation", split.validation), ("test", split.test)):
        ridge, constant = report.evaluation("ridge", part), report.evaluation("constant", part)
        assert ridge is not None and constant is not None and ridge.names == list(part_names)
        for i, name in enumerate(part_names):
            xv, yv = _arrays(small_store, (name,))
            assert ridge.ldos_rmse[i] == pytest.approx(_rmse(_predict(coef, mean, std, lo, span, xv), yv), rel=1e-4)
            assert constant.ldos_rmse[i] == pytest.approx(_rmse(np.broadcast_to(y.mean(axis=0), yv.shape), yv),
                                                          rel=1e-4)
        for ev in (ridge, constant):  # signed = predicted - reference, per atom; its size is the error
            assert np.allclose(np.abs(ev.signed_band_energy_errors_mev_per_atom), ev.band_energy_errors_mev_per_atom)
        assert report.ldos_rmse("ridge", part) == pytest.approx(np.mean(ridge.ldos_rmse))
        assert report.ldos_rmse("ridge", part) < report.ldos_rmse("constant", part)
    references = {n: _reference_mev_per_atom(small_store, n) for n in names}
    test = report.evaluation("constant", "test")
    assert test is not None
    n_atoms = 8
    assert [e / n_atoms * 1000.0 for e in test.reference_band_energies_ev] == pytest.approx(
        [references[n] for n in split.test], rel=1e-9)
    spread = report.band_energy_spread_mev_per_atom
    assert spread["test"] == pytest.approx(np.std([references[n] for n in split.test], ddof=1), rel=1e-6)
    assert spread["all"] == pytest.approx(np.std(list(references.values()), ddof=1), rel=1e-6)
    assert math.isnan(spread["validation"])  # one validation snapshot: no spread


def test_normal_equations_in_chunks_against_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, [0.5] * 5 + [2.0] * 6, size=(700, 11)).astype(np.float32)
    x[:, 3] = 1.5  # a constant feature: scale 1, no effect
    y = (np.abs(rng.normal(size=(700, 4))) + 0.1).astype(np.float32)
    lam = 0.05

    def chunks(size: int):  # noqa: ANN202 - a chunk factory
        return lambda: ((torch.from_numpy(x[i : i + size]), torch.from_numpy(y[i : i + size]))
                        for i in range(0, len(x), size))

    whole = fit_linear_baselines(chunks(700), ridge_lambda=lam)
    pieces = fit_linear_baselines(chunks(64), ridge_lambda=lam)
    coef = _numpy_ridge(x.astype(np.float64), y.astype(np.float64), lam)[0]
    for fitted in (whole, pieces):
        assert fitted.n_train_points == 700
        assert np.allclose(fitted.ridge.weight.numpy().T, coef[:-1], atol=1e-5)
        assert np.allclose(fitted.ridge.bias.numpy(), coef[-1], atol=1e-5)
        ys = fitted.scalers.transform_ldos(torch.from_numpy(y).double()).numpy()
        assert np.allclose(fitted.constant.bias.numpy(), ys.mean(axis=0), atol=1e-6)
        assert not fitted.constant.weight.any()
    with pytest.raises(ConfigError, match="ridge_lambda=-1"):
        fit_linear_baselines(chunks(64), ridge_lambda=-1.0)


@pytest.fixture(scope="module")
def linear_store(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small store with every LDOS replaced by an exactly affine function of the descriptors:
    the snapshot's mean LDOS times (1 + 0.05 z), z a fixed standardised projection of the descriptors."""
    with open_store(small_store) as opened:
        snapshots = [opened.read(n) for n in opened.names]
    x_all = np.concatenate([s.descriptors.reshape(-1, s.descriptors.shape[-1]) for s in snapshots]).astype(np.float64)
    mean, std = x_all.mean(axis=0), np.where(x_all.std(axis=0) > 1e-12, x_all.std(axis=0), 1.0)
    v = np.random.default_rng(1).normal(size=x_all.shape[1])
    z_all = ((x_all - mean) / std) @ v
    shift, scale = z_all.mean(), z_all.std()
    profile = np.mean([s.ldos.reshape(-1, s.ldos.shape[-1]).mean(axis=0) for s in snapshots], axis=0)
    replaced = []
    for s in snapshots:
        z = ((s.descriptors.astype(np.float64) - mean) / std @ v - shift) / scale
        replaced.append(dataclasses.replace(s, ldos=(profile * (1.0 + 0.05 * z[..., None])).astype(np.float32)))
    path = tmp_path_factory.mktemp("linear") / "linear.h5"
    write_store(path, replaced)
    return path


def test_an_affine_ldos_is_what_ridge_predicts(linear_store: Path, names: list[str]) -> None:
    split = Split(train=tuple(names[:2]), validation=tuple(names[2:3]), test=tuple(names[3:]))
    exact = store_baselines(linear_store, split, ridge_lambda=0.0)
    default = store_baselines(linear_store, split)
    constant = exact.ldos_rmse("constant", "test")
    assert constant > 0
    assert exact.ldos_rmse("ridge", "test") < 1e-4 * constant  # float32 round-off only
    assert default.ldos_rmse("ridge", "test") < 1e-2 * constant  # a little shrinkage at lambda 1e-3
    assert exact.band_energy_error_mev_per_atom("ridge", "test") < 1e-2
    assert exact.skill(exact.ldos_rmse("ridge", "test")) == pytest.approx(1.0)  # ridge against itself
    assert exact.skill(constant) < 1e-4 and math.isnan(exact.skill(None))


def test_report_round_trip_and_table(small_store: Path, names: list[str]) -> None:
    report = baselines(small_store, "2:1:1")
    assert report.split == {"train": names[:2], "validation": names[2:3], "test": names[3:]}
    saved = json.loads(json.dumps(report.to_dict()))
    assert saved["ridge_test_ldos_rmse"] == pytest.approx(report.ldos_rmse("ridge", "test"))
    assert saved["band_energy_spread_mev_per_atom"]["test"] is None  # one test snapshot: NaN -> null
    loaded = BaselineReport.from_dict(saved)
    assert loaded.metrics() == pytest.approx(report.metrics())
    assert loaded.evaluations["ridge"]["test"] == report.evaluations["ridge"]["test"]
    head, rows = report.rows()
    assert len(rows) == 4 and head[2] == "LDOS RMSE" and [r[0] for r in rows] == ["ridge"] * 2 + ["constant"] * 2
    markdown = report.markdown()
    assert "| ridge | test (1) |" in markdown and "reference band energy between snapshots" in markdown
    with pytest.raises(DataError, match="lacks"):
        BaselineReport.from_dict({"store": "x"})


def test_splits(small_store: Path, names: list[str]) -> None:
    assert default_split_counts(4) == (2, 1, 1) and default_split_counts(10) == (4, 2, 4)
    assert default_split_counts(12) == (6, 2, 4)
    with pytest.raises(DataError, match="at least 3"):
        default_split_counts(2)
    assert baseline_split(small_store, None) == Split(tuple(names[:2]), (names[2],), (names[3],))
    assert baseline_split(small_store, (1, 1, 2)).test == tuple(names[2:])
    by_name = baseline_split(small_store, f"{names[3]},{names[0]}:{names[1]}:")
    assert by_name == Split((names[3], names[0]), (names[1],), ())
    assert SplitConfig.parse("4:2:4") == SplitConfig(train=4, validation=2, test=4)
    for bad, message in (("4:2", "TRAIN:VALIDATION:TEST"), ("0:1:1", "at least one snapshot"),
                         ("a:b:c", "are not in"), ("9:1:1", "needs 11 snapshots")):
        with pytest.raises((ConfigError, DataError), match=message):
            baseline_split(small_store, bad)


def test_bad_input_names_the_value(small_store: Path, names: list[str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        baselines(tmp_path / "missing.h5")
    with pytest.raises(DataError, match="are not in store"):
        store_baselines(small_store, Split(("nope",), (names[0],), ()))
    with pytest.raises(DataError, match="nothing to score"):
        store_baselines(small_store, Split((names[0],), (), ()))
    broken = tmp_path / "nan.h5"
    with open_store(small_store) as opened:
        write_store(broken, [opened.read(n) for n in opened.names])
    with h5py.File(broken, "r+") as handle:  # damage one LDOS value after the store's own checks
        dataset = handle["snapshots"][names[2]]["ldos"]
        values = dataset[...]
        values[0, 0, 0, 3] = np.nan
        dataset[...] = values
    with pytest.raises(DataError, match=f"snapshot {names[2]} of store .* 1 NaN/inf LDOS values"):
        store_baselines(broken, Split(tuple(names[:2]), (names[2],), (names[3],)))


def test_command_line(small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "baselines.json"
    result = runner.invoke(app, ["data", "baselines", str(small_store), "--split", "2:1:1", "--json", str(out),
                                 "--ridge-lambda", "0.01"], env=WIDE)
    assert result.exit_code == 0, result.output
    for expected in ("ridge", "constant", "LDOS RMSE", "validation (1)", "test (1)", "ridge lambda 0.01",
                     "reference band energy between snapshots"):
        assert expected in result.output, (expected, result.output)
    saved = json.loads(out.read_text())
    assert saved["ridge_lambda"] == 0.01 and saved["ridge_test_ldos_rmse"] < saved["constant_test_ldos_rmse"]
    default = runner.invoke(app, ["data", "baselines", str(small_store)], env=WIDE)
    assert default.exit_code == 0 and "train 2" in default.output, default.output
    too_many = runner.invoke(app, ["data", "baselines", str(small_store), "--split", "3:1:1"])
    assert too_many.exit_code != 0 and "needs 5 snapshots" in str(too_many.exception)
    missing = runner.invoke(app, ["data", "baselines", str(tmp_path / "none.h5")])
    assert missing.exit_code != 0 and "does not exist" in str(missing.exception)
