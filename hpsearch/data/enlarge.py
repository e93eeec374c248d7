"""Synthetic enlargement of a store: periodic supercells and translated copies of its snapshots.

A store larger than a node's memory is needed to exercise streamed training, and real DFT data of
that size cannot be made here. Tiling a periodic snapshot ``a x b x c`` times gives the same
crystal in a larger cell: atoms, descriptors and LDOS repeat exactly, the electron count scales
with the cell, and the band energy per atom is unchanged. A copy is the supercell translated by
whole grid steps (arrays rolled, atoms shifted by the same vector), another exact symmetry. No new
physical information is added: every snapshot is marked ``synthetic`` in its provenance, with the
source store, its content hash, the tiling and the shift, and the store's attributes say so too.

Example::

    enlarge_store("be2.h5", "be2-x64.h5", tile=(4, 4, 4), copies=2)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from hpsearch.data.store import Snapshot, open_store, write_store
from hpsearch.errors import ConfigError

__all__ = ["enlarge_store", "enlarged_snapshot"]

logger = logging.getLogger(__name__)


def _check(tile: tuple[int, int, int], copies: int) -> None:
    if len(tile) != 3 or min(tile) < 1:
        raise ConfigError(f"tile={tile} must be three whole numbers >= 1 (repeats along x, y, z)")
    if copies < 1:
        raise ConfigError(f"copies={copies} must be >= 1 (1: the supercell only)")


def enlarged_snapshot(snap: Snapshot, tile: tuple[int, int, int], shift: tuple[int, int, int] = (0, 0, 0),
                      name: str | None = None, source: dict[str, object] | None = None) -> Snapshot:
    """``snap`` as an ``a x b x c`` periodic supercell, translated by ``shift`` grid steps."""
    if snap.descriptors is None or snap.ldos is None:
        raise ConfigError(f"snapshot {snap.name!r} has no arrays: read it with store.read(name)")
    if not bool(np.all(snap.pbc)):
        raise ConfigError(f"snapshot {snap.name!r} is not periodic in every direction: it cannot be tiled")
    reps = np.array(tile)
    cell = np.asarray(snap.cell_angstrom, dtype=np.float64)
    offsets = np.array([(i, j, k) for i in range(tile[0]) for j in range(tile[1]) for k in range(tile[2])])
    positions = (np.asarray(snap.positions_angstrom)[None, :, :] + (offsets @ cell)[:, None, :]).reshape(-1, 3)
    positions = positions + np.asarray(shift) @ snap.voxel_angstrom  # arrays rolled by `shift` below
    supercell = cell * reps[:, None]
    positions = (positions @ np.linalg.inv(supercell) % 1.0) @ supercell  # wrapped into the cell

    def grown(array: np.ndarray) -> np.ndarray:
        return np.roll(np.tile(array, (*tile, 1)), shift, axis=(0, 1, 2))

    factor = int(reps.prod())
    provenance = {"synthetic": True, "method": "periodic supercell of a stored snapshot, translated by whole "
                  "grid steps (no new physical information)", "tile": list(tile), "shift_grid_steps": list(shift),
                  "source_snapshot": snap.name, "source_provenance": snap.provenance,
                  "source_reference": snap.reference, **(source or {})}
    return replace(
        snap, name=name or snap.name, numbers=np.tile(np.asarray(snap.numbers), factor),
        positions_angstrom=positions, cell_angstrom=supercell,
        descriptors=grown(snap.descriptors), ldos=grown(snap.ldos),
        n_electrons=float(snap.n_electrons) * factor, provenance=provenance, reference={},
        grid_dimensions=None,
    )


def enlarge_store(source: str | Path, output: str | Path, tile: tuple[int, int, int] = (2, 2, 2),
                  copies: int = 1, seed: int = 0, overwrite: bool = False) -> Path:
    """Write a synthetic store: ``copies`` translated supercells of every snapshot of ``source``.

    Copy 0 is the untranslated supercell; the others are shifted by seeded random grid steps.
    Snapshots are written one at a time, so memory holds one enlarged snapshot, not the store.
    """
    _check(tuple(tile), copies)  # type: ignore[arg-type]
    source = Path(source)
    with open_store(source) as store:
        names, content_hash, attrs = store.names, store.content_hash(), store.attrs
    rng = np.random.default_rng(seed)
    origin = {"source_store": str(source.resolve()), "source_content_sha256": content_hash}

    def snapshots() -> Iterator[Snapshot]:
        with open_store(source) as store:
            for copy in range(copies):
                for name in names:
                    snap = store.read(name)
                    shift = (0, 0, 0) if copy == 0 else tuple(
                        int(rng.integers(0, n * t)) for n, t in zip(snap.grid_shape, tile))
                    label = f"{name}-x{'x'.join(map(str, tile))}-c{copy}"
                    logger.info("enlarging %s -> %s (shift %s grid steps)", name, label, shift)
                    yield enlarged_snapshot(snap, tile, shift, label, origin)  # type: ignore[arg-type]

    store_attrs = {"synthetic": True, "enlarged_from": str(source.resolve()), "source_content_sha256": content_hash,
                   "tile": list(tile), "copies": copies, "seed": seed, "source_attrs": attrs}
    return write_store(output, snapshots(), attrs=store_attrs, overwrite=overwrite)
