"""The embedded aluminium dataset: model physics, self-check, determinism, reuse, CLI."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from hpsearch.data import _al_md, _epm
from hpsearch.data.generate import DatasetSettings, default_store_path, generate_dataset, self_check
from hpsearch.data.store import open_store
from hpsearch.descriptors import grid_points_angstrom, n_bispectrum
from hpsearch.errors import DataError

SMALL = DatasetSettings.small()
# Fewer k-points: only for the determinism tests, which compare two runs of the same code.
TINY = DatasetSettings.small(n_snapshots=1, kpoint_length_angstrom=16.0)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small variant, generated once for this module."""
    return generate_dataset(tmp_path_factory.mktemp("al") / "small.h5", SMALL, progress=False)


@pytest.fixture(scope="module")
def snapshots(small_store: Path) -> list:
    with open_store(small_store) as store:
        return [store.read(name) for name in store.names]


# ----------------------------------------------------------------------------- electronic model


def test_form_factor_long_wavelength_limit_is_minus_two_thirds_fermi_energy() -> None:
    """Linear screening: n_ion * v(q -> 0) = -2/3 E_F (Thomas-Fermi limit, closed form)."""
    omega_bohr3 = (_al_md.lattice_constant_angstrom(2.699) / _epm.BOHR_ANGSTROM) ** 3 / 4.0
    density = 3.0 / omega_bohr3
    fermi_ha = 0.5 * (3.0 * math.pi**2 * density) ** (2.0 / 3.0)
    v0 = _epm.EmptyCorePotential().form_factor_ha_bohr3(np.array([1e-5]), density)[0] / omega_bohr3
    assert v0 == pytest.approx(-2.0 / 3.0 * fermi_ha, rel=1e-6)


def test_screened_form_factors_near_ashcroft_fermi_surface_fit() -> None:
    """V(111), V(200) of perfect fcc Al within 10 % of Ashcroft's de Haas-van Alphen fit."""
    a_bohr = _al_md.lattice_constant_angstrom(2.699) / _epm.BOHR_ANGSTROM
    omega = a_bohr**3 / 4.0
    q = 2.0 * math.pi / a_bohr * np.array([math.sqrt(3.0), 2.0])
    v_ry = 2.0 * _epm.EmptyCorePotential().form_factor_ha_bohr3(q, 3.0 / omega) / omega
    np.testing.assert_allclose(v_ry, [0.0179, 0.0562], rtol=0.10)


def test_hamiltonian_gap_of_a_single_fourier_component() -> None:
    """Only V(+-G) non-zero: at k = G/2 the two lowest levels split by 2|V| (two-band model)."""
    cell = np.eye(3) * 4.0
    m_max = _epm.max_miller(cell, 60.0)
    v_box = np.zeros(tuple(4 * m_max + 1), dtype=np.complex128)
    centre = 2 * m_max
    v_g = 0.004 + 0.003j  # Hartree
    v_box[centre[0] + 1, centre[1], centre[2]] = v_g
    v_box[centre[0] - 1, centre[1], centre[2]] = np.conj(v_g)
    bands = _epm.solve_k(np.array([0.5, 0.0, 0.0]), 1.0, cell, 60.0, v_box, m_max, 4)
    gap_ev = bands.energies_ev[1] - bands.energies_ev[0]
    free_ev = 0.5 * (math.pi / (4.0 / _epm.BOHR_ANGSTROM)) ** 2 * _epm.HARTREE_EV
    assert gap_ev == pytest.approx(2 * abs(v_g) * _epm.HARTREE_EV, rel=1e-2)
    assert 0.5 * (bands.energies_ev[0] + bands.energies_ev[1]) == pytest.approx(free_ev, abs=1e-3)


