"""The gpaw engine of the embedded dataset: Kohn-Sham DFT (GPAW) on the model engine's MD atoms.

Tests that run GPAW are skipped when it cannot be imported (`make dft` installs it); the error
paths (missing GPAW, wrong settings, unknown engine) run everywhere.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from hpsearch.data import _al_md, _epm
from hpsearch.data.generate import DatasetSettings, generate_dataset, self_check
from hpsearch.data.gpaw_dataset import BAND_ENERGY_LIMIT, ELECTRON_LIMIT, GpawSettings
from hpsearch.data.store import open_store
from hpsearch.descriptors import n_bispectrum
from hpsearch.errors import ConfigError
from hpsearch.physics import dos_from_ldos


def _gpaw_importable() -> bool:
    try:
        import gpaw  # noqa: F401
    except ImportError:
        return False
    return True


needs_gpaw = pytest.mark.skipif(not _gpaw_importable(),
                                reason="GPAW is not installed (`make dft` installs it); the gpaw engine is optional")
# The test setting: 4 atoms with a 4x4x4 k-mesh, PW 200 eV, two snapshots (`--small` in the CLI).
SMALL = GpawSettings.small()


@pytest.fixture(scope="module")
def gpaw_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small GPAW store, generated once for this module (two snapshots, two processes)."""
    return generate_dataset(tmp_path_factory.mktemp("gpaw") / "small.h5", SMALL, progress=False, engine="gpaw")


# ----------------------------------------------------------------------------- everywhere


