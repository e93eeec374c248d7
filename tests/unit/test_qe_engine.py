"""The qe engine: Be molecular dynamics, Quantum ESPRESSO's LDOS and the store it makes.

Real programs throughout: LAMMPS with the W-Be SNAP potential, ld1.x, pw.x and pp.x (skipped
with the reason when Quantum ESPRESSO is not installed; `make qe` installs it). The physics is
checked against independent numbers: the LDOS summed over the grid must be the Kohn-Sham DOS of
pw.x's eigenvalues broadened with pp.x's kernel (units, the ultrasoft augmentation and the
normalisation in one check), and on MALA's real Be2 snapshot 0 our LDOS must match MALA's.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from hpsearch.data import _be_md, _qe
from hpsearch.data.qe_dataset import QeSettings, default_qe_store_path, generate_qe_dataset
from hpsearch.data.store import open_store
from hpsearch.errors import ConfigError

HAS_QE = all(shutil.which(name) for name in _qe.EXECUTABLES)
needs_qe = pytest.mark.skipif(not HAS_QE, reason="Quantum ESPRESSO (pw.x, pp.x, ld1.x) is not installed: `make qe`")
BE2 = Path(__file__).resolve().parents[3] / "shared" / "data" / "mala-be2"


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAS_QE:
        pytest.skip("Quantum ESPRESSO (pw.x, pp.x, ld1.x) is not installed: `make qe`")
    folder = tmp_path_factory.mktemp("qe")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPSEARCH_DATA_DIR", str(folder))
        return generate_qe_dataset(folder / "be-small.h5", QeSettings.small(), progress=False)


def test_hcp_cell_has_the_papers_density() -> None:
    cell = _be_md.hcp_cell_angstrom((2, 1, 1), 1.896)
    volume_cm3 = abs(np.linalg.det(cell)) * 1e-24
    density = 4 * _be_md.BE_MASS_AMU * _be_md.AMU_GRAMS / volume_cm3
    assert density == pytest.approx(1.896, rel=1e-9)
    assert len(_be_md.hcp_sites_angstrom((2, 1, 1), 1.896)) == 4


def test_fft_grid_and_kpoints_follow_the_cell() -> None:
    base = QeSettings()
    assert base.grid() == (18, 18, 27) and base.kpoint_mesh() == (8, 8, 8) and base.n_atoms == 2
    bigger = QeSettings(repeats=(2, 2, 1))
    assert bigger.grid() == (36, 36, 27) and bigger.kpoint_mesh() == (4, 4, 8) and bigger.n_atoms == 8
    assert bigger.settings_hash() != base.settings_hash()


def test_settings_refuse_a_window_that_misses_states() -> None:
    with pytest.raises(ValueError, match="energy_offset_ev"):
        QeSettings(energy_offset_ev=-2.0)
    with pytest.raises(ValueError, match="window ends"):
        QeSettings(n_energies=20)


def test_pp_kernel_is_normalised_and_as_wide_as_fermi_dirac() -> None:
    """pp.x's broadening for Fermi-Dirac smearing: -df/dE, area 1, std pi d / sqrt(3)."""
    energies = np.linspace(-30.0, 30.0, 60001)
    d = 0.5
    dos = _qe.summed_dos([[0.0]], [1.0], energies, d)  # one level, weight 1, spin 2
    step = energies[1] - energies[0]
    assert dos.sum() * step == pytest.approx(2.0, rel=1e-6)
    std = math.sqrt((dos * energies**2).sum() * step / 2.0)
    assert std == pytest.approx(math.pi * d / math.sqrt(3.0), rel=1e-4)


def test_band_energy_from_eigenvalues_is_the_occupied_sum() -> None:
    """Two k-points of weight 1/2, E_F = 1 eV at 1 K: the levels -1 and 0 eV are full (2 electrons each
    spin-degenerate state x weight), 2 and 5 eV empty."""
    eigenvalues = np.array([[-1.0, 2.0], [0.0, 5.0]])
    band, electrons = _qe.band_energy_from_eigenvalues(eigenvalues, np.array([0.5, 0.5]), 1.0, 1.0)
    assert electrons == pytest.approx(2.0, abs=1e-12)
    assert band == pytest.approx(2.0 * 0.5 * -1.0 + 2.0 * 0.5 * 0.0, abs=1e-12)


def test_missing_quantum_espresso_names_make_qe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ImportError, match="make qe"):
        _qe.find_executables()


