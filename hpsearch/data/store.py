"""HDF5 snapshot store: atoms, descriptors and LDOS of each snapshot in one file, written atomically.

Every write (new store, append, descriptor replacement) goes to a temporary file in the same
directory, is flushed and fsync'ed, then renamed over the target with ``os.replace``: a crash or
Ctrl-C leaves either the old store or the new one, never a half-written file. Readers open the
file read-only. One writer at a time: two concurrent appends to the same store race (last wins).

Layout (``format_version`` 1; shapes per snapshot, ``n`` atoms, grid ``nx, ny, nz``):

| path | kind | content |
| --- | --- | --- |
| ``/`` attr ``format`` | str | ``"hpsearch-snapshot-store"`` |
| ``/`` attr ``format_version`` | int | 1; readers refuse other versions |
| ``/`` attr ``names`` | JSON str | snapshot names in order |
| ``/`` attr ``attrs`` | JSON str | user attributes (e.g. generator settings) |
| ``/`` attr ``content_sha256`` | str | hash of all snapshots, in order (see below) |
| ``/`` attr ``created_utc``, ``hpsearch_version`` | str | when and by what it was written |
| ``/snapshots/<name>/descriptors`` | float32 (nx, ny, nz, n_features) | descriptors, x index first; attr ``sha256`` |
| ``/snapshots/<name>/ldos`` | float32 (nx, ny, nz, n_e) | LDOS (states/eV/Angstrom^3); attr ``sha256`` |
| ``/snapshots/<name>/numbers`` | int64 (n,) | atomic numbers |
| ``/snapshots/<name>/positions_angstrom`` | float64 (n, 3) | Cartesian positions |
| ``/snapshots/<name>/cell_angstrom`` | float64 (3, 3) | cell vectors as rows |
| ``/snapshots/<name>/pbc`` | bool (3,) | periodic directions |
| ``/snapshots/<name>/voxel_angstrom`` | float64 (3, 3) | grid-cell vectors, ``cell[i] / full_grid_shape[i]`` |
| ``/snapshots/<name>`` attrs | | ``grid_shape`` (3 ints), ``temperature_k``, ``n_electrons``, ``energy_grid_offset_ev``, ``energy_grid_spacing_ev``, ``energy_grid_n``, ``descriptor_settings`` / ``provenance`` / ``reference`` (JSON str), ``sha256`` |
| ``/snapshots/<name>`` attrs, partial grids only | | ``full_grid_shape`` (3 ints: the grid of the whole cell), ``grid_offset`` (3 ints: index of the stored block's first point in that grid) |

A snapshot may hold a block (slab) of a larger grid, as MALA's debug data do: the cell is the
whole cell, the voxel is ``cell / full_grid_shape`` and the stored points are the grid points
``grid_offset + (i, j, k)``. Stores without partial snapshots are unchanged (same layout, same
hash).

Grid arrays are chunked one x-plane per chunk ``(1, ny, nz, n)`` with gzip level 1 and byte
shuffle (portable, about 500 MB/s to read). The content hash (SHA-256) covers names, atoms,
grid shape, energy grid, temperature, electrons, descriptor settings, reference values and the
array bytes; it leaves out provenance, user attributes and timestamps, so re-writing the same
data gives the same hash.

Example::

    write_store("be2.h5", snapshots)
    with open_store("be2.h5") as store:
        descriptors, ldos = store.read_arrays(store.names[0])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from hpsearch.data._h5io import atomic_h5, reading
from hpsearch.errors import DataError
from hpsearch.physics import EnergyGrid

if TYPE_CHECKING:
    import ase

__all__ = [
    "STORE_FORMAT_VERSION",
    "Snapshot",
    "SnapshotStore",
    "append_snapshots",
    "open_store",
    "replace_descriptors",
    "write_store",
]

logger = logging.getLogger(__name__)

STORE_FORMAT_VERSION = 1
_FORMAT_NAME = "hpsearch-snapshot-store"
_GROUP = "snapshots"
_GRID_ARRAYS = ("descriptors", "ldos")
_COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One atomic configuration with its descriptors and LDOS on a real-space grid.

    ``descriptors`` and ``ldos`` are None in :meth:`SnapshotStore.metadata` results; then
    ``grid_dimensions`` carries the grid shape. Example::

        snap = store.read("Be_snapshot0"); snap.ldos.shape  # (18, 18, 27, 11)
    """

    name: str
    numbers: np.ndarray
    positions_angstrom: np.ndarray
    cell_angstrom: np.ndarray
    pbc: np.ndarray
    descriptors: np.ndarray | None
    ldos: np.ndarray | None
    energy_grid: EnergyGrid
    temperature_k: float
    n_electrons: float
    descriptor_settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    grid_dimensions: tuple[int, int, int] | None = None
    full_grid_shape: tuple[int, int, int] | None = None
    grid_offset: tuple[int, int, int] | None = None

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """Real-space grid ``(nx, ny, nz)``."""
        for array in (self.descriptors, self.ldos):
            if array is not None:
                return (int(array.shape[0]), int(array.shape[1]), int(array.shape[2]))
        if self.grid_dimensions is None:
            raise DataError(f"snapshot {self.name!r} has neither arrays nor grid_dimensions")
        return (int(self.grid_dimensions[0]), int(self.grid_dimensions[1]), int(self.grid_dimensions[2]))

    @property
    def whole_grid_shape(self) -> tuple[int, int, int]:
        """Grid of the whole cell: ``full_grid_shape`` for a block of a larger grid, else ``grid_shape``."""
        if self.full_grid_shape is None:
            return self.grid_shape
        return (int(self.full_grid_shape[0]), int(self.full_grid_shape[1]), int(self.full_grid_shape[2]))

    @property
    def offset(self) -> tuple[int, int, int]:
        """Index of the first stored point in the whole cell's grid ((0, 0, 0) unless partial)."""
        if self.grid_offset is None:
            return (0, 0, 0)
        return (int(self.grid_offset[0]), int(self.grid_offset[1]), int(self.grid_offset[2]))

    @property
    def is_partial(self) -> bool:
        """True when the arrays cover only a block of the whole cell's grid."""
        return self.whole_grid_shape != self.grid_shape or self.offset != (0, 0, 0)

    def point_indices(self) -> np.ndarray:
        """C-order flat indices, in the whole cell's grid, of the stored points (x index first)."""
        axes = [np.arange(o, o + n) for o, n in zip(self.offset, self.grid_shape)]
        i, j, k = np.meshgrid(*axes, indexing="ij")
        return np.ravel_multi_index((i.ravel(), j.ravel(), k.ravel()), self.whole_grid_shape)

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return int(np.asarray(self.numbers).shape[0])

    @property
    def voxel_angstrom(self) -> np.ndarray:
        """The three edge vectors of one grid cell (rows), ``cell[i] / whole_grid_shape[i]``."""
        shape = np.asarray(self.whole_grid_shape, dtype=np.float64)
        return np.asarray(self.cell_angstrom, dtype=np.float64) / shape[:, None]

    @property
    def voxel_volume_angstrom3(self) -> float:
        """Volume of one real-space grid cell (Angstrom^3)."""
        return float(abs(np.linalg.det(self.voxel_angstrom)))

    def to_atoms(self) -> ase.Atoms:
        """The configuration as an ``ase.Atoms``."""
        import ase

        return ase.Atoms(
            numbers=np.asarray(self.numbers),
            positions=np.asarray(self.positions_angstrom, dtype=np.float64),
            cell=np.asarray(self.cell_angstrom, dtype=np.float64),
            pbc=np.asarray(self.pbc, dtype=bool),
        )


