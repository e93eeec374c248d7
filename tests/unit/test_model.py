"""Network construction, scaling and evaluation in physical units (hpsearch.model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
import pytest
import torch

from hpsearch.model import (
    ACTIVATIONS,
    NetworkSpec,
    Scalers,
    TestSnapshot,
    TrainingData,
    build_network,
    count_parameters,
    evaluate,
    feature_moments,
    merge_moments,
)
from hpsearch.model.data import as_tensor
from hpsearch.physics import EnergyGrid, band_energy_error_mev_per_atom


@pytest.fixture(scope="module")
def be2_store(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hpsearch.data.mala import import_mala

    out = tmp_path_factory.mktemp("be2") / "be2.h5"
    return import_mala(be2_dir, out, EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=11))


# ---------------------------------------------------------------- network


def test_network_layers_follow_the_spec() -> None:
    spec = NetworkSpec(n_in=91, n_out=11, widths=(32, 16, 8), activations=("tanh", "SIGMOID", "LeakyReLU"),
                       dropout=0.2)
    net = build_network(spec, seed=0)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(91, 32), (32, 16), (16, 8), (8, 11)]
    acts = [type(m).__name__ for m in net if type(m).__name__ in ACTIVATIONS]
    assert acts == ["Tanh", "Sigmoid", "LeakyReLU"]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.2 for m in net) == 3
    assert isinstance(net[-1], torch.nn.Linear)  # linear output: scaled LDOS may be any real
    expected = 91 * 32 + 32 + 32 * 16 + 16 + 16 * 8 + 8 + 8 * 11 + 11
    assert count_parameters(net) == expected
    assert net(torch.zeros(4, 91)).shape == (4, 11)


def test_uniform_spec_and_no_hidden_layer() -> None:
    spec = NetworkSpec.uniform(n_in=5, n_out=3, n_hidden=4, width=7, activation="relu")
    assert spec.widths == (7, 7, 7, 7) and spec.hidden_activations == ("ReLU",) * 4
    linear = build_network(NetworkSpec(n_in=5, n_out=3, widths=()))
    assert len(linear) == 1 and isinstance(linear[0], torch.nn.Linear)
    assert sum(isinstance(m, torch.nn.Dropout) for m in build_network(spec)) == 0


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_builds_and_runs(name: str) -> None:
    net = build_network(NetworkSpec(n_in=6, n_out=2, widths=(5,), activations=name.lower()), seed=1)
    out = net(torch.randn(3, 6, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (3, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"activations": "Swishy"}, "unknown activation 'Swishy'"),
        ({"activations": ("ReLU",)}, "1 activations"),
        ({"widths": (4, 0)}, "must be positive"),
        ({"dropout": 1.0}, "dropout"),
        ({"n_in": 0}, "n_in"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_specs_are_rejected_with_the_value(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"n_in": 3, "n_out": 2, "widths": (4, 4)}
    with pytest.raises(pydantic.ValidationError, match=message):
        NetworkSpec(**{**base, **kwargs})


def test_seed_fixes_weights_and_leaves_global_rng_alone() -> None:
    spec = NetworkSpec(n_in=8, n_out=3, widths=(16,))
    state = torch.get_rng_state()
    a, b, c = build_network(spec, seed=3), build_network(spec, seed=3), build_network(spec, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)


# ---------------------------------------------------------------- scaling


def _data(n: int = 3000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=[5.0, -2.0, 100.0, 0.0], scale=[0.5, 3.0, 20.0, 1e-3], size=(n, 4))
    x[:, 3] = 7.0  # a constant feature must not give NaN
    y = np.abs(rng.normal(size=(n, 6))) * 0.01
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def test_feature_standardisation_matches_numpy() -> None:
    x, y = _data()
    scalers = Scalers().fit(x, y)
    xs = scalers.transform_descriptors(x).double().numpy()
    ref = x.double().numpy()
    np.testing.assert_allclose(xs[:, :3].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(xs[:, :3].std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(xs[:, 3], 0.0)  # constant: shifted, scale 1
    np.testing.assert_allclose(scalers.state_dict()["x_shift"].numpy(), ref.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(scalers.state_dict()["x_scale"].numpy()[:3], ref.std(axis=0)[:3], rtol=1e-6)


def test_ldos_minmax_is_global_and_inverts() -> None:
    x, y = _data()
    scalers = Scalers(ldos_mode="minmax").fit(x, y)
    ys = scalers.transform_ldos(y)
    assert float(ys.min()) == pytest.approx(0.0, abs=1e-7) and float(ys.max()) == pytest.approx(1.0, abs=1e-6)
    # one scale for every energy: the LDOS shape across energies is kept
    ratio = ys / (y - float(y.min()))
    assert torch.allclose(ratio[y > 1e-3], ratio[y > 1e-3].mean(), rtol=1e-4)
    torch.testing.assert_close(scalers.inverse_ldos(ys), y, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(scalers.inverse_descriptors(scalers.transform_descriptors(x)), x, rtol=1e-5, atol=1e-4)


def test_pooled_standard_mode_matches_numpy() -> None:
    x, y = _data()
    scalers = Scalers(descriptor_mode="standard", ldos_mode="feature-minmax").fit(x, y)
    state = scalers.state_dict()
    flat = x.double().numpy().ravel()
    np.testing.assert_allclose(state["x_shift"].numpy(), flat.mean(), rtol=1e-6)
    np.testing.assert_allclose(state["x_scale"].numpy(), flat.std(), rtol=1e-6)
    np.testing.assert_allclose(state["y_shift"].numpy(), y.numpy().min(axis=0))
    np.testing.assert_allclose(state["y_scale"].numpy(), np.ptp(y.numpy(), axis=0), rtol=1e-6)


def test_scalers_are_fitted_on_training_points_only() -> None:
    x, y = _data()
    x_val = x[:500] + 10.0  # shifted validation data must not move the scalers
    data = TrainingData(x[500:], y[500:], x_val, y[:500])
    scalers = data.scalers()
    np.testing.assert_allclose(scalers.state_dict()["x_shift"].numpy(), x[500:].double().mean(dim=0).numpy(),
                               rtol=1e-6)
    assert data.scalers() is scalers  # computed once per worker


def test_moments_merge_over_chunks_and_shards() -> None:
    rng = np.random.default_rng(1)
    big = rng.normal(3.0, 2.0, size=(70_000, 3)).astype(np.float32)  # more than one chunk
    whole = feature_moments(big)
    merged = merge_moments([feature_moments(big[:12_345]), feature_moments(big[12_345:])])
    ref = big.astype(np.float64)
    for m in (whole, merged):
        np.testing.assert_allclose(m["mean"].numpy(), ref.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose((m["m2"] / m["n"]).numpy(), ref.var(axis=0), rtol=1e-10)
        np.testing.assert_array_equal(m["min"].numpy(), ref.min(axis=0))


def test_scaler_state_round_trips_through_torch_save(tmp_path: Path) -> None:
    x, y = _data()
    scalers = Scalers(descriptor_mode="feature-minmax", ldos_mode="standard").fit(x, y)
    torch.save(scalers.state_dict(), tmp_path / "s.pt")
    back = Scalers.from_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert (back.descriptor_mode, back.ldos_mode) == ("feature-minmax", "standard")
    torch.testing.assert_close(back.transform_descriptors(x), scalers.transform_descriptors(x))
    torch.testing.assert_close(back.inverse_ldos(y), scalers.inverse_ldos(y))


def test_scalers_reject_bad_modes_and_nan() -> None:
    from hpsearch.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match="'zscore'"):
        Scalers(descriptor_mode="zscore")  # type: ignore[arg-type]
    x, y = _data()
    x[3, 1] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        Scalers().fit(x, y)
    with pytest.raises(ConfigError, match="not fitted"):
        Scalers().transform_descriptors(x)


def test_as_tensor_shares_memory_with_read_only_arrays() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    array.flags.writeable = False  # as arrays from Ray's object store are
    tensor = as_tensor(array)
    assert tensor.data_ptr() == array.ctypes.data


# ---------------------------------------------------------------- evaluation


def _oracle(scalers: Scalers, n_e: int, factor: float = 1.0) -> torch.nn.Sequential:
    """A linear net whose descriptors are the LDOS itself: predicts ``factor`` x the true LDOS."""
    state = scalers.state_dict()
    sx, mx, sy, my = (state[k].double() for k in ("x_scale", "x_shift", "y_scale", "y_shift"))
    layer = torch.nn.Linear(n_e, n_e)
    with torch.no_grad():  # scaled_y = (factor * (xs * sx + mx) - my) / sy
        layer.weight.copy_(torch.diag(factor * sx / sy))
        layer.bias.copy_((factor * mx - my) / sy)
    return torch.nn.Sequential(layer)


@pytest.fixture(scope="module")
def ldos_as_descriptors(be2_store: Path) -> TrainingData:
    """Be2 test data where each point's descriptors are its own LDOS (an exact model exists)."""
    from hpsearch.data.splits import Split

    data = TrainingData.from_store(be2_store, Split(("Be_snapshot0",), ("Be_snapshot1",),
                                                    ("Be_snapshot2", "Be_snapshot3")))
    tests = [TestSnapshot(**{**t.__dict__, "descriptors": t.ldos.clone()}) for t in data.test]
    return TrainingData(data.y_train.clone(), data.y_train, data.y_val.clone(), data.y_val, tests)


