"""hpsearch.physics against closed forms, a brute-force float64 quadrature and real Be2 DFT data.

The reference integrator below is written independently of the library: it evaluates the
hat-interpolated DOS with ``np.interp`` and integrates it against the Fermi-Dirac factor with
Gauss-Legendre on pieces no wider than kT (split at grid points and at the Fermi level).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import optimize, special

from hpsearch.errors import DataError
from hpsearch.physics import (
    KB_EV_PER_K,
    EnergyGrid,
    band_energy,
    band_energy_error_from_dos,
    band_energy_error_mev_per_atom,
    band_energy_from_ldos,
    density_from_ldos,
    dos_from_ldos,
    entropy_contribution,
    fermi_energy,
    number_of_electrons,
)

KB = 8.617333262e-5  # eV/K, CODATA 2018
SOMMERFELD = math.pi**2 / 6.0
BE2_GRID = EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=11)
GL_NODES, GL_WEIGHTS = np.polynomial.legendre.leggauss(12)


# ----------------------------------------------------------------------------- references
def hat_dos(grid: EnergyGrid, dos: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """The hat-interpolated DOS: linear between points, ramps to 0 one spacing beyond the ends."""
    e = grid.offset_ev + grid.spacing_ev * np.arange(-1, grid.n + 1)
    values = np.concatenate([[0.0], dos, [0.0]])
    return np.interp(energy, e, values, left=0.0, right=0.0)


def reference(
    grid: EnergyGrid, dos: np.ndarray, mu: float, temperature_k: float
) -> tuple[float, float, float]:
    """(electrons, band energy eV, -TS eV) by brute-force Gauss-Legendre quadrature."""
    kt = KB * temperature_k
    edges = grid.offset_ev + grid.spacing_ev * np.arange(-1, grid.n + 1)
    breaks = np.unique(np.concatenate([edges, [min(max(mu, edges[0]), edges[-1])]]))
    width = kt if kt > 0 else grid.spacing_ev
    pieces = [
        np.linspace(a, b, int(math.ceil((b - a) / width)) + 1) for a, b in zip(breaks, breaks[1:])
    ]
    points = np.unique(np.concatenate(pieces))
    left, right = points[:-1, None], points[1:, None]
    e = (0.5 * (left + right) + 0.5 * (right - left) * GL_NODES).ravel()
    w = (0.5 * (right - left) * GL_WEIGHTS).ravel()
    d = hat_dos(grid, dos, e)
    if kt > 0:
        occupied, empty = special.expit(-(e - mu) / kt), special.expit((e - mu) / kt)
        s = -(special.xlogy(occupied, occupied) + special.xlogy(empty, empty))
    else:
        occupied, s = (e < mu).astype(float), np.zeros_like(e)
    return (
        float(np.sum(w * d * occupied)),
        float(np.sum(w * d * e * occupied)),
        float(-kt * np.sum(w * d * s)),
    )


def reference_fermi(grid: EnergyGrid, dos: np.ndarray, n_electrons: float, t_k: float) -> float:
    lo, hi = grid.offset_ev - 3 * grid.spacing_ev, grid.energies[-1] + 3 * grid.spacing_ev
    return optimize.brentq(
        lambda mu: reference(grid, dos, mu, t_k)[0] - n_electrons, lo, hi, xtol=1e-14, rtol=1e-15
    )


def smooth_dos(energy: np.ndarray) -> np.ndarray:
    return 0.2 + 0.1 * np.sin(energy / 3.0) + 0.05 * np.exp(-((energy - 9.0) ** 2) / 4.0)


def load_be2(be2_dir: Path, index: int) -> tuple[np.ndarray, dict, float]:
    info = json.loads((be2_dir / f"Be_snapshot{index}.info.json").read_text())
    ldos = np.load(be2_dir / f"Be_snapshot{index}.out.npy")
    cell = np.array(info["atoms"]["cell"], dtype=np.float64)
    voxel_volume = abs(np.linalg.det(cell)) / np.prod(info["grid_dimensions"])
    return ldos, info, float(voxel_volume)


# ----------------------------------------------------------------------------- energy grid
def test_energy_grid_energies_and_dict_round_trip() -> None:
    grid = EnergyGrid(offset_ev=np.float32(-5.0), spacing_ev=2.5, n=np.int64(11))
    assert grid.energies.dtype == np.float64
    np.testing.assert_array_equal(grid.energies, -5.0 + 2.5 * np.arange(11))
    assert json.loads(json.dumps(grid.to_dict())) == {"offset_ev": -5.0, "spacing_ev": 2.5, "n": 11}
    assert EnergyGrid.from_dict(grid.to_dict()) == grid
    assert KB_EV_PER_K == pytest.approx(KB, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs", [{"spacing_ev": 0.0}, {"spacing_ev": -1.0}, {"n": 0}, {"offset_ev": math.nan}]
)
def test_energy_grid_rejects_bad_values(kwargs: dict) -> None:
    values = {"offset_ev": 0.0, "spacing_ev": 0.1, "n": 5} | kwargs
    with pytest.raises(DataError, match=next(iter(kwargs))):
        EnergyGrid(**values)


def test_energy_grid_from_dict_rejects_unknown_and_missing_keys() -> None:
    with pytest.raises(DataError, match="unknown keys \\['extra'\\]"):
        EnergyGrid.from_dict({"offset_ev": 0.0, "spacing_ev": 0.1, "n": 5, "extra": 1})
    with pytest.raises(DataError, match="missing keys \\['n'\\]"):
        EnergyGrid.from_dict({"offset_ev": 0.0, "spacing_ev": 0.1})


# ----------------------------------------------------------------------------- closed forms
GRID = EnergyGrid(offset_ev=-20.0, spacing_ev=0.5, n=121)  # -20 .. 40 eV


def test_constant_dos_closed_forms_zero_and_finite_temperature() -> None:
    c, mu, e0, step = 0.3, 7.3, GRID.offset_ev, GRID.spacing_ev
    dos = np.full(GRID.n, c)
    lower_tail_n, lower_tail_e = c * step / 2, c * step * (e0 / 2 - step / 6)
    n_zero = lower_tail_n + c * (mu - e0)
    eb_zero = lower_tail_e + c * (mu**2 - e0**2) / 2
    assert number_of_electrons(dos, GRID, mu, 0.0) == pytest.approx(n_zero, rel=1e-13)
    assert band_energy(dos, GRID, mu, 0.0) == pytest.approx(eb_zero, rel=1e-13)
    assert entropy_contribution(dos, GRID, mu, 0.0) == 0.0
    for t_k in (298.0, 3000.0):  # Sommerfeld is exact for a linear integrand (edges >> kT)
        kt = KB * t_k
        assert number_of_electrons(dos, GRID, mu, t_k) == pytest.approx(n_zero, rel=1e-12)
        expected = eb_zero + c * SOMMERFELD * kt**2
        assert band_energy(dos, GRID, mu, t_k) == pytest.approx(expected, rel=1e-12)
        expected_ts = -c * 2 * SOMMERFELD * kt**2
        assert entropy_contribution(dos, GRID, mu, t_k) == pytest.approx(expected_ts, rel=1e-11)


def test_linear_dos_closed_forms_zero_and_finite_temperature() -> None:
    alpha, beta, mu, e0, step = 2.0, 0.04, 11.7, GRID.offset_ev, GRID.spacing_ev
    dos = alpha + beta * GRID.energies  # positive on the grid
    d0 = alpha + beta * e0
    n_zero = d0 * step / 2 + alpha * (mu - e0) + beta * (mu**2 - e0**2) / 2
    eb_zero = (
        d0 * step * (e0 / 2 - step / 6) + alpha * (mu**2 - e0**2) / 2 + beta * (mu**3 - e0**3) / 3
    )
    assert number_of_electrons(dos, GRID, mu, 0.0) == pytest.approx(n_zero, rel=1e-13)
    assert band_energy(dos, GRID, mu, 0.0) == pytest.approx(eb_zero, rel=1e-13)
    kt = KB * 3000.0
    n_t = n_zero + beta * SOMMERFELD * kt**2
    eb_t = eb_zero + (alpha + 2 * beta * mu) * SOMMERFELD * kt**2
    ts_t = -2 * SOMMERFELD * kt**2 * (alpha + beta * mu)
    assert number_of_electrons(dos, GRID, mu, 3000.0) == pytest.approx(n_t, rel=1e-12)
    assert band_energy(dos, GRID, mu, 3000.0) == pytest.approx(eb_t, rel=1e-12)
    assert entropy_contribution(dos, GRID, mu, 3000.0) == pytest.approx(ts_t, rel=1e-11)


def test_half_triangle_tails_beyond_the_grid_at_zero_temperature() -> None:
    c, step = 0.3, GRID.spacing_ev
    e0, e_last = GRID.offset_ev, GRID.energies[-1]
    dos = np.full(GRID.n, c)
    mu_low = e0 - 0.3 * step  # inside the lower half-triangle
    assert number_of_electrons(dos, GRID, mu_low, 0.0) == pytest.approx(
        c * (0.7 * step) ** 2 / (2 * step), rel=1e-13
    )
    mu_high = e_last + step / 2  # inside the upper half-triangle
    n_full = c * step / 2 + c * (e_last - e0)
    assert number_of_electrons(dos, GRID, mu_high, 0.0) == pytest.approx(
        n_full + c * 3 * step / 8, rel=1e-13
    )
    eb_full = c * step * (e0 / 2 - step / 6) + c * (e_last**2 - e0**2) / 2
    assert band_energy(dos, GRID, mu_high, 0.0) == pytest.approx(
        eb_full + c * (e_last * 3 * step / 8 + step**2 / 12), rel=1e-13
    )
    total = c * step * GRID.n  # every hat has area c * spacing
    assert number_of_electrons(dos, GRID, e_last + 2 * step, 0.0) == pytest.approx(total, rel=1e-13)
    assert number_of_electrons(dos, GRID, e0 - 1.01 * step, 0.0) == 0.0


@pytest.mark.parametrize("t_k", [0.0, 298.0, 3000.0])
@pytest.mark.parametrize("where", ["below", "lower-tail", "inside", "upper-tail", "above"])
def test_against_brute_force_quadrature_everywhere(t_k: float, where: str) -> None:
    grid = EnergyGrid(offset_ev=-2.0, spacing_ev=1.5, n=9)
    mu = {"below": -4.0, "lower-tail": -2.6, "inside": 4.37, "upper-tail": 10.9, "above": 12.3}
    dos = smooth_dos(grid.energies)
    n_ref, eb_ref, ts_ref = reference(grid, dos, mu[where], t_k)
    assert number_of_electrons(dos, grid, mu[where], t_k) == pytest.approx(n_ref, abs=1e-12)
    assert band_energy(dos, grid, mu[where], t_k) == pytest.approx(eb_ref, abs=1e-11)
    assert entropy_contribution(dos, grid, mu[where], t_k) == pytest.approx(ts_ref, abs=1e-13)


# ----------------------------------------------------------------------------- spacing
@pytest.mark.parametrize("spacing_ev", [0.1, 2.5])
def test_spacing_independence_smooth_dos(spacing_ev: float) -> None:
    t_k, n_electrons = 298.0, 4.0
    grid = EnergyGrid(offset_ev=-5.0, spacing_ev=spacing_ev, n=int(round(25 / spacing_ev)) + 1)
    dos = smooth_dos(grid.energies)
    for mu in (3.3, 8.91, 9.0):  # off-grid and on-grid Fermi levels, |x| up to ~100
        n_ref, eb_ref, ts_ref = reference(grid, dos, mu, t_k)
        assert number_of_electrons(dos, grid, mu, t_k) == pytest.approx(n_ref, rel=1e-11)
        assert band_energy(dos, grid, mu, t_k) == pytest.approx(eb_ref, rel=1e-11)
        assert entropy_contribution(dos, grid, mu, t_k) == pytest.approx(ts_ref, rel=1e-9)
    mu = fermi_energy(dos, grid, n_electrons, t_k)
    assert mu == pytest.approx(reference_fermi(grid, dos, n_electrons, t_k), abs=1e-10)
    assert number_of_electrons(dos, grid, mu, t_k) == pytest.approx(n_electrons, abs=1e-10)
    if spacing_ev == 0.1:  # a fine grid also approaches the smooth DOS itself
        e = np.linspace(-5.0, mu, 200001)
        assert number_of_electrons(dos, grid, mu, 0.0) == pytest.approx(
            np.trapezoid(smooth_dos(e), e) + dos[0] * spacing_ev / 2, abs=1e-3
        )


# ----------------------------------------------------------------------------- Fermi level
@pytest.mark.parametrize("t_k", [0.0, 298.0, 5000.0])
def test_fermi_energy_inverts_the_electron_count(t_k: float) -> None:
    rng = np.random.default_rng(1)
    dos = rng.uniform(0.05, 1.0, BE2_GRID.n)
    for n_electrons in (0.01, 1.0, 4.0, 10.0):
        mu = fermi_energy(dos, BE2_GRID, n_electrons, t_k)
        assert isinstance(mu, float)
        assert number_of_electrons(dos, BE2_GRID, mu, t_k) == pytest.approx(n_electrons, abs=1e-10)
        n_ref = reference(BE2_GRID, dos, mu, t_k)[0]
        assert n_ref == pytest.approx(n_electrons, abs=1e-10)


@pytest.mark.parametrize("t_k", [0.0, 298.0])
def test_fermi_level_in_a_gap_and_with_negative_values(t_k: float) -> None:
    dos = np.full(BE2_GRID.n, 0.4)
    dos[4:7] = 0.0  # hat DOS is zero on [E_4, E_6] = [5, 10] eV; below it: 4 hats = 4 electrons
    mu = fermi_energy(dos, BE2_GRID, 4.0, t_k)
    assert 5.0 <= mu <= 10.0
    assert number_of_electrons(dos, BE2_GRID, mu, t_k) == pytest.approx(4.0, abs=1e-10)
    wiggly = np.where(np.arange(BE2_GRID.n) % 3 == 0, -0.05, 0.5)  # a poor network's output
    mu = fermi_energy(wiggly, BE2_GRID, 3.0, t_k)
    assert reference(BE2_GRID, wiggly, mu, t_k)[0] == pytest.approx(3.0, abs=1e-10)


def test_fermi_energy_matches_constant_dos_closed_form() -> None:
    c, e0, step = 0.3, GRID.offset_ev, GRID.spacing_ev
    dos = np.full(GRID.n, c)
    for t_k in (0.0, 298.0):  # N = c (step/2 + mu - e0) exactly for mu inside the grid
        expected = e0 - step / 2 + 6.0 / c
        assert fermi_energy(dos, GRID, 6.0, t_k) == pytest.approx(expected, abs=1e-11)


# ----------------------------------------------------------------------------- torch
def test_torch_matches_numpy_single_and_batched() -> None:
    rng = np.random.default_rng(7)
    dos = rng.uniform(0.05, 1.0, (5, BE2_GRID.n))
    t_k, n_electrons = 298.0, 4.0
    mus = [fermi_energy(row, BE2_GRID, n_electrons, t_k) for row in dos]
    batch = torch.from_numpy(dos)
    mu_t = fermi_energy(batch, BE2_GRID, n_electrons, t_k)
    assert isinstance(mu_t, torch.Tensor) and mu_t.shape == (5,) and mu_t.dtype == torch.float64
    np.testing.assert_allclose(mu_t.numpy(), mus, rtol=0, atol=1e-12)
    assert fermi_energy(batch[2], BE2_GRID, n_electrons, t_k) == pytest.approx(mus[2], abs=1e-12)
    for fn in (band_energy, number_of_electrons, entropy_contribution):
        batched = fn(batch, BE2_GRID, mu_t, t_k)
        assert isinstance(batched, torch.Tensor) and batched.shape == (5,)
        single = [fn(row, BE2_GRID, mu, t_k) for row, mu in zip(dos, mus)]
        np.testing.assert_allclose(batched.numpy(), single, rtol=1e-12, atol=1e-15)
    as_numpy = band_energy(dos, BE2_GRID, np.array(mus), t_k)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.shape == (5,)
    mu32 = fermi_energy(batch.float(), BE2_GRID, n_electrons, t_k)  # float32 in: float64 math
    np.testing.assert_allclose(mu32.numpy(), mus, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_cuda_batch_stays_on_device() -> None:
    dos = torch.rand(64, BE2_GRID.n, dtype=torch.float64) + 0.1
    mu = fermi_energy(dos.cuda(), BE2_GRID, 4.0, 298.0)
    assert mu.device.type == "cuda"
    expected = fermi_energy(dos, BE2_GRID, 4.0, 298.0).numpy()
    np.testing.assert_allclose(mu.cpu().numpy(), expected, atol=1e-11)


# ----------------------------------------------------------------------------- Be2 data
@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_be2_snapshot_fermi_level_and_band_energy(be2_dir: Path, index: int) -> None:
    ldos, info, voxel_volume = load_be2(be2_dir, index)
    voxel = np.array(info["voxel"]["array"])
    assert abs(np.linalg.det(voxel)) == pytest.approx(voxel_volume, rel=1e-12)
    t_k, n_electrons = info["temperature"], info["number_of_electrons_exact"]
    dos = dos_from_ldos(ldos, voxel_volume)
    assert dos.shape == (11,) and dos.dtype == np.float64
    expected_dos = ldos.astype(np.float64).reshape(-1, 11).sum(axis=0) * voxel_volume
    np.testing.assert_allclose(dos, expected_dos, rtol=1e-12)
    mu = fermi_energy(dos, BE2_GRID, n_electrons, t_k)
    electrons = number_of_electrons(dos, BE2_GRID, mu, t_k)
    assert electrons == pytest.approx(4.0, abs=1e-10)
    eb = band_energy(dos, BE2_GRID, mu, t_k)
    dft = info["band_energy_dft_calculation"]
    assert abs(eb - dft) < 0.5, f"snapshot {index}: Eb {eb:.4f} eV vs DFT {dft:.4f} eV"
    mu_ref = reference_fermi(BE2_GRID, dos, n_electrons, t_k)  # independent quadrature
    assert mu == pytest.approx(mu_ref, abs=1e-9)
    assert eb == pytest.approx(reference(BE2_GRID, dos, mu_ref, t_k)[1], abs=1e-9)
    ts = entropy_contribution(dos, BE2_GRID, mu, t_k)
    assert -2e-3 < ts < 0.0  # DFT: a few 1e-4 eV
    assert band_energy_from_ldos(ldos, BE2_GRID, voxel_volume, n_electrons, t_k) == pytest.approx(
        (eb, mu), abs=1e-12
    )
    density = density_from_ldos(ldos, BE2_GRID, mu, t_k)
    assert density.shape == ldos.shape[:-1]
    assert density.sum() * voxel_volume == pytest.approx(4.0, abs=1e-9)
    print(
        f"Be2 snapshot {index}: mu {mu:.6f} eV, N {electrons:.12f}, Eb {eb:.6f} eV, "
        f"DFT {dft:.6f} eV, diff {eb - dft:+.4f} eV, -TS {ts:.3e} eV"
    )


def test_be2_batched_ldos_and_torch_ldos(be2_dir: Path) -> None:
    ldos, info, voxel_volume = load_be2(be2_dir, 0)
    t_k = info["temperature"]
    stacked = torch.from_numpy(np.stack([ldos, 1.01 * ldos]))
    dos = dos_from_ldos(stacked, voxel_volume, batch_dims=1)
    assert isinstance(dos, torch.Tensor) and dos.shape == (2, 11)
    np.testing.assert_allclose(dos[0].numpy(), dos_from_ldos(ldos, voxel_volume), rtol=1e-12)
    mu = fermi_energy(dos, BE2_GRID, 4.0, t_k)
    assert float(mu[1]) < float(mu[0])  # more states per eV -> lower Fermi level


# ----------------------------------------------------------------------------- loss
def test_band_energy_error_zero_for_identical_and_positive_symmetric_otherwise(
    be2_dir: Path,
) -> None:
    ldos, info, voxel_volume = load_be2(be2_dir, 0)
    args = (BE2_GRID, voxel_volume, info["number_of_electrons_exact"], 2, info["temperature"])
    assert band_energy_error_mev_per_atom(ldos, ldos.copy(), *args) == 0.0
    noise = np.random.default_rng(3).normal(size=ldos.shape).astype(np.float32)
    small = ldos * (1 + 0.01 * noise)
    large = ldos * (1 + 0.05 * noise) + 0.001 * ldos.mean()
    err_small = band_energy_error_mev_per_atom(small, ldos, *args)
    assert err_small > 0.0
    assert band_energy_error_mev_per_atom(ldos, small, *args) == pytest.approx(err_small, rel=1e-12)
    assert band_energy_error_mev_per_atom(large, ldos, *args) > err_small
    # independent: Fermi levels and band energies from the brute-force quadrature
    t_k = info["temperature"]
    dos_true, dos_pred = (dos_from_ldos(x, voxel_volume) for x in (ldos, large))
    eb_true = reference(BE2_GRID, dos_true, reference_fermi(BE2_GRID, dos_true, 4.0, t_k), t_k)[1]
    eb_pred = reference(BE2_GRID, dos_pred, reference_fermi(BE2_GRID, dos_pred, 4.0, t_k), t_k)[1]
    assert band_energy_error_mev_per_atom(large, ldos, *args) == pytest.approx(
        abs(eb_pred - eb_true) / 2 * 1000, abs=1e-6
    )


def test_band_energy_error_batched_torch_matches_single(be2_dir: Path) -> None:
    ldos, info, voxel_volume = load_be2(be2_dir, 0)
    t_k = info["temperature"]
    scales = np.array([1.0, 0.98, 1.01, 1.05])
    preds = np.stack([ldos * s for s in scales])
    single = [
        band_energy_error_mev_per_atom(p, ldos, BE2_GRID, voxel_volume, 4.0, 2, t_k) for p in preds
    ]
    dos_pred = dos_from_ldos(torch.from_numpy(preds), voxel_volume, batch_dims=1)
    dos_true = dos_from_ldos(torch.from_numpy(ldos), voxel_volume)
    batched = band_energy_error_from_dos(dos_pred, dos_true, BE2_GRID, 4.0, 2, t_k)
    assert isinstance(batched, torch.Tensor) and batched.shape == (4,)
    np.testing.assert_allclose(batched.numpy(), single, rtol=1e-9, atol=1e-9)
    assert float(batched[0]) == 0.0 and bool((batched[1:] > 0).all())


# ----------------------------------------------------------------------------- bad input
def test_nan_dos_is_a_data_error_or_nan_when_not_strict() -> None:
    dos = np.full((3, BE2_GRID.n), 0.3)
    dos[1, 4] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fermi_energy(dos[1], BE2_GRID, 4.0, 298.0)
    mu = fermi_energy(torch.from_numpy(dos), BE2_GRID, 4.0, 298.0, strict=False)
    assert math.isnan(float(mu[1])) and bool(torch.isfinite(mu[[0, 2]]).all())
    err = band_energy_error_from_dos(dos, dos[0], BE2_GRID, 4.0, 2, 298.0, strict=False)
    assert math.isnan(err[1]) and err[0] == 0.0
    ldos = np.full((2, 2, 2, BE2_GRID.n), 0.1)
    ldos[0, 1, 0, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        dos_from_ldos(ldos, 1.0)


@pytest.mark.parametrize("shape", [(12,), (2, 3, 11), ()])
def test_wrong_dos_shape_is_a_data_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(DataError, match="shape"):
        fermi_energy(np.ones(shape), BE2_GRID, 4.0, 298.0)


@pytest.mark.parametrize("n_electrons", [0.0, -1.0, 100.0])
def test_unreachable_electron_count_is_a_data_error(n_electrons: float) -> None:
    dos = np.full(BE2_GRID.n, 0.3)  # holds 0.3 * 2.5 * 11 = 8.25 electrons
    with pytest.raises(DataError, match="cannot place .* electrons"):
        fermi_energy(dos, BE2_GRID, n_electrons, 298.0)
    with pytest.raises(DataError, match="cannot place"):
        fermi_energy(dos, BE2_GRID, 0.3 * 2.5 * 11, 0.0)  # full only for mu -> infinity


def test_other_bad_arguments_are_data_errors() -> None:
    dos, ldos = np.full(BE2_GRID.n, 0.3), np.full((2, 2, BE2_GRID.n), 0.1)
    with pytest.raises(DataError, match="temperature_k"):
        fermi_energy(dos, BE2_GRID, 4.0, -1.0)
    with pytest.raises(DataError, match="voxel_volume"):
        dos_from_ldos(ldos, 0.0)
    with pytest.raises(DataError, match="differ in shape"):
        band_energy_error_mev_per_atom(ldos, ldos[:1], BE2_GRID, 1.0, 1.0, 2, 298.0)
    with pytest.raises(DataError, match="n_atoms"):
        band_energy_error_mev_per_atom(ldos, ldos, BE2_GRID, 1.0, 1.0, 0, 298.0)
    with pytest.raises(DataError, match="fermi_energy_ev"):
        band_energy(np.stack([dos, dos]), BE2_GRID, [1.0, 2.0, 3.0], 298.0)
    with pytest.raises(DataError, match="numeric"):
        fermi_energy(["a"] * BE2_GRID.n, BE2_GRID, 4.0, 298.0)
    with pytest.raises(DataError, match="numeric"):
        dos_from_ldos(np.array([["a"] * BE2_GRID.n]), 1.0)
