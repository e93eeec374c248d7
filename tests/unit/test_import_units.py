"""LDOS units, QE cube import and partial grids, against the real Be2 files (MALA and pp.x cubes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hpsearch.cli import app
from hpsearch.data import import_mala, open_store
from hpsearch.data.cube import cube_energy_ev, read_cube_snapshot, read_qe_output
from hpsearch.data.units import ldos_unit_factor
from hpsearch.errors import ConfigError, DataError
from hpsearch.physics import EnergyGrid, band_energy_from_ldos

BE2_GRID = EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=11)
runner = CliRunner()


def test_unit_factors_from_first_principles() -> None:
    bohr, rydberg = 0.529177210903, 13.605693122994  # CODATA 2018
    assert ldos_unit_factor("1/(eV A^3)") == ("1/(eV A^3)", 1.0)
    assert ldos_unit_factor("1/(eV*Angstrom^3)")[0] == "1/(eV A^3)"
    assert ldos_unit_factor("1/(eV Bohr^3)")[1] == pytest.approx(1 / bohr**3, rel=1e-12)
    assert ldos_unit_factor("1/(ry bohr^3)")[1] == pytest.approx(1 / (rydberg * bohr**3), rel=1e-12)
    with pytest.raises(ConfigError, match=r"unknown LDOS unit 'eV/A\^3'.*1/\(Ry Bohr\^3\)"):
        ldos_unit_factor("eV/A^3")


def _mala_copy(be2_dir: Path, folder: Path, name: str = "Be_snapshot0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".in.npy", ".info.json"):
        shutil.copy(be2_dir / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


@pytest.mark.parametrize("unit", ["1/(eV Bohr^3)", "1/(Ry Bohr^3)"])
def test_mala_import_in_other_units(unit: str, be2_dir: Path, tmp_path: Path) -> None:
    """The same LDOS written in another unit imports to the same numbers; the unit is recorded."""
    folder = _mala_copy(be2_dir, tmp_path / "files")
    original = np.load(be2_dir / "Be_snapshot0.out.npy")
    factor = ldos_unit_factor(unit)[1]
    np.save(folder / "Be_snapshot0.out.npy", (original.astype(np.float64) / factor).astype(np.float32))
    path = import_mala(folder, tmp_path / "be.h5", BE2_GRID, ldos_units=unit)
    with open_store(path) as store:
        snap = store.read("Be_snapshot0")
    np.testing.assert_allclose(snap.ldos, original, rtol=1e-6, atol=0)
    assert snap.provenance["ldos_units"] == unit
    assert snap.provenance["ldos_factor_to_per_ev_angstrom3"] == pytest.approx(factor, rel=1e-15)


def test_mala_cli_ldos_units_and_bad_unit(be2_dir: Path, tmp_path: Path) -> None:
    ok = runner.invoke(app, ["data", "import-mala", str(be2_dir), "-o", str(tmp_path / "a.h5"), "--snapshot",
                             "Be_snapshot1", "--energy-grid", "-5:2.5:11", "--ldos-units", "1/(eV A^3)"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["data", "import-mala", str(be2_dir), "-o", str(tmp_path / "b.h5"),
                              "--energy-grid", "-5:2.5:11", "--ldos-units", "per bohr"])
    assert isinstance(bad.exception, ConfigError) and "unknown LDOS unit" in str(bad.exception)
    assert not (tmp_path / "b.h5").exists()


# ----------------------------------------------------------------------------- QE cube files


def _cubes(be2_dir: Path) -> list[Path]:
    return sorted((be2_dir / "cubes").glob("*.cube"))


def test_cube_headers_give_the_energy_grid(be2_dir: Path) -> None:
    energies = [cube_energy_ev(p) for p in _cubes(be2_dir)]
    assert energies == pytest.approx(list(BE2_GRID.energies))
    run = read_qe_output(be2_dir / "Be_snapshot0.out")
    info = json.loads((be2_dir / "Be_snapshot0.info.json").read_text())
    assert run.n_electrons == 4.0 and run.fermi_energy_ev == pytest.approx(info["fermi_energy_dft"])
    assert run.temperature_k == pytest.approx(info["temperature"], rel=1e-4)


@pytest.fixture(scope="module")
def cube_store(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Snapshot 0 imported from its 11 pp.x cube files through the command line."""
    path = tmp_path_factory.mktemp("cube") / "cube.h5"
    result = runner.invoke(app, ["data", "import-cube", str(be2_dir / "cubes"), "-o", str(path), "--name", "Be0",
                                 "--qe-output", str(be2_dir / "Be_snapshot0.out"),
                                 "--descriptors", str(be2_dir / "Be_snapshot0.in.npy")])
    assert result.exit_code == 0, result.output
    return path