def test_missing_gpaw_names_make_dft(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without GPAW the engine fails at once (before the MD) with an ImportError naming `make dft`."""
    monkeypatch.setitem(sys.modules, "gpaw", None)  # what Python does for a package that is absent
    with pytest.raises(ImportError, match="make dft"):
        generate_dataset(tmp_path / "x.h5", SMALL, progress=False, engine="gpaw")
    assert not (tmp_path / "x.h5").exists()
    from typer.testing import CliRunner

    from hpsearch.cli import app
    from hpsearch.errors import HpsearchError

    result = CliRunner().invoke(app, ["data", "generate", "--engine", "gpaw", "-o", str(tmp_path / "y.h5")])
    # an HpsearchError: the console entry point prints it as one line, without a traceback
    assert isinstance(result.exception, HpsearchError) and "make dft" in str(result.exception)


def test_engine_and_settings_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'dft' is not one of qe, model, gpaw"):
        generate_dataset(tmp_path / "x.h5", engine="dft")
    with pytest.raises(ConfigError, match="takes GpawSettings"):
        generate_dataset(tmp_path / "x.h5", DatasetSettings.small(), engine="gpaw")
    with pytest.raises(ConfigError, match="engine 'model' takes DatasetSettings, not GpawSettings"):
        generate_dataset(tmp_path / "x.h5", SMALL, engine="model")
    with pytest.raises(ValidationError, match=r"use at least \(23, 23, 13\)"):
        GpawSettings(grid=(24, 24, 12))
    with pytest.raises(ValidationError, match="multiple of 4"):
        GpawSettings(n_atoms=10)


def test_defaults_and_same_md_as_the_model_engine() -> None:
    """Defaults meet the minimums (8 x 16 atoms); the model twin has the same MD, grid and SNAP."""
    settings = GpawSettings()
    assert settings.n_snapshots >= 8 and settings.n_atoms >= 16 and settings.kpoint_mesh() == (2, 2, 4)
    twin = settings.model_settings()
    assert isinstance(twin, DatasetSettings) and twin.grid == settings.grid and twin.n_atoms == settings.n_atoms
    assert np.allclose(twin.cell_angstrom(), settings.cell_angstrom())
    setup = settings.dft_setup()
    assert setup.n_bands > setup.n_converged_bands >= 3 * settings.n_atoms // 2
    assert setup.smearing_width_ev() == pytest.approx(0.02568, abs=1e-5)
    assert GpawSettings().settings_hash() != GpawSettings(seed=1).settings_hash()


def test_cli_rejects_unknown_engine() -> None:
    from typer.testing import CliRunner

    from hpsearch.cli import app

    result = CliRunner().invoke(app, ["data", "generate", "--engine", "dft", "-o", "x.h5"])
    assert result.exit_code != 0 and "is not one of qe, model, gpaw" in str(result.exception)


# ----------------------------------------------------------------------------- with GPAW


@needs_gpaw
@pytest.mark.slow
@pytest.mark.lammps
def test_self_check_in_store_and_within_limits(gpaw_store: Path) -> None:
    """Band energy from the LDOS vs the occupied eigenvalue sum; electrons at the Fermi level."""
    with open_store(gpaw_store) as store:
        attrs = store.attrs
        snapshots = [store.read(name) for name in store.names]
    assert len(snapshots) == SMALL.n_snapshots
    for snap in snapshots:
        checks = self_check(snap)
        assert checks == pytest.approx({key: snap.reference[key] for key in checks}, rel=1e-9)
        assert checks["band_energy_relative_error"] < BAND_ENERGY_LIMIT, (snap.name, checks)
        assert checks["electron_count_relative_error"] < ELECTRON_LIMIT, (snap.name, checks)
        # GPAW's own Fermi level (its Fermi-Dirac width is k_B T) agrees with the eigenvalue bisection
        assert snap.reference["gpaw_fermi_energy_ev"] == pytest.approx(snap.reference["fermi_energy_ev"], abs=2e-3)
    worst = attrs["self_check"]
    assert worst["band_energy_relative_error"] == max(s.reference["band_energy_relative_error"] for s in snapshots)
    assert worst["electron_count_limit"] == ELECTRON_LIMIT


@needs_gpaw
@pytest.mark.slow
@pytest.mark.lammps
def test_each_state_normalised_so_the_dos_counts_electrons(gpaw_store: Path) -> None:
    """The LDOS summed over the grid is exactly sum_nk 2 w_k g(E - e_nk) from the stored levels."""
    with open_store(gpaw_store) as store:
        snap = store.read(store.names[0])
    levels = snap.provenance["eigenvalues_ev"]
    weights = snap.provenance["kpoint_weights"]
    assert sum(weights) == pytest.approx(1.0)
    expected = np.zeros(snap.energy_grid.n)
    for weight, energies in zip(weights, levels):
        expected += 2.0 * weight * _epm.gaussian_weights(snap.energy_grid.energies, np.asarray(energies),
                                                         SMALL.broadening_ev).sum(axis=0)
    dos = dos_from_ldos(np.asarray(snap.ldos, dtype=np.float64), snap.voxel_volume_angstrom3)
    np.testing.assert_allclose(dos, expected, rtol=1e-5, atol=1e-6)
    # the pseudo wave functions of PAW are not normalised to one; the store says by how much
    assert 0.9 < snap.provenance["mean_pseudo_norm"] < 1.1 and snap.provenance["mean_pseudo_norm"] != 1.0


@needs_gpaw
@pytest.mark.slow
@pytest.mark.lammps
def test_store_format_provenance_and_atoms(gpaw_store: Path) -> None:
    """Same store format as the model engine; engine, versions and DFT settings recorded; MD atoms."""
    with open_store(gpaw_store) as store:
        attrs = store.attrs
        snap = store.read(store.names[1])
        content_hash = store.content_hash()
    assert attrs["engine"] == "gpaw" and attrs["settings_hash"] == SMALL.settings_hash() and len(content_hash) == 64
    assert attrs["code_versions"]["gpaw"] and attrs["code_versions"]["gpaw-data"] != "not installed"
    dft = snap.provenance["dft"]
    assert dft["xc"] == "PBE" and dft["plane_wave_cutoff_ev"] == 200.0 and dft["kpoint_mesh"] == [4, 4, 4]
    assert dft["occupations"] == "Fermi-Dirac" and snap.provenance["engine"] == "gpaw"
    assert snap.descriptors.shape == (*SMALL.grid, n_bispectrum(10)) and np.isfinite(snap.descriptors).all()
    assert snap.ldos.shape == (*SMALL.grid, SMALL.n_energies) and (snap.ldos >= 0).all()
    ldos = snap.ldos.reshape(-1, SMALL.n_energies)
    assert ldos.sum(axis=1).std() / ldos.sum(axis=1).mean() > 0.05  # the LDOS varies in space
    md = _al_md.run_md(SMALL.n_atoms, SMALL.density_g_per_cm3, SMALL.temperature_k, SMALL.n_snapshots,
                       SMALL.equilibration_ps, SMALL.snapshot_interval_ps, SMALL.seed)
    np.testing.assert_array_equal(snap.positions_angstrom, md.frames[1])


@needs_gpaw
@pytest.mark.slow
@pytest.mark.lammps
def test_second_call_and_cli_reuse_the_store(gpaw_store: Path, caplog: pytest.LogCaptureFixture) -> None:
    from typer.testing import CliRunner

    from hpsearch.cli import app

    before = gpaw_store.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="hpsearch.data.generate"):
        generate_dataset(gpaw_store, SMALL, progress=False, engine="gpaw")
    assert any("reusing" in record.message for record in caplog.records)
    result = CliRunner().invoke(app, ["data", "generate", "--engine", "gpaw", "--small", "-o", str(gpaw_store),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 snapshots" in result.output and "self-check" in result.output
    other = CliRunner().invoke(app, ["data", "generate", "--engine", "gpaw", "--small", "--seed", "3", "-o",
                                     str(gpaw_store), "--no-progress"])
    assert other.exit_code != 0 and "overwrite" in str(other.exception)  # other settings: refused
    assert gpaw_store.stat().st_mtime_ns == before