# ----------------------------------------------------------------------------- hashing


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise DataError(f"cannot store {value!r} as JSON ({exc}); use plain numbers, strings, lists, dicts") from exc


def _array_hash(array: np.ndarray) -> str:
    contiguous = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    digest = hashlib.sha256(f"{contiguous.dtype.str}{contiguous.shape}".encode())
    digest.update(contiguous.data)
    return digest.hexdigest()


def _metadata_json(snap: Snapshot) -> str:
    grid = snap.energy_grid
    partial = {"full_grid_shape": list(snap.whole_grid_shape), "grid_offset": list(snap.offset)} if snap.is_partial else {}
    return _json({
        **partial,
        "name": snap.name,
        "numbers": np.asarray(snap.numbers, dtype=np.int64).tolist(),
        "positions_angstrom": np.asarray(snap.positions_angstrom, dtype=np.float64).tolist(),
        "cell_angstrom": np.asarray(snap.cell_angstrom, dtype=np.float64).tolist(),
        "pbc": np.asarray(snap.pbc, dtype=bool).tolist(),
        "grid_shape": list(snap.grid_shape),
        "energy_grid": [float(grid.offset_ev), float(grid.spacing_ev), int(grid.n)],
        "temperature_k": float(snap.temperature_k),
        "n_electrons": float(snap.n_electrons),
        "descriptor_settings": snap.descriptor_settings,
        "reference": snap.reference,
    })