def test_md_is_reproducible_and_thermal() -> None:
    first = _be_md.run_md((1, 1, 2), 1.896, 298.0, 2, 0.2, 0.2, seed=3)
    again = _be_md.run_md((1, 1, 2), 1.896, 298.0, 2, 0.2, 0.2, seed=3)
    other = _be_md.run_md((1, 1, 2), 1.896, 298.0, 2, 0.2, 0.2, seed=4)
    np.testing.assert_array_equal(first.frames[1], again.frames[1])
    assert not np.allclose(first.frames[1], other.frames[1])
    rms = first.diagnostics["rms_displacement_angstrom"]
    assert 0.005 < rms < 0.3, rms  # a vibrating solid, neither frozen nor molten
    assert abs(first.diagnostics["mean_pressure_gpa"]) < 10.0


@needs_qe
def test_small_store_holds_the_kohn_sham_dos(small_store: Path) -> None:
    settings = QeSettings.small()
    with open_store(small_store) as store:
        assert len(store.names) == 2 and store.attrs["engine"] == "qe"
        assert store.attrs["settings_hash"] == settings.settings_hash()
        for name in store.names:
            snap = store.read(name)
            assert snap.ldos.shape == (*settings.grid(), settings.n_energies)
            assert snap.descriptors.shape == (*settings.grid(), 91)
            assert set(snap.numbers.tolist()) == {4} and snap.n_electrons == 4.0
            reference = snap.reference
            # the LDOS integrates to pw.x's eigenvalue DOS broadened by pp.x's kernel
            assert reference["dos_relative_error"] < 1e-5
            assert reference["band_energy_relative_error"] < 0.02  # 4x4x4 k-points, coarse on purpose
            assert 7.0 < reference["fermi_energy_ev"] < 11.0
            assert float(snap.ldos.min()) > -1e-4


@needs_qe
def test_same_settings_reuse_the_store(small_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dft(*args: object, **kwargs: object) -> None:
        raise AssertionError("the store should have been reused")

    monkeypatch.setattr(_qe, "solve_snapshot", no_dft)
    assert generate_qe_dataset(small_store, QeSettings.small(), progress=False) == small_store


@needs_qe
def test_default_path_names_engine_and_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPSEARCH_DATA_DIR", str(tmp_path))
    path = default_qe_store_path(QeSettings.small())
    assert path.parent == tmp_path and path.name.startswith("be1000-qe-")  # the label holds the temperature


@needs_qe
@pytest.mark.slow
@pytest.mark.skipif(not BE2.is_dir(), reason=f"MALA's Be2 data not found at {BE2}")
def test_ldos_of_malas_snapshot_matches_malas(tmp_path: Path) -> None:
    """Our pipeline on MALA's Be2 snapshot 0 (its cell, atoms, cutoffs, k-mesh and LDOS settings)."""
    info = json.loads((BE2 / "Be_snapshot0.info.json").read_text())
    positions = np.asarray(info["atoms"]["positions"], dtype=np.float64)
    cell = np.asarray(info["atoms"]["cell"], dtype=np.float64)
    setup = _qe.QeSetup(ecutwfc_ry=40.0, ecutrho_ry=160.0, kpoint_mesh=(8, 8, 8), grid=(18, 18, 27), n_bands=4,
                        temperature_k=float(info["temperature"]), energy_offset_ev=-5.0, energy_spacing_ev=2.5,
                        n_energies=11, broadening_ev=5.0,
                        band_margin_broadenings=None)  # MALA's SCF had 4 Kohn-Sham states (its .out): so do we,
    # although they do not cover its LDOS window (with 8 bands the top energies hold 3x MALA's LDOS)
    pseudo = _qe.ensure_pseudopotential(tmp_path / "pseudo")
    result = _qe.solve_snapshot(positions, cell, setup, pseudo, tmp_path / "run")
    mala = np.load(BE2 / "Be_snapshot0.out.npy").astype(np.float64)
    assert result.ldos.shape == mala.shape
    for e in range(mala.shape[-1]):
        correlation = np.corrcoef(result.ldos[..., e].ravel(), mala[..., e].ravel())[0, 1]
        assert correlation > 0.95, (e, correlation)
        assert result.ldos[..., e].mean() == pytest.approx(mala[..., e].mean(), rel=0.03)
    assert result.fermi_energy_ev == pytest.approx(info["fermi_energy_dft"], abs=0.2)


def test_cli_refuses_options_of_other_engines() -> None:
    from hpsearch.cli.generate import _settings

    with pytest.raises(ConfigError, match="--repeats"):
        _settings(False, {"n_atoms": 8}, "qe")
    with pytest.raises(ConfigError, match="--repeats"):
        _settings(False, {"repeats": (2, 1, 1)}, "model")
    assert _settings(True, {"repeats": (1, 1, 2)}, "qe").repeats == (1, 1, 2)