def test_exact_prediction_has_zero_error(ldos_as_descriptors: TrainingData) -> None:
    data = ldos_as_descriptors
    scalers = data.scalers()
    ev = evaluate(_oracle(scalers, data.n_energies), scalers, data.test)
    assert ev.names == ["Be_snapshot2", "Be_snapshot3"]
    assert max(ev.band_energy_errors_mev_per_atom) < 1e-3  # float32 rounding only
    assert max(ev.ldos_rmse) < 1e-6
    assert ev.reference_band_energies_ev[0] == pytest.approx(12.0766, abs=0.6)  # DFT value (README)


def test_band_energy_error_matches_the_per_snapshot_reference(ldos_as_descriptors: TrainingData) -> None:
    data = ldos_as_descriptors
    scalers = data.scalers()
    ev = evaluate(_oracle(scalers, data.n_energies, factor=1.01), scalers, data.test)
    for snap, err, rmse in zip(data.test, ev.band_energy_errors_mev_per_atom, ev.ldos_rmse, strict=True):
        pred = snap.ldos.double().numpy() * 1.01
        ref = band_energy_error_mev_per_atom(pred, snap.ldos.double().numpy(), snap.energy_grid,
                                             snap.voxel_volume_angstrom3, snap.n_electrons, snap.n_atoms,
                                             snap.temperature_k)
        assert err == pytest.approx(ref, rel=1e-4) and err > 1.0
        assert rmse == pytest.approx(float(np.sqrt(np.mean((0.01 * snap.ldos.double().numpy()) ** 2))), rel=1e-4)
    assert ev.mean_band_energy_error_mev_per_atom == pytest.approx(np.mean(ev.band_energy_errors_mev_per_atom))


def test_non_finite_prediction_gives_nan_not_an_exception(ldos_as_descriptors: TrainingData) -> None:
    data = ldos_as_descriptors
    scalers = data.scalers()
    net = _oracle(scalers, data.n_energies)
    with torch.no_grad():
        net[0].bias[0] = float("nan")
    ev = evaluate(net, scalers, data.test)
    assert all(np.isnan(ev.band_energy_errors_mev_per_atom)) and np.isnan(ev.mean_band_energy_error_mev_per_atom)
    # a prediction that cannot hold the electrons (all zero LDOS) is a NaN error too
    zero = _oracle(scalers, data.n_energies, factor=0.0)
    assert np.isnan(evaluate(zero, scalers, data.test).mean_band_energy_error_mev_per_atom)
