"""Snapshot store: round trip, layout, hashes, atomic writes and appends, descriptor replacement, splits."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpsearch.data import (
    STORE_FORMAT_VERSION,
    Snapshot,
    Split,
    append_snapshots,
    open_store,
    replace_descriptors,
    split_snapshots,
    write_store,
)
from hpsearch.errors import DataError
from hpsearch.physics import EnergyGrid

GRID = EnergyGrid(offset_ev=-2.0, spacing_ev=0.5, n=7)
SETTINGS = {"kind": "snap", "rcut": 4.0, "twojmax": 2}


def make_snapshot(name: str, seed: int, grid_shape: tuple[int, int, int] = (4, 3, 5), n_features: int = 5) -> Snapshot:
    rng = np.random.default_rng(seed)
    cell = np.diag([2.0, 1.5, 2.5]) + rng.uniform(-0.1, 0.1, (3, 3))
    return Snapshot(
        name=name,
        numbers=np.array([4, 4, 1]),
        positions_angstrom=rng.uniform(0, 2, (3, 3)),
        cell_angstrom=cell,
        pbc=np.array([True, True, False]),
        descriptors=rng.normal(size=(*grid_shape, n_features)).astype(np.float32),
        ldos=rng.uniform(0, 1, (*grid_shape, GRID.n)).astype(np.float32),
        energy_grid=GRID,
        temperature_k=298.0 + seed,
        n_electrons=8.0,
        descriptor_settings=dict(SETTINGS),
        provenance={"seed": seed, "note": "synthetic"},
        reference={"fermi_energy_ev": 1.0 + seed},
    )


@pytest.fixture()
def snaps() -> list[Snapshot]:
    return [make_snapshot(f"s{i}", i) for i in range(3)]


def assert_same(read: Snapshot, original: Snapshot) -> None:
    for key in ("numbers", "positions_angstrom", "cell_angstrom", "pbc", "descriptors", "ldos"):
        np.testing.assert_array_equal(getattr(read, key), getattr(original, key), err_msg=key)
    assert read.descriptors.dtype == np.float32 and read.ldos.dtype == np.float32
    for key in ("name", "temperature_k", "n_electrons", "descriptor_settings", "provenance", "reference"):
        assert getattr(read, key) == getattr(original, key), key
    assert read.energy_grid == original.energy_grid


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_round_trip_metadata_and_layout(tmp_path: Path, snaps: list[Snapshot]) -> None:
    path = write_store(tmp_path / "s.h5", snaps, attrs={"generator": {"seed": 3}})
    with open_store(path) as store:
        assert store.names == ["s0", "s1", "s2"]
        assert store.attrs == {"generator": {"seed": 3}}
        assert store.format_version == STORE_FORMAT_VERSION
        for original in snaps:
            assert_same(store.read(original.name), original)
            descriptors, ldos = store.read_arrays(original.name)
            np.testing.assert_array_equal(ldos, original.ldos)
            meta = store.metadata(original.name)
            assert meta.descriptors is None and meta.ldos is None
            assert meta.grid_shape == (4, 3, 5) and meta.n_atoms == 3
        with pytest.raises(DataError, match="no snapshot 'nope'.*s0"):
            store.read("nope")
    with h5py.File(path, "r") as raw:  # the documented layout: one x-plane per chunk, compressed
        ds = raw["snapshots/s1/ldos"]
        assert ds.chunks == (1, 3, 5, 7) and ds.compression == "gzip"
        assert raw["snapshots/s1/descriptors"].chunks == (1, 3, 5, 5)
        np.testing.assert_allclose(raw["snapshots/s1/voxel_angstrom"][()], snaps[1].cell_angstrom / [[4], [3], [5]])
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & stat.S_IRGRP, f"store should be readable by others like a normal file, mode {oct(mode)}"


def test_snapshot_properties(snaps: list[Snapshot]) -> None:
    snap = snaps[0]
    expected = abs(np.linalg.det(snap.cell_angstrom)) / (4 * 3 * 5)
    assert snap.voxel_volume_angstrom3 == pytest.approx(expected, rel=1e-12)
    atoms = snap.to_atoms()
    np.testing.assert_allclose(atoms.get_positions(), snap.positions_angstrom)
    assert list(atoms.pbc) == [True, True, False] and atoms.get_chemical_formula() == "HBe2"


def test_content_hash_is_content_only(tmp_path: Path, snaps: list[Snapshot]) -> None:
    first = write_store(tmp_path / "a.h5", snaps, attrs={"x": 1})
    relabeled = [dataclasses.replace(s, provenance={"other": True}) for s in snaps]
    second = write_store(tmp_path / "b.h5", relabeled, attrs={"x": 2})
    changed = [snaps[0], dataclasses.replace(snaps[1], ldos=snaps[1].ldos * 1.0001), snaps[2]]
    third = write_store(tmp_path / "c.h5", changed)
    reordered = write_store(tmp_path / "d.h5", snaps[::-1])
    with open_store(first) as a, open_store(second) as b, open_store(third) as c, open_store(reordered) as d:
        assert a.content_hash() == b.content_hash() == a.content_hash(recompute=True)
        assert len(a.content_hash()) == 64
        assert c.content_hash() != a.content_hash() and d.content_hash() != a.content_hash()
    with h5py.File(first, "r+") as raw:  # alter one value behind the store's back
        raw["snapshots/s2/ldos"][0, 0, 0, 0] += 1.0
    with open_store(first) as a, pytest.raises(DataError, match="altered"):
        a.content_hash(recompute=True)


def test_open_refuses_unknown_version_and_foreign_files(tmp_path: Path, snaps: list[Snapshot]) -> None:
    path = write_store(tmp_path / "s.h5", snaps[:1])
    with h5py.File(path, "r+") as raw:
        raw.attrs["format_version"] = 99
    with pytest.raises(DataError, match="format version 99.*reads version 1"):
        open_store(path)
    with h5py.File(tmp_path / "other.h5", "w") as raw:
        raw["x"] = 1
    with pytest.raises(DataError, match="not an hpsearch snapshot store"):
        open_store(tmp_path / "other.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DataError, match="not a readable HDF5"):
        open_store(tmp_path / "text.h5")
    with pytest.raises(DataError, match="does not exist"):
        open_store(tmp_path / "missing.h5")


def test_write_refuses_existing_and_invalid(tmp_path: Path, snaps: list[Snapshot]) -> None:
    path = write_store(tmp_path / "s.h5", snaps[:1])
    with pytest.raises(DataError, match="already exists"):
        write_store(path, snaps)
    write_store(path, snaps, overwrite=True)
    with open_store(path) as store:
        assert store.names == ["s0", "s1", "s2"]
    bad_ldos = snaps[0].ldos.copy()
    bad_ldos[1, 1, 1, 1] = np.nan
    cases = {
        "NaN": dataclasses.replace(snaps[0], ldos=bad_ldos),
        "energy points": dataclasses.replace(snaps[0], energy_grid=EnergyGrid(-2.0, 0.5, 8)),
        "descriptor grid": dataclasses.replace(snaps[0], descriptors=snaps[0].descriptors[:3]),
        "positions_angstrom": dataclasses.replace(snaps[0], positions_angstrom=np.zeros((2, 3))),
        "invalid snapshot name": dataclasses.replace(snaps[0], name="a/b"),
    }
    for message, snap in cases.items():
        with pytest.raises(DataError, match=message):
            write_store(tmp_path / "bad.h5", [snap])
        assert not (tmp_path / "bad.h5").exists()
    with pytest.raises(DataError, match="duplicate snapshot name 's0'"):
        write_store(tmp_path / "bad.h5", [snaps[0], snaps[0]])
    with pytest.raises(DataError, match="does not match the store"):
        write_store(tmp_path / "bad.h5", [snaps[0], make_snapshot("s9", 9, n_features=6)])
    assert temp_files(tmp_path) == []


def failing(snaps: list[Snapshot], exc: BaseException) -> Iterator[Snapshot]:
    yield snaps[0]
    raise exc  # while "writing the second snapshot"


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_crash_while_writing_leaves_old_store(tmp_path: Path, snaps: list[Snapshot], exc: BaseException) -> None:
    path = write_store(tmp_path / "s.h5", snaps[2:])
    before = path.read_bytes()
    with pytest.raises(type(exc)):
        write_store(path, failing(snaps, exc), overwrite=True)
    assert path.read_bytes() == before
    with pytest.raises(type(exc)):
        append_snapshots(path, failing([make_snapshot("n0", 5), make_snapshot("n1", 6)], exc))
    assert path.read_bytes() == before
    with pytest.raises(type(exc)):
        write_store(tmp_path / "fresh.h5", failing(snaps, exc))
    assert not (tmp_path / "fresh.h5").exists()
    assert temp_files(tmp_path) == []
    with open_store(path) as store:
        assert store.names == ["s2"]
        assert_same(store.read("s2"), snaps[2])


def test_append_keeps_existing_and_matches_single_write(tmp_path: Path, snaps: list[Snapshot]) -> None:
    path = write_store(tmp_path / "s.h5", snaps[:1], attrs={"k": "v"})
    reader = open_store(path)  # a reader open during the append keeps its consistent view
    append_snapshots(path, snaps[1:])
    assert reader.names == ["s0"]
    np.testing.assert_array_equal(reader.read_arrays("s0")[1], snaps[0].ldos)
    reader.close()
    whole = write_store(tmp_path / "whole.h5", snaps, attrs={"k": "v"})
    with open_store(path) as store, open_store(whole) as reference:
        assert store.names == ["s0", "s1", "s2"] and store.attrs == {"k": "v"}
        for original in snaps:
            assert_same(store.read(original.name), original)
        assert store.content_hash() == reference.content_hash() == store.content_hash(recompute=True)
    before = path.read_bytes()
    with pytest.raises(DataError, match="duplicate snapshot name 's1'"):
        append_snapshots(path, [make_snapshot("s3", 3), snaps[1]])
    with pytest.raises(DataError, match="does not match the store"):
        append_snapshots(path, [make_snapshot("s4", 4, n_features=6)])
    assert path.read_bytes() == before and temp_files(tmp_path) == []


def test_replace_descriptors(tmp_path: Path, snaps: list[Snapshot]) -> None:
    path = write_store(tmp_path / "s.h5", snaps)
    with open_store(path) as store:
        old_hash = store.content_hash()
    rng = np.random.default_rng(7)
    new = {s.name: rng.normal(size=(4, 3, 5, 9)).astype(np.float32) for s in snaps}
    settings = {"kind": "snap", "rcut": 5.0, "twojmax": 4}
    replace_descriptors(path, new, settings)
    with open_store(path) as store:
        assert store.names == ["s0", "s1", "s2"]
        for original in snaps:
            snap = store.read(original.name)
            np.testing.assert_array_equal(snap.descriptors, new[original.name])
            np.testing.assert_array_equal(snap.ldos, original.ldos)
            assert snap.descriptor_settings == settings and snap.provenance == original.provenance
        assert store.content_hash() != old_hash
        assert store.content_hash(recompute=True) == store.content_hash()
    before = path.read_bytes()
    with pytest.raises(DataError, match="missing \\['s2'\\]"):
        replace_descriptors(path, {"s0": new["s0"], "s1": new["s1"]}, settings)
    with pytest.raises(DataError, match="grid"):
        replace_descriptors(path, {**new, "s1": new["s1"][:, :2]}, settings)
    assert path.read_bytes() == before and temp_files(tmp_path) == []


def test_summary(tmp_path: Path, snaps: list[Snapshot]) -> None:
    path = write_store(tmp_path / "s.h5", snaps)
    with open_store(path) as store:
        text = store.summary()
        assert store.content_hash() in text
    for expected in ("3: s0, s1, s2", "4x3x5", "7 points, -2 to 1 eV, step 0.5 eV", "298.00 to 300.00 K", "HBe2"):
        assert expected in text, (expected, text)


def test_split_by_snapshot() -> None:
    names = [f"snap{i}" for i in range(6)]
    split = split_snapshots(names, n_train=3, n_validation=1, n_test=2)
    assert split == Split(("snap0", "snap1", "snap2"), ("snap3",), ("snap4", "snap5"))
    assert Split.from_dict(split.to_dict()) == split
    shuffled = split_snapshots(names, 2, 2, 2, seed=1)
    assert shuffled == split_snapshots(names, 2, 2, 2, seed=1)
    parts = [*shuffled.train, *shuffled.validation, *shuffled.test]
    assert sorted(parts) == names and parts != names
    assert split_snapshots(names, 1, 1, 1).test == ("snap2",)  # the rest is unused
    with pytest.raises(DataError, match="needs 7 snapshots.*only 6"):
        split_snapshots(names, 4, 2, 1)
    with pytest.raises(DataError, match="n_train must be at least 1"):
        split_snapshots(names, 0, 1, 1)
    with pytest.raises(DataError, match="n_test must be a non-negative"):
        split_snapshots(names, 1, 1, -1)
    with pytest.raises(DataError, match="only one set"):
        Split(("a",), ("a",), ())