def test_density_on_grid_matches_direct_plane_wave_sum() -> None:
    """FFT placement and normalisation against psi(r) = sum_G c_G exp(i (k+G) r) / sqrt(volume)."""
    cell = np.diag([4.0, 4.5, 5.0])
    positions = np.array([[0.3, 0.2, 0.1], [2.1, 2.4, 2.6]])
    v_box, m_max = _epm.crystal_potential(positions, cell, 40.0, _epm.EmptyCorePotential(), 6.0)
    k = np.array([0.25, -0.25, 0.25])
    bands = _epm.solve_k(k, 1.0, cell, 40.0, v_box, m_max, 3)
    shape = tuple(int(v) for v in _epm.minimum_grid(cell, 40.0))
    volume = float(np.linalg.det(cell))
    density = _epm.density_on_grid(bands, shape, volume)
    points = grid_points_angstrom(cell, shape)
    phases = np.exp(2j * math.pi * (points @ np.linalg.inv(cell)) @ (bands.millers + k).T)
    direct = np.abs(phases @ bands.coefficients) ** 2 / volume
    np.testing.assert_allclose(density, direct, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(density.sum(axis=0) * volume / np.prod(shape), 1.0, rtol=1e-10)


def test_kpoint_threads_give_the_same_bytes() -> None:
    cell = np.eye(3) * 4.0494
    positions = np.array([[0.0, 0.0, 0.0], [2.0, 2.1, 0.0], [2.0, 0.0, 2.0], [0.1, 2.0, 2.0]])
    kwargs = dict(potential=_epm.EmptyCorePotential(), cutoff_ev=60.0, kpoint_mesh=(3, 3, 3), grid_shape=(9, 9, 9),
                  energies_ev=np.linspace(-1.5, 14.25, 32), sigma_ev=0.5, temperature_k=298.0, n_electrons=12.0)
    one = _epm.solve_electrons(positions, cell, workers=1, **kwargs)
    three = _epm.solve_electrons(positions, cell, workers=3, **kwargs)
    assert np.array_equal(one.ldos, three.ldos) and one.band_energy_ev == three.band_energy_ev
    assert one.n_kpoints == 14 and one.n_electrons == pytest.approx(12.0, abs=1e-9)


def test_monkhorst_pack_time_reversal_reduction() -> None:
    for mesh, expected in [((2, 2, 2), 4), ((3, 3, 3), 14), ((1, 1, 1), 1), ((4, 8, 8), 128)]:
        points, weights = _epm.monkhorst_pack(mesh)
        assert len(points) == expected
        assert weights.sum() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- settings


def test_settings_reject_bad_values_with_actionable_messages() -> None:
    with pytest.raises(ValidationError, match="multiple of 4"):
        DatasetSettings(n_atoms=10)
    with pytest.raises(ValidationError, match=r"use at least \(11, 11, 11\)"):
        DatasetSettings(grid=(8, 8, 8))
    with pytest.raises(ValidationError, match="energy window ends"):
        DatasetSettings(n_energies=40)
    with pytest.raises(ValidationError, match="extra"):
        DatasetSettings(unknown=1)  # type: ignore[call-arg]


def test_defaults_meet_the_issue_minimums() -> None:
    settings = DatasetSettings()
    assert settings.n_snapshots >= 8 and settings.n_atoms >= 16 and min(settings.grid) >= 20
    assert settings.n_energies >= 16 and settings.twojmax == 10
    assert settings.rcut_angstrom == pytest.approx(4.676, abs=1e-3)
    assert _al_md.lattice_constant_angstrom(2.699) == pytest.approx(4.0494, abs=1e-4)
    assert settings.kpoint_mesh() == (6, 6, 6)


def test_default_store_path_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HPSEARCH_DATA_DIR", str(tmp_path))
    path = default_store_path(SMALL)
    assert path.parent == tmp_path and path.name == f"al298-{SMALL.settings_hash()[:8]}.h5"
    assert default_store_path(SMALL) != default_store_path(SMALL.model_copy(update={"seed": 1}))


# ----------------------------------------------------------------------------- generated store


@pytest.mark.lammps
def test_self_check_every_snapshot(snapshots: list) -> None:
    """Band energy from the LDOS within 1 % of the eigenvalue sum; electrons within 0.5 %."""
    assert len(snapshots) == SMALL.n_snapshots
    for snap in snapshots:
        checks = self_check(snap)
        assert checks["band_energy_relative_error"] < 0.01, (snap.name, checks)
        assert checks["electron_count_relative_error"] < 0.005, (snap.name, checks)
        assert checks == pytest.approx({k: snap.reference[k] for k in checks}, rel=1e-9)
        # the model's own bookkeeping: electrons held by the eigenvalues at its Fermi level
        assert snap.n_electrons == 3 * snap.n_atoms
        assert 10.5 < snap.reference["fermi_energy_ev"] < 12.5  # free-electron E_F = 11.7 eV


@pytest.mark.lammps
def test_arrays_shapes_and_values(snapshots: list) -> None:
    for snap in snapshots:
        assert snap.descriptors.shape == (*SMALL.grid, n_bispectrum(10)) and snap.descriptors.dtype == np.float32
        assert snap.ldos.shape == (*SMALL.grid, SMALL.n_energies) and snap.ldos.dtype == np.float32
        assert np.isfinite(snap.descriptors).all() and (snap.ldos >= 0).all()
        assert snap.descriptor_settings["rcut"] == pytest.approx(4.67637)
        assert snap.temperature_k == 298.0
        assert snap.provenance["model"]["md"]["reference"].startswith("L. A. Girifalco")


@pytest.mark.lammps
def test_ldos_is_local(snapshots: list) -> None:
    """The LDOS varies in space and follows the atoms (lower in the repulsive empty cores)."""
    snap = snapshots[0]
    ldos = snap.ldos.reshape(-1, snap.ldos.shape[-1]).astype(np.float64)
    middle = int(np.argmin(np.abs(snap.energy_grid.energies - 6.0)))
    assert ldos[:, middle].std() / ldos[:, middle].mean() > 0.05
    points = grid_points_angstrom(snap.cell_angstrom, snap.grid_shape)
    box = np.diag(snap.cell_angstrom)
    delta = points[:, None, :] - snap.positions_angstrom[None]
    distance = np.linalg.norm(delta - box * np.round(delta / box), axis=-1).min(axis=1)
    assert np.corrcoef(ldos[:, middle], distance)[0, 1] > 0.3
    other = snapshots[1].ldos.reshape(ldos.shape)
    assert np.abs(other - ldos).max() > 0.05 * ldos.max()  # configurations differ, so do LDOS


@pytest.mark.lammps
def test_md_snapshots_are_thermal_and_decorrelated(small_store: Path, snapshots: list) -> None:
    with open_store(small_store) as store:
        diagnostics = store.attrs["md_diagnostics"]
    assert 0.05 < diagnostics["rms_displacement_angstrom"] < 0.25
    assert abs(diagnostics["successive_displacement_correlation"]) < 0.5
    first, second = snapshots[0].positions_angstrom, snapshots[1].positions_angstrom
    assert not np.allclose(first, second, atol=0.01)


@pytest.mark.lammps
def test_second_call_reuses_the_store(small_store: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = small_store.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="hpsearch.data.generate"):
        assert generate_dataset(small_store, SMALL, progress=False) == small_store
    assert small_store.stat().st_mtime_ns == before
    assert any("reusing" in record.message for record in caplog.records)
    with pytest.raises(DataError, match="overwrite"):
        generate_dataset(small_store, TINY, progress=False)


@pytest.mark.lammps
def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    hashes = []
    paths = []
    for name, settings in [("a", TINY), ("b", TINY), ("c", TINY.model_copy(update={"seed": 1}))]:
        paths.append(generate_dataset(tmp_path / f"{name}.h5", settings, progress=False))
        with open_store(paths[-1]) as store:
            hashes.append(store.content_hash())
    assert hashes[0] == hashes[1]
    assert paths[0].read_bytes() == paths[1].read_bytes()  # the file itself, not only its content
    assert hashes[2] != hashes[0]


@pytest.mark.lammps
def test_cli_generate_reuses_and_reports(small_store: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from hpsearch.cli import data as data_cli
    from hpsearch.cli import generate as generate_cli

    app = typer.Typer()
    data_cli.register(app)
    generate_cli.register(app)
    result = CliRunner().invoke(app, ["data", "generate", "--engine", "model", "--small", "-o", str(small_store),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "4 snapshots" in result.output and "self-check" in result.output
    bad = CliRunner().invoke(app, ["data", "generate", "--engine", "model", "--atoms", "10", "-o", str(small_store)])
    assert bad.exit_code != 0 and "multiple of 4" in str(bad.exception)