def test_cube_import_equals_mala_conversion(cube_store: Path, be2_dir: Path) -> None:
    reference = np.load(be2_dir / "Be_snapshot0.out.npy")
    info = json.loads((be2_dir / "Be_snapshot0.info.json").read_text())
    with open_store(cube_store) as store:
        snap = store.read("Be0")
    np.testing.assert_allclose(snap.ldos, reference, rtol=1e-6, atol=0)
    assert snap.energy_grid.offset_ev == pytest.approx(-5.0) and snap.energy_grid.spacing_ev == pytest.approx(2.5)
    assert snap.energy_grid.n == 11
    np.testing.assert_allclose(snap.cell_angstrom, info["atoms"]["cell"], atol=1e-5)
    np.testing.assert_allclose(snap.positions_angstrom, info["atoms"]["positions"], atol=1e-5)
    np.testing.assert_allclose(snap.voxel_angstrom, info["voxel"]["array"], atol=1e-6)
    np.testing.assert_array_equal(snap.descriptors, np.load(be2_dir / "Be_snapshot0.in.npy")[..., 3:])
    assert snap.provenance["ldos_units"] == "1/(Ry Bohr^3)" and len(snap.provenance["files"]) == 11


def test_cube_import_has_the_physics_of_the_mala_file(cube_store: Path, be2_dir: Path) -> None:
    """Same Fermi level and band energy as Be_snapshot0.out.npy with info.json's geometry."""
    info = json.loads((be2_dir / "Be_snapshot0.info.json").read_text())
    volume = abs(np.linalg.det(np.asarray(info["voxel"]["array"])))
    reference = np.load(be2_dir / "Be_snapshot0.out.npy").astype(np.float64)
    band_ref, fermi_ref = band_energy_from_ldos(reference, BE2_GRID, volume, 4.0, info["temperature"])
    with open_store(cube_store) as store:
        snap = store.read("Be0")
    band, fermi = band_energy_from_ldos(snap.ldos.astype(np.float64), snap.energy_grid,
                                        snap.voxel_volume_angstrom3, snap.n_electrons, snap.temperature_k)
    # The cube header gives the voxel in Bohr to 6 decimals (2e-6 relative): the voxel volume
    # differs from info.json's by 3e-7, which moves E_F by 4e-5 eV and E_band by 9e-5 eV here.
    assert float(fermi) == pytest.approx(float(fermi_ref), abs=1e-4)
    assert float(band) == pytest.approx(float(band_ref), abs=2e-4)  # 0.1 meV/atom for 2 atoms
    same_geometry, _ = band_energy_from_ldos(snap.ldos.astype(np.float64), BE2_GRID, volume, 4.0, info["temperature"])
    assert float(same_geometry) == pytest.approx(float(band_ref), abs=1e-6)  # the LDOS itself agrees closely


def test_cube_errors_are_clear(be2_dir: Path, tmp_path: Path) -> None:
    cubes = _cubes(be2_dir)
    with pytest.raises(DataError, match="temperature and electron count"):
        read_cube_snapshot(cubes, "x", descriptors=be2_dir / "Be_snapshot0.in.npy")
    with pytest.raises(DataError, match="not a uniform grid"):
        read_cube_snapshot(cubes[:3] + cubes[4:], "x", temperature_k=300.0, n_electrons=4.0,
                           descriptors=be2_dir / "Be_snapshot0.in.npy")
    broken = tmp_path / "broken.cube"
    broken.write_text("".join(cubes[0].read_text().splitlines(keepends=True)[:9]))
    with pytest.raises(DataError, match="broken.cube"):
        read_cube_snapshot([broken, cubes[1]], "x", temperature_k=300.0, n_electrons=4.0)
    np.save(tmp_path / "wrong.npy", np.zeros((18, 18, 26, 91), dtype=np.float32))
    with pytest.raises(DataError, match=r"wrong.npy: descriptors of shape \(18, 18, 26, 91\)"):
        read_cube_snapshot(cubes, "x", temperature_k=300.0, n_electrons=4.0, descriptors=tmp_path / "wrong.npy")


# ----------------------------------------------------------------------------- partial grids

OFFSET, BLOCK = (3, 5, 7), (6, 13, 1)


def _slab(array: np.ndarray) -> np.ndarray:
    (i, j, k), (a, b, c) = OFFSET, BLOCK
    return np.ascontiguousarray(array[i:i + a, j:j + b, k:k + c])


def _mala_slab(be2_dir: Path, folder: Path) -> Path:
    """A block of snapshot 0 as MALA writes one: the whole cell's info.json, the block's arrays."""
    folder.mkdir(parents=True)
    shutil.copy(be2_dir / "Be_snapshot0.info.json", folder / "Be_snapshot0.info.json")
    for suffix in (".in.npy", ".out.npy"):
        np.save(folder / f"Be_snapshot0{suffix}", _slab(np.load(be2_dir / f"Be_snapshot0{suffix}")))
    return folder


