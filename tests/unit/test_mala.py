"""MALA import against the real Be2 data: bit-identical arrays, metadata, and every validation error."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hpsearch.data import import_mala, open_store
from hpsearch.data.mala import MALA_SNAP_SETTINGS, find_mala_snapshots
from hpsearch.errors import DataError
from hpsearch.physics import KB_EV_PER_K, EnergyGrid

BE2_GRID = EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=11)
NAMES = [f"Be_snapshot{i}" for i in range(4)]


@pytest.fixture(scope="module")
def be2_store(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_mala(be2_dir, tmp_path_factory.mktemp("be2") / "be2.h5", BE2_GRID)


def test_arrays_bit_identical(be2_store: Path, be2_dir: Path) -> None:
    with open_store(be2_store) as store:
        assert store.names == NAMES
        for name in NAMES:
            descriptors, ldos = store.read_arrays(name)
            raw_in = np.load(be2_dir / f"{name}.in.npy")
            np.testing.assert_array_equal(descriptors, raw_in[..., 3:])
            np.testing.assert_array_equal(ldos, np.load(be2_dir / f"{name}.out.npy"))
            assert descriptors.shape == (18, 18, 27, 91) and descriptors.dtype == np.float32


def test_metadata_equals_info_json(be2_store: Path, be2_dir: Path) -> None:
    with open_store(be2_store) as store:
        for name in NAMES:
            info = json.loads((be2_dir / f"{name}.info.json").read_text())
            meta = store.metadata(name)
            np.testing.assert_array_equal(meta.numbers, info["atoms"]["numbers"])
            np.testing.assert_array_equal(meta.positions_angstrom, info["atoms"]["positions"])
            np.testing.assert_array_equal(meta.cell_angstrom, info["atoms"]["cell"])
            assert meta.pbc.tolist() == info["atoms"]["pbc"]
            assert list(meta.grid_shape) == info["grid_dimensions"]
            assert meta.temperature_k == info["temperature"]
            assert meta.n_electrons == info["number_of_electrons_exact"] == 4.0
            assert meta.reference["fermi_energy_ev"] == info["fermi_energy_dft"]
            assert meta.reference["band_energy_ev"] == info["band_energy_dft_calculation"]
            assert meta.reference["total_energy_ev"] == info["total_energy_dft_calculation"]
            assert meta.provenance["info"] == info  # lossless: every key of info.json is kept
            assert meta.energy_grid == BE2_GRID
            assert meta.descriptor_settings == MALA_SNAP_SETTINGS
            np.testing.assert_allclose(meta.voxel_angstrom, info["voxel"]["array"], rtol=1e-12)
            voxel_volume = abs(np.linalg.det(np.array(info["voxel"]["array"])))
            assert meta.voxel_volume_angstrom3 == pytest.approx(voxel_volume, rel=1e-12)
        assert store.metadata("Be_snapshot0").reference["band_energy_ev"] == pytest.approx(12.0766, abs=1e-4)


def test_voxel_volume_gives_four_electrons(be2_store: Path) -> None:
    """Independent check of the stored geometry: the LDOS integrates to ~4 electrons (README)."""
    with open_store(be2_store) as store:
        snap = store.read("Be_snapshot0")
    dos = snap.ldos.astype(np.float64).sum(axis=(0, 1, 2)) * snap.voxel_volume_angstrom3
    energies = BE2_GRID.energies
    kt = KB_EV_PER_K * snap.temperature_k
    occupation = 1.0 / (1.0 + np.exp((energies - snap.reference["fermi_energy_ev"]) / kt))
    n_electrons = float(np.sum(dos * occupation) * BE2_GRID.spacing_ev)
    assert n_electrons == pytest.approx(4.0, rel=0.15)


def test_hash_stable_across_reimport(be2_store: Path, be2_dir: Path, tmp_path: Path) -> None:
    again = import_mala(be2_dir, tmp_path / "again.h5", BE2_GRID)
    with open_store(be2_store) as first, open_store(again) as second:
        assert first.content_hash() == second.content_hash()
        assert "18x18x27" in first.summary()
    one = import_mala(be2_dir, tmp_path / "one.h5", BE2_GRID, names=["Be_snapshot2"])
    with open_store(one) as store:
        assert store.names == ["Be_snapshot2"]
    with pytest.raises(DataError, match="no MALA snapshots \\['Be_snapshot9'\\]"):
        import_mala(be2_dir, tmp_path / "x.h5", BE2_GRID, names=["Be_snapshot9"])


def test_natural_order(tmp_path: Path) -> None:
    for name in ("s10", "s2", "s1"):
        (tmp_path / f"{name}.in.npy").touch()
    assert find_mala_snapshots(tmp_path) == ["s1", "s2", "s10"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no \\*.in.npy files"):
        find_mala_snapshots(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist or is not a directory"):
        find_mala_snapshots(tmp_path / "s1.in.npy")


def _copy_snapshot(be2_dir: Path, target: Path, name: str = "Be_snapshot0") -> Path:
    target.mkdir()
    for suffix in (".in.npy", ".out.npy", ".info.json"):
        shutil.copy(be2_dir / f"{name}{suffix}", target / f"{name}{suffix}")
    return target


def _edit_npy(path: Path, edit: Callable[[np.ndarray], np.ndarray]) -> None:
    np.save(path, edit(np.load(path)))


def _edit_info(path: Path, edit: Callable[[dict], None]) -> None:
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))


def _set(array: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    array = array.copy()
    array[index] = value
    return array


CORRUPTIONS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    # case: (file named in the error, corruption, message pattern)
    "nan_ldos": (".out.npy", lambda p: _edit_npy(p, lambda a: _set(a, (3, 4, 5, 6), np.nan)),
                 "1 NaN/inf values \\(first at index \\(3, 4, 5, 6\\)\\)"),
    "nan_descriptor": (".in.npy", lambda p: _edit_npy(p, lambda a: _set(a, (0, 0, 1, 10), np.nan)), "NaN"),
    "negative_ldos": (".out.npy", lambda p: _edit_npy(p, lambda a: _set(a, (1, 1, 1, 1), -0.5)),
                      "1 negative values \\(minimum -0.5\\)"),
    "grid_mismatch": (".out.npy", lambda p: _edit_npy(p, lambda a: a[:, :, :26]),
                      "LDOS grid \\(18, 18, 26\\) does not match the descriptor grid \\(18, 18, 27\\)"),
    "wrong_ndim": (".in.npy", lambda p: _edit_npy(p, lambda a: a[0]), "shape \\(nx, ny, nz, n\\)"),
    "missing_temperature": (".info.json", lambda p: _edit_info(p, lambda d: d.pop("temperature")),
                            "missing key 'temperature'"),
    "missing_positions": (".info.json", lambda p: _edit_info(p, lambda d: d["atoms"].pop("positions")),
                          "missing key 'positions'"),
    "missing_electrons": (".info.json", lambda p: _edit_info(
        p, lambda d: (d.pop("number_of_electrons_exact"), d.pop("electrons_per_atom"))), "number_of_electrons_exact"),
    "grid_dimensions": (".info.json", lambda p: _edit_info(p, lambda d: d.update(grid_dimensions=[18, 18, 28])),
                        "grid_dimensions \\[18, 18, 28\\] do not match"),
    "voxel": (".info.json", lambda p: _edit_info(p, lambda d: d["voxel"]["array"][0].__setitem__(0, 0.2)),
              "voxel"),
    "bad_json": (".info.json", lambda p: p.write_text("{not json"), "not valid JSON"),
    "missing_info": (".info.json", lambda p: p.unlink(), "metadata file missing"),
    "missing_ldos": (".out.npy", lambda p: p.unlink(), "LDOS file missing"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_validation_errors_name_the_file(case: str, be2_dir: Path, tmp_path: Path) -> None:
    suffix, corrupt, pattern = CORRUPTIONS[case]
    directory = _copy_snapshot(be2_dir, tmp_path / "data")
    corrupt(directory / f"Be_snapshot0{suffix}")
    output = tmp_path / "out.h5"
    with pytest.raises(DataError, match=pattern) as info:
        import_mala(directory, output, BE2_GRID)
    assert f"Be_snapshot0{suffix}" in str(info.value)
    assert not output.exists() and list(tmp_path.glob("*.tmp")) == []


def test_wrong_energy_grid_length(be2_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Be_snapshot0.out.npy: LDOS has 11 energy points but the energy grid has 10"):
        import_mala(be2_dir, tmp_path / "out.h5", EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=10))
    assert not (tmp_path / "out.h5").exists()


def test_error_in_later_snapshot_writes_nothing(be2_dir: Path, tmp_path: Path) -> None:
    directory = _copy_snapshot(be2_dir, tmp_path / "data")
    for suffix in (".in.npy", ".out.npy", ".info.json"):
        shutil.copy(be2_dir / f"Be_snapshot1{suffix}", directory / f"Be_snapshot1{suffix}")
    _edit_npy(directory / "Be_snapshot1.out.npy", lambda a: _set(a, (0, 0, 0, 0), -1.0))
    with pytest.raises(DataError, match="Be_snapshot1.out.npy"):
        import_mala(directory, tmp_path / "out.h5", BE2_GRID)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