def _snapshot_hash(metadata_json: str, descriptors_hash: str, ldos_hash: str) -> str:
    text = f"{metadata_json}\n{descriptors_hash}\n{ldos_hash}"
    return hashlib.sha256(text.encode()).hexdigest()


def _store_hash(names: list[str], snapshot_hashes: list[str]) -> str:
    digest = hashlib.sha256(f"hpsearch-store-v{STORE_FORMAT_VERSION}".encode())
    for name, value in zip(names, snapshot_hashes):
        digest.update(f"\n{name}\n{value}".encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- validation


def _grid_array(snap: Snapshot, key: str) -> np.ndarray:
    array = getattr(snap, key)
    if array is None:
        raise DataError(f"snapshot {snap.name!r} has no {key}: a stored snapshot needs descriptors and LDOS")
    array = np.asarray(array)
    if array.ndim != 4:
        raise DataError(f"snapshot {snap.name!r}: {key} must have shape (nx, ny, nz, n), got {array.shape}")
    if not np.isfinite(array).all():
        raise DataError(f"snapshot {snap.name!r}: {key} contains {int((~np.isfinite(array)).sum())} NaN/inf values")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_snapshot(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Validate one snapshot; return its descriptors and LDOS as contiguous float32."""
    if not snap.name or "/" in snap.name or snap.name.strip() != snap.name:
        raise DataError(f"invalid snapshot name {snap.name!r}: use a non-empty name without '/' or edge spaces")
    descriptors, ldos = _grid_array(snap, "descriptors"), _grid_array(snap, "ldos")
    if descriptors.shape[:3] != ldos.shape[:3]:
        raise DataError(
            f"snapshot {snap.name!r}: descriptor grid {descriptors.shape[:3]} != LDOS grid {ldos.shape[:3]}"
        )
    if ldos.shape[3] != snap.energy_grid.n:
        raise DataError(
            f"snapshot {snap.name!r}: LDOS has {ldos.shape[3]} energy points, energy grid has {snap.energy_grid.n}"
        )
    _check_block(snap)
    n_atoms = snap.n_atoms
    shapes = {"positions_angstrom": (n_atoms, 3), "cell_angstrom": (3, 3), "pbc": (3,)}
    for key, expected in shapes.items():
        if np.shape(getattr(snap, key)) != expected:
            raise DataError(f"snapshot {snap.name!r}: {key} has shape {np.shape(getattr(snap, key))}, expected {expected}")
    if not snap.temperature_k > 0 or not snap.n_electrons > 0:
        raise DataError(
            f"snapshot {snap.name!r}: temperature_k={snap.temperature_k} and n_electrons={snap.n_electrons} must be > 0"
        )
    return descriptors, ldos


def _check_block(snap: Snapshot) -> None:
    """A partial grid lies inside the whole cell's grid."""
    if not snap.is_partial:
        return
    full, offset, shape = np.asarray(snap.whole_grid_shape), np.asarray(snap.offset), np.asarray(snap.grid_shape)
    if full.min() < 1 or offset.min() < 0 or ((offset + shape) > full).any():
        raise DataError(
            f"snapshot {snap.name!r}: a block of {tuple(shape.tolist())} points at offset {tuple(offset.tolist())} "
            f"does not fit in the full grid {tuple(full.tolist())}: check full_grid_shape and grid_offset"
        )


def _signature(snap: Snapshot, n_features: int) -> tuple[Any, ...]:
    grid = snap.energy_grid
    return (n_features, int(grid.n), round(float(grid.offset_ev), 9), round(float(grid.spacing_ev), 9),
            _json(snap.descriptor_settings))


def _check_consistent(snap: Snapshot, n_features: int, reference: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """All snapshots of a store share feature count, energy grid and descriptor settings."""
    signature = _signature(snap, n_features)
    if reference is not None and signature != reference:
        raise DataError(
            f"snapshot {snap.name!r} does not match the store: (n_features, n_e, offset_ev, spacing_ev, "
            f"descriptor settings) = {signature} but the store has {reference}"
        )
    return signature


# ----------------------------------------------------------------------------- writing


def _write_grid(group: h5py.Group, key: str, array: np.ndarray) -> str:
    chunks = (1, *array.shape[1:])
    dataset = group.create_dataset(key, data=array, chunks=chunks, **_COMPRESSION)
    digest = _array_hash(array)
    dataset.attrs["sha256"] = digest
    return digest


def _write_snapshot(parent: h5py.Group, snap: Snapshot, descriptors: np.ndarray, ldos: np.ndarray) -> str:
    group = parent.create_group(snap.name)
    group.create_dataset("numbers", data=np.asarray(snap.numbers, dtype=np.int64))
    group.create_dataset("positions_angstrom", data=np.asarray(snap.positions_angstrom, dtype=np.float64))
    group.create_dataset("cell_angstrom", data=np.asarray(snap.cell_angstrom, dtype=np.float64))
    group.create_dataset("pbc", data=np.asarray(snap.pbc, dtype=bool))
    group.create_dataset("voxel_angstrom", data=snap.voxel_angstrom)
    descriptors_hash = _write_grid(group, "descriptors", descriptors)
    ldos_hash = _write_grid(group, "ldos", ldos)
    _write_metadata_attrs(group, snap)
    digest = _snapshot_hash(_metadata_json(snap), descriptors_hash, ldos_hash)
    group.attrs["sha256"] = digest
    return digest


def _write_metadata_attrs(group: h5py.Group, snap: Snapshot) -> None:
    group.attrs.update({
        "grid_shape": np.asarray(snap.grid_shape, dtype=np.int64),
        "temperature_k": float(snap.temperature_k),
        "n_electrons": float(snap.n_electrons),
        "energy_grid_offset_ev": float(snap.energy_grid.offset_ev),
        "energy_grid_spacing_ev": float(snap.energy_grid.spacing_ev),
        "energy_grid_n": int(snap.energy_grid.n),
        "descriptor_settings": _json(snap.descriptor_settings),
        "provenance": _json(snap.provenance),
        "reference": _json(snap.reference),
    })
    if snap.is_partial:
        group.attrs["full_grid_shape"] = np.asarray(snap.whole_grid_shape, dtype=np.int64)
        group.attrs["grid_offset"] = np.asarray(snap.offset, dtype=np.int64)


def _created_utc(reproducible: bool) -> str:
    """Now, or for reproducible files SOURCE_DATE_EPOCH (default 0): same input, same bytes."""
    if reproducible:
        stamp = datetime.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")), timezone.utc)
    else:
        stamp = datetime.now(timezone.utc)
    return stamp.isoformat(timespec="seconds")


def _write_root(handle: h5py.File, names: list[str], hashes: list[str], attrs: Mapping[str, Any],
                reproducible: bool = False) -> None:
    from hpsearch._version import __version__

    handle.attrs.update({
        "format": _FORMAT_NAME,
        "format_version": STORE_FORMAT_VERSION,
        "names": _json(names),
        "attrs": _json(dict(attrs)),
        "content_sha256": _store_hash(names, hashes),
        "created_utc": _created_utc(reproducible),
        "hpsearch_version": str(__version__),
    })


def _add_snapshots(handle: h5py.File, snapshots: Iterable[Snapshot], names: list[str],
                   hashes: list[str], signature: tuple[Any, ...] | None) -> None:
    group = handle.require_group(_GROUP)
    for snap in snapshots:
        if snap.name in names:
            raise DataError(f"duplicate snapshot name {snap.name!r}: names in a store must be unique")
        descriptors, ldos = _check_snapshot(snap)
        signature = _check_consistent(snap, descriptors.shape[3], signature)
        hashes.append(_write_snapshot(group, snap, descriptors, ldos))
        names.append(snap.name)
        logger.debug("wrote snapshot %s (grid %s)", snap.name, snap.grid_shape)
    if not names:
        raise DataError("no snapshots to write: a store holds at least one snapshot")


def write_store(path: str | Path, snapshots: Iterable[Snapshot], attrs: Mapping[str, Any] | None = None,
                overwrite: bool = False, reproducible: bool = False) -> Path:
    """Write ``snapshots`` (any iterable, consumed once) to a new store at ``path``, atomically.

    ``reproducible``: stamp the file with SOURCE_DATE_EPOCH (default 0) instead of the time, so
    the same snapshots give the same bytes.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(f"store {path} already exists: overwrite it (overwrite=True, CLI --overwrite) or append")
    names: list[str] = []
    hashes: list[str] = []
    with atomic_h5(path) as handle:
        _add_snapshots(handle, snapshots, names, hashes, None)
        _write_root(handle, names, hashes, attrs or {}, reproducible)
    logger.info("wrote %d snapshots to %s", len(names), path)
    return path


def append_snapshots(path: str | Path, snapshots: Iterable[Snapshot]) -> Path:
    """Add snapshots to an existing store atomically (copy old + new into a temp file, rename)."""
    path = Path(path)
    with open_store(path) as store:
        old_names, user_attrs = list(store.names), store.attrs
        first = store.metadata(old_names[0])
        n_features = int(store._group(old_names[0])["descriptors"].shape[3])
    signature = _signature(first, n_features)
    with atomic_h5(path) as handle:
        hashes: list[str] = []
        with h5py.File(path, "r", locking=False) as source:
            target = handle.create_group(_GROUP)
            for name in old_names:
                source.copy(source[_GROUP][name], target, name=name)
                hashes.append(str(source[_GROUP][name].attrs["sha256"]))
        names = list(old_names)
        _add_snapshots(handle, snapshots, names, hashes, signature)
        _write_root(handle, names, hashes, user_attrs)
    logger.info("appended %d snapshots to %s", len(names) - len(old_names), path)
    return path


def replace_descriptors(path: str | Path, descriptors: Mapping[str, np.ndarray], settings: Mapping[str, Any]) -> Path:
    """Replace the descriptors of every snapshot (and the recorded settings) atomically."""
    path = Path(path)
    with open_store(path) as store:
        names, user_attrs = list(store.names), store.attrs
        metas = {name: store.metadata(name) for name in names}
    if set(descriptors) != set(names):
        raise DataError(
            f"replace_descriptors needs exactly the store's snapshots {names}; "
            f"missing {sorted(set(names) - set(descriptors))}, unknown {sorted(set(descriptors) - set(names))}"
        )
    hashes: list[str] = []
    signature: tuple[Any, ...] | None = None
    with atomic_h5(path) as handle, h5py.File(path, "r", locking=False) as source:
        target = handle.create_group(_GROUP)
        for name in names:
            meta = replace(metas[name], descriptor_settings=dict(settings))
            array = _grid_array(replace(meta, descriptors=descriptors[name]), "descriptors")
            if array.shape[:3] != meta.grid_shape:
                raise DataError(f"snapshot {name!r}: new descriptors have grid {array.shape[:3]}, expected {meta.grid_shape}")
            signature = _check_consistent(meta, array.shape[3], signature)
            group = target.create_group(name)
            for key in source[_GROUP][name]:
                if key != "descriptors":
                    source.copy(source[_GROUP][name][key], group, name=key)
            _write_metadata_attrs(group, meta)
            ldos_hash = str(group["ldos"].attrs["sha256"])
            digest = _snapshot_hash(_metadata_json(meta), _write_grid(group, "descriptors", array), ldos_hash)
            group.attrs["sha256"] = digest
            hashes.append(digest)
        _write_root(handle, names, hashes, user_attrs)
    logger.info("replaced descriptors of %d snapshots in %s", len(names), path)
    return path


# ----------------------------------------------------------------------------- reading


def _check_metadata(path: Path, snap: Snapshot) -> Snapshot:
    """Values a damaged or hand-edited file could hold that no writer would have written."""
    numbers = {"temperature_k": snap.temperature_k, "n_electrons": snap.n_electrons,
               "energy spacing (eV)": snap.energy_grid.spacing_ev}
    for label, value in numbers.items():
        if not (np.isfinite(value) and value > 0):
            raise DataError(f"{path}: snapshot {snap.name!r} has {label} = {value}; it must be a positive number: "
                            "the file is damaged, re-create the store")
    arrays = (snap.positions_angstrom, snap.cell_angstrom)
    if not (np.isfinite(snap.energy_grid.offset_ev) and all(np.isfinite(np.asarray(a, float)).all() for a in arrays)):
        raise DataError(f"{path}: snapshot {snap.name!r} has NaN/inf in its energy grid, positions or cell: "
                        "the file is damaged, re-create the store")
    if np.shape(snap.positions_angstrom) != (snap.n_atoms, 3) or np.shape(snap.cell_angstrom) != (3, 3):
        raise DataError(f"{path}: snapshot {snap.name!r} has positions {np.shape(snap.positions_angstrom)} for "
                        f"{snap.n_atoms} atoms and cell {np.shape(snap.cell_angstrom)}: the file is damaged")
    if min(snap.grid_shape) < 1 or snap.energy_grid.n < 1:
        raise DataError(f"{path}: snapshot {snap.name!r} has grid {snap.grid_shape} and {snap.energy_grid.n} "
                        "energies: the file is damaged")
    _check_block(snap)
    return snap


class SnapshotStore:
    """A store opened read-only; use as a context manager. Create with :func:`open_store`.

    Example::

        with open_store("be2.h5") as store:
            for name in store.names:
                descriptors, ldos = store.read_arrays(name)
    """

    def __init__(self, path: Path, handle: h5py.File) -> None:
        self.path = path
        self._handle = handle
        self._names: list[str] | None = None

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._handle.id.valid:
            self._handle.close()

    @property
    def names(self) -> list[str]:
        """Snapshot names in the order they were written."""
        if self._names is None:
            with reading(self.path, "the snapshot names"):
                names = json.loads(self._handle.attrs["names"])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
                raise DataError(f"{self.path}: the snapshot names {names!r} are not a non-empty list of "
                                "strings: the file is damaged, re-create the store")
            self._names = names
        return list(self._names)

    @property
    def attrs(self) -> dict[str, Any]:
        """User attributes given to :func:`write_store`."""
        with reading(self.path, "the user attributes"):
            return dict(json.loads(self._handle.attrs["attrs"]))

    @property
    def format_version(self) -> int:
        """Layout version of the file."""
        with reading(self.path, "the format version"):
            return int(self._handle.attrs["format_version"])

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def _group(self, name: str) -> h5py.Group:
        if name not in self.names:
            raise DataError(f"no snapshot {name!r} in {self.path}; it has {self.names}")
        with reading(self.path, f"snapshot {name!r}"):
            return self._handle[_GROUP][name]

    def metadata(self, name: str) -> Snapshot:
        """Everything about a snapshot except its grid arrays (descriptors and ldos are None)."""
        group = self._group(name)
        with reading(self.path, f"the metadata of snapshot {name!r}"):
            return _check_metadata(self.path, self._metadata(name, group))

    @staticmethod
    def _metadata(name: str, group: h5py.Group) -> Snapshot:
        attrs = group.attrs
        return Snapshot(
            name=name,
            numbers=group["numbers"][()],
            positions_angstrom=group["positions_angstrom"][()],
            cell_angstrom=group["cell_angstrom"][()],
            pbc=np.asarray(group["pbc"][()], dtype=bool),
            descriptors=None,
            ldos=None,
            energy_grid=EnergyGrid(
                offset_ev=float(attrs["energy_grid_offset_ev"]),
                spacing_ev=float(attrs["energy_grid_spacing_ev"]),
                n=int(attrs["energy_grid_n"]),
            ),
            temperature_k=float(attrs["temperature_k"]),
            n_electrons=float(attrs["n_electrons"]),
            descriptor_settings=json.loads(attrs["descriptor_settings"]),
            provenance=json.loads(attrs["provenance"]),
            reference=json.loads(attrs["reference"]),
            grid_dimensions=tuple(int(v) for v in attrs["grid_shape"]),  # type: ignore[arg-type]
            full_grid_shape=_triple(attrs.get("full_grid_shape")),
            grid_offset=_triple(attrs.get("grid_offset")),
        )

    def array_shapes(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(descriptors shape, ldos shape)`` of one snapshot, read from the file's metadata only."""
        group = self._group(name)
        return tuple(group["descriptors"].shape), tuple(group["ldos"].shape)

    def read_arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(descriptors, ldos)`` of one snapshot as float32 numpy arrays."""
        group = self._group(name)
        with reading(self.path, f"the arrays of snapshot {name!r}"):
            descriptors, ldos = group["descriptors"][()], group["ldos"][()]
            grid = tuple(int(v) for v in group.attrs["grid_shape"])
            n_e = int(group.attrs["energy_grid_n"])
        if descriptors.ndim != 4 or ldos.ndim != 4 or descriptors.shape[:3] != grid or ldos.shape != (*grid, n_e):
            raise DataError(f"{self.path}: snapshot {name!r} has descriptors {descriptors.shape} and LDOS "
                            f"{ldos.shape} for grid {grid} and {n_e} energies: the file is damaged")
        return descriptors, ldos

    def n_points(self, name: str) -> int:
        """Grid points of one snapshot (``nx * ny * nz``), from the array shape alone (no read)."""
        shape = self._group(name)["descriptors"].shape
        return int(shape[0] * shape[1] * shape[2])

    def read_rows(self, name: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """``(descriptors, ldos)`` of the flattened grid points ``start:stop`` (x index slowest),
        reading only the x-planes that hold them: a chunk of a snapshot too large for memory."""
        group = self._group(name)
        descriptors, ldos = group["descriptors"], group["ldos"]
        per_plane = int(descriptors.shape[1] * descriptors.shape[2])
        total = per_plane * int(descriptors.shape[0])
        if not 0 <= start <= stop <= total:
            raise DataError(f"rows {start}:{stop} are outside the {total} points of snapshot {name!r}")
        first, last = start // per_plane, -(-stop // per_plane)
        offset = first * per_plane
        x = descriptors[first:last].reshape(-1, descriptors.shape[3])[start - offset : stop - offset]
        y = ldos[first:last].reshape(-1, ldos.shape[3])[start - offset : stop - offset]
        return x, y

    def read(self, name: str) -> Snapshot:
        """One snapshot with its arrays."""
        descriptors, ldos = self.read_arrays(name)
        return replace(self.metadata(name), descriptors=descriptors, ldos=ldos)

    def content_hash(self, recompute: bool = False) -> str:
        """SHA-256 of the content (stable across re-writes of the same data).

        With ``recompute=True`` the hash is computed from the stored data and checked against
        the recorded one (DataError if the file was altered).
        """
        with reading(self.path, "the content hash"):
            recorded = str(self._handle.attrs["content_sha256"])
        if not recompute:
            return recorded
        hashes = []
        for name in self.names:
            descriptors, ldos = self.read_arrays(name)
            meta = _metadata_json(self.metadata(name))
            hashes.append(_snapshot_hash(meta, _array_hash(descriptors), _array_hash(ldos)))
        computed = _store_hash(self.names, hashes)
        if computed != recorded:
            raise DataError(f"{self.path}: content hash {computed} != recorded {recorded}; the file was altered")
        return computed

    def summary_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs describing the store, for :meth:`summary` and ``hpsearch data info``."""
        names = self.names
        metas = [self.metadata(name) for name in names]
        with reading(self.path, "the descriptor shapes"):
            shapes = {name: self._group(name)["descriptors"].shape for name in names}
        grid = metas[0].energy_grid
        formulas = sorted({m.to_atoms().get_chemical_formula() for m in metas})
        return [
            ("file", str(self.path)),
            ("format version", str(self.format_version)),
            ("snapshots", f"{len(names)}: {', '.join(names)}"),
            ("atoms", ", ".join(formulas) + f" ({_span([m.n_atoms for m in metas], 'd')} atoms)"),
            ("grid", ", ".join(sorted({_grid_label(m) for m in metas}))),
            ("features", _span([shapes[n][3] for n in names], "d")),
            ("energy grid", f"{grid.n} points, {grid.offset_ev:g} to "
                            f"{grid.offset_ev + (grid.n - 1) * grid.spacing_ev:g} eV, step {grid.spacing_ev:g} eV"),
            ("temperature", _span([m.temperature_k for m in metas], ".2f") + " K"),
            ("electrons", _span([m.n_electrons for m in metas], "g")),
            ("descriptors", _json(metas[0].descriptor_settings)),
            ("size on disk", f"{self.path.stat().st_size / 1e6:.2f} MB"),
            ("content hash", self.content_hash()),
        ]

    def summary(self) -> str:
        """A human-readable multi-line summary."""
        rows = self.summary_rows()
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _triple(value: Any) -> tuple[int, int, int] | None:
    if value is None:
        return None
    a, b, c = (int(v) for v in np.asarray(value).reshape(3))
    return (a, b, c)


def _grid_label(meta: Snapshot) -> str:
    shape = "x".join(map(str, meta.grid_shape))
    if not meta.is_partial:
        return shape
    return f"{shape} (block at {meta.offset} of {'x'.join(map(str, meta.whole_grid_shape))})"


def _span(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return f"{low:{fmt}}" if low == high else f"{low:{fmt}} to {high:{fmt}}"


def open_store(path: str | Path) -> SnapshotStore:
    """Open a store read-only; DataError if missing, not a store, or of an unknown format version."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"store {path} does not exist: create it with `hpsearch data import-mala` or write_store")
    try:
        # No HDF5 file locks: writers never modify a file in place (they rename a new one over it),
        # and locks fail on some network file systems.
        handle = h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise DataError(f"{path} is not a readable HDF5 file ({exc})") from exc
    try:
        with reading(path, "the format attributes"):
            fmt = handle.attrs.get("format")
            version = handle.attrs.get("format_version")
        if not isinstance(fmt, str) or fmt != _FORMAT_NAME:
            raise DataError(f"{path} is not an hpsearch snapshot store (format attribute {fmt!r})")
        if not isinstance(version, (int, np.integer)) or int(version) != STORE_FORMAT_VERSION:
            raise DataError(
                f"{path} has store format version {version}, this hpsearch reads version "
                f"{STORE_FORMAT_VERSION}: use the hpsearch version that wrote it, or re-create the store"
            )
    except BaseException:
        handle.close()
        raise
    return SnapshotStore(path, handle)