def test_mala_slab_keeps_the_whole_cell_and_its_offset(be2_dir: Path, tmp_path: Path) -> None:
    path = import_mala(_mala_slab(be2_dir, tmp_path / "slab"), tmp_path / "slab.h5", BE2_GRID)
    info = json.loads((be2_dir / "Be_snapshot0.info.json").read_text())
    with open_store(path) as store:
        snap = store.read("Be_snapshot0")
        assert "block at (3, 5, 7) of 18x18x27" in dict(store.summary_rows())["grid"]
        assert store.content_hash(recompute=True) == store.content_hash()
    assert snap.grid_shape == BLOCK and snap.whole_grid_shape == (18, 18, 27) and snap.offset == OFFSET
    np.testing.assert_allclose(snap.cell_angstrom, info["atoms"]["cell"])
    np.testing.assert_allclose(snap.voxel_angstrom, info["voxel"]["array"], rtol=1e-12)
    np.testing.assert_array_equal(snap.ldos, _slab(np.load(be2_dir / "Be_snapshot0.out.npy")))


def test_slab_descriptors_recomputed_at_its_points(be2_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("lammps")
    path = import_mala(_mala_slab(be2_dir, tmp_path / "slab"), tmp_path / "slab.h5", BE2_GRID)
    result = runner.invoke(app, ["data", "descriptors", str(path), "--rcut", "4.67637", "--twojmax", "10"])
    assert result.exit_code == 0, result.output
    expected = _slab(np.load(be2_dir / "Be_snapshot0.in.npy"))[..., 3:]
    with open_store(path) as store:
        snap = store.read("Be_snapshot0")
    assert snap.descriptors.shape == (*BLOCK, 91)
    np.testing.assert_allclose(snap.descriptors, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_cube_block_with_full_grid(be2_dir: Path, tmp_path: Path) -> None:
    """A cube file of a block (origin at the block's first point) imports with --full-grid."""
    from ase.io.cube import read_cube, write_cube

    folder = tmp_path / "cubes"
    folder.mkdir()
    for path in _cubes(be2_dir):
        with open(path) as stream:
            content = read_cube(stream)
        voxel = np.asarray(content["spacing"])
        atoms = content["atoms"].copy()
        atoms.set_cell(voxel * np.asarray(BLOCK)[:, None])
        header = path.read_text().splitlines()[1]
        with open(folder / path.name, "w") as stream:
            write_cube(stream, atoms, _slab(content["data"]), origin=np.asarray(OFFSET) @ voxel, comment=header)
    snap = read_cube_snapshot(sorted(folder.glob("*.cube")), "block", qe_output=be2_dir / "Be_snapshot0.out",
                              descriptors=None, full_grid_shape=(18, 18, 27))
    info = json.loads((be2_dir / "Be_snapshot0.info.json").read_text())
    assert snap.grid_shape == BLOCK and snap.offset == OFFSET and snap.whole_grid_shape == (18, 18, 27)
    np.testing.assert_allclose(snap.cell_angstrom, info["atoms"]["cell"], atol=1e-5)
    np.testing.assert_allclose(snap.ldos, _slab(np.load(be2_dir / "Be_snapshot0.out.npy")), rtol=1e-5)
    expected = _slab(np.load(be2_dir / "Be_snapshot0.in.npy"))[..., 3:]  # SNAP computed at the block's points
    np.testing.assert_allclose(snap.descriptors, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    with pytest.raises(DataError, match="does not fit"):
        from hpsearch.data.store import write_store
        from dataclasses import replace
        write_store(tmp_path / "bad.h5", [replace(snap, grid_offset=(15, 0, 0))])


def test_acsd_sampling_of_a_slab_uses_the_slab_points(be2_dir: Path) -> None:
    """The sampled points of a block are where MALA's .in.npy says those grid points are."""
    from hpsearch.descriptors.acsd import sample_point_pairs
    from hpsearch.descriptors.scan import sample_snapshot

    raw_in = _slab(np.load(be2_dir / "Be_snapshot0.in.npy"))
    ldos = _slab(np.load(be2_dir / "Be_snapshot0.out.npy"))
    import ase

    info = json.loads((be2_dir / "Be_snapshot0.info.json").read_text())
    atoms = ase.Atoms(numbers=info["atoms"]["numbers"], positions=info["atoms"]["positions"],
                      cell=info["atoms"]["cell"], pbc=True)
    sampled = sample_snapshot("slab", atoms, ldos, n_points=20, seed=3, full_grid_shape=(18, 18, 27),
                              grid_offset=OFFSET)
    anchors, partners = sample_point_pairs(int(np.prod(BLOCK)), 20, 3)  # the rows acsd draws
    rows = np.concatenate([anchors, partners])
    flat_in, flat_ldos = raw_in.reshape(-1, raw_in.shape[-1]), ldos.reshape(-1, ldos.shape[-1])
    np.testing.assert_array_equal(sampled.ldos, flat_ldos[rows])
    np.testing.assert_allclose(sampled.points_angstrom, flat_in[rows, :3], atol=1e-5)
    with pytest.raises(DataError, match="does not fit"):
        sample_snapshot("slab", atoms, ldos, n_points=5, full_grid_shape=(18, 18, 27), grid_offset=(13, 6, 27))
