"""SNAP bispectrum descriptors through LAMMPS (ML-SNAP): on a real-space grid or at given points.

The grid follows LAMMPS ``compute sna/grid`` (points at fractional coordinates ``(i/nx, j/ny,
k/nz)`` of the cell) and is returned x index first, like the MALA ``.in.npy`` arrays without their
three coordinate columns. Any cell is accepted: it is brought to LAMMPS' restricted triclinic
form (a along x, b in the xy plane) by keeping fractional coordinates, which is a rotation of the
whole system; a left-handed cell is first made right-handed by reversing its third vector.

Example:
    >>> from ase.build import bulk
    >>> features = snap_grid(bulk("Be"), (8, 8, 12), rcut=4.67637, twojmax=4)
    >>> features.shape
    (8, 8, 12, 14)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hpsearch.errors import ConfigError, DataError

if TYPE_CHECKING:
    import ase

__all__ = [
    "SnapSettings",
    "grid_points_angstrom",
    "n_bispectrum",
    "snap_at_points",
    "snap_grid",
]

logger = logging.getLogger(__name__)

_GRID_COMPUTE = "hps_bgrid"
_ATOM_COMPUTE = "hps_batom"


class SnapSettings(BaseModel):
    """Settings of LAMMPS' SNAP computes; defaults are those of the paper's (MALA's) data.

    ``rcut`` is LAMMPS' ``rcutfac``: the neighbour cutoff is ``2 * radelem * rcut`` Angstrom, i.e.
    ``rcut`` itself for the default ``radelem = 0.5``. Every element gets the same ``radelem``
    and ``wj``.

    Example:
        >>> SnapSettings(twojmax=6).n_components
        30
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rcut: float = Field(4.67637, gt=0.0, description="LAMMPS rcutfac (Angstrom for radelem 0.5)")
    twojmax: int = Field(10, ge=0, le=20, description="band limit 2*J_max")
    rfac0: float = Field(0.99363, gt=0.0, lt=1.0)
    rmin0: float = Field(0.0, ge=0.0)
    radelem: float = Field(0.5, gt=0.0)
    wj: float = Field(1.0, gt=0.0)
    bzeroflag: Literal[0, 1] = 0
    quadraticflag: Literal[0, 1] = 0
    switchflag: Literal[0, 1] = 1

    @classmethod
    def from_options(cls, rcut: float, twojmax: int, options: Mapping[str, Any]) -> SnapSettings:
        """Build settings from keyword options; unknown names or bad values raise ConfigError."""
        valid = sorted(cls.model_fields)
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(f"unknown SNAP option(s) {unknown}; valid options are {valid}")
        try:
            return cls(rcut=rcut, twojmax=twojmax, **options)
        except ValidationError as exc:
            raise ConfigError(f"invalid SNAP settings: {exc}") from exc

    @property
    def cutoff_angstrom(self) -> float:
        """Neighbour cutoff around a grid point: ``2 * radelem * rcut``."""
        return 2.0 * self.radelem * self.rcut

    @property
    def n_components(self) -> int:
        """Number of values per point (linear bispectrum, plus quadratic terms if enabled)."""
        n = n_bispectrum(self.twojmax)
        return n + n * (n + 1) // 2 if self.quadraticflag else n

    def _keywords(self) -> str:
        return (
            f"rmin0 {self.rmin0!r} bzeroflag {self.bzeroflag} "
            f"quadraticflag {self.quadraticflag} switchflag {self.switchflag}"
        )


def n_bispectrum(twojmax: int) -> int:
    """Number of bispectrum components B_{j1 j2 j} for a band limit ``twojmax`` (91 for 10)."""
    if twojmax < 0:
        raise ConfigError(f"twojmax must be >= 0, got {twojmax}")
    count = 0
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                if j >= j1:
                    count += 1
    return count


# --------------------------------------------------------------------------- geometry


def _check_cell(cell: np.ndarray) -> np.ndarray:
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3) or not np.isfinite(cell).all() or abs(np.linalg.det(cell)) < 1e-12:
        raise DataError(
            f"the cell must be a non-singular 3x3 matrix (Angstrom), got {cell.tolist()}"
        )
    return cell


def _wrap(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates into [0, 1)."""
    frac = frac - np.floor(frac)
    frac[frac >= 1.0] = 0.0  # -1e-17 - floor(-1e-17) rounds to 1.0
    return frac


@dataclass(frozen=True)
class _Frame:
    """A cell (made right-handed) and its LAMMPS restricted triclinic box, rows a, b, c."""

    cell: np.ndarray
    box: np.ndarray
    flipped: bool

    @classmethod
    def from_cell(cls, cell: np.ndarray) -> _Frame:
        """Same fractional coordinates in both: the box is the cell rotated (a along x)."""
        cell = _check_cell(cell).copy()
        flipped = bool(np.linalg.det(cell) < 0.0)
        if flipped:  # (a, b, -c) spans the same lattice and is right-handed
            cell[2] *= -1.0
        a, b, c = cell
        lx = float(np.linalg.norm(a))
        xy = float(b @ a) / lx
        ly = float(np.sqrt(max(b @ b - xy * xy, 0.0)))
        xz = float(c @ a) / lx
        yz = (float(b @ c) - xy * xz) / ly
        lz = float(np.sqrt(max(c @ c - xz * xz - yz * yz, 0.0)))
        box = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
        return cls(cell=cell, box=box, flipped=flipped)

    def to_box(self, positions_angstrom: np.ndarray) -> np.ndarray:
        """Cartesian positions in the ase frame -> wrapped positions in the LAMMPS box."""
        frac = np.linalg.solve(self.cell.T, np.asarray(positions_angstrom, np.float64).T).T
        return _wrap(frac) @ self.box

    def region_command(self) -> str:
        (lx, _, _), (xy, ly, _), (xz, yz, lz) = self.box.tolist()
        return f"region hps_box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box"


def grid_points_angstrom(
    cell: np.ndarray, grid_shape: Sequence[int], flat_indices: np.ndarray | None = None
) -> np.ndarray:
    """Cartesian coordinates (Angstrom) of grid points ``i/nx a + j/ny b + k/nz c``.

    ``flat_indices`` index the C-order flattening of an ``(nx, ny, nz)`` grid (x index first,
    as ``descriptors.reshape(-1, n)``); all points when None.
    """
    shape = _check_grid_shape(grid_shape)
    n_total = shape[0] * shape[1] * shape[2]
    flat = np.arange(n_total) if flat_indices is None else np.asarray(flat_indices, np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= n_total):
        raise DataError(f"grid point indices must lie in [0, {n_total}) for grid {shape}")
    ijk = np.stack(np.unravel_index(flat, shape), axis=-1).astype(np.float64)
    return (ijk / np.asarray(shape, np.float64)) @ np.asarray(cell, np.float64)


def _check_grid_shape(grid_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in grid_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"grid_shape must be three positive integers, got {tuple(grid_shape)}")
    return shape  # type: ignore[return-value]


def _atoms_arrays(atoms: ase.Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell, positions, lammps types 1..T by sorted atomic number) with input checks."""
    pbc = np.asarray(atoms.get_pbc(), dtype=bool)
    if not pbc.all():
        raise DataError(
            f"SNAP grids need a periodic cell in all three directions, got pbc={pbc.tolist()}; "
            "set atoms.pbc = True (add vacuum to the cell for molecules or surfaces)"
        )
    positions = np.asarray(atoms.get_positions(), dtype=np.float64)
    if len(positions) == 0 or not np.isfinite(positions).all():
        raise DataError(f"atoms must hold at least one atom with finite positions, got {atoms}")
    numbers = np.asarray(atoms.get_atomic_numbers())
    _, types = np.unique(numbers, return_inverse=True)
    cell = _check_cell(atoms.get_cell()[:])
    return cell, positions, types.astype(np.int64) + 1


# --------------------------------------------------------------------------- LAMMPS


@contextmanager
def _lammps_session(setup: Sequence[str]) -> Iterator[Any]:
    """A fresh LAMMPS instance (metal units, atomic style) after the ``setup`` commands."""
    from hpsearch._lammps import new_lammps

    lmp = new_lammps()
    try:
        for command in ("units metal", "atom_style atomic", "atom_modify map array sort 0 0.0"):
            lmp.command(command)
        for command in setup:
            lmp.command(command)
        yield lmp
    finally:
        lmp.close()


def _box_commands(region: str, n_types: int, cutoff_angstrom: float, skin: float) -> list[str]:
    return [
        region,
        f"create_box {n_types} hps_box",
        "mass * 1.0",
        f"pair_style zero {cutoff_angstrom!r}",  # only sets the neighbour / ghost cutoff
        "pair_coeff * *",
        f"neighbor {skin!r} bin",
    ]


def _create_atoms(lmp: Any, positions_box: np.ndarray, types: np.ndarray) -> None:
    n = len(positions_box)
    created = lmp.create_atoms(n, None, types.tolist(), positions_box.ravel().tolist())
    if created != n:
        raise DataError(f"LAMMPS created {created} of {n} atoms; check the cell and positions")


def _snap_grid_f64(atoms: ase.Atoms, shape: tuple[int, int, int], s: SnapSettings) -> np.ndarray:
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY

    cell, positions, types = _atoms_arrays(atoms)
    frame = _Frame.from_cell(cell)
    n_types = int(types.max())
    per_type = " ".join([repr(s.radelem)] * n_types + [repr(s.wj)] * n_types)
    region = frame.region_command()
    setup = ["boundary p p p", *_box_commands(region, n_types, s.cutoff_angstrom, 0.5)]
    with _lammps_session(setup) as lmp:
        _create_atoms(lmp, frame.to_box(positions), types)
        lmp.command(
            f"compute {_GRID_COMPUTE} all sna/grid grid {shape[0]} {shape[1]} {shape[2]} "
            f"{s.rcut!r} {s.rfac0!r} {s.twojmax} {per_type} {s._keywords()}"
        )
        lmp.command("run 0")
        raw = lmp.numpy.extract_compute(_GRID_COMPUTE, LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY)
        values = np.array(raw[:, 3:], dtype=np.float64, copy=True)  # drop x, y, z columns
    # LAMMPS rows run with x fastest: (nz, ny, nx) in C order -> (nx, ny, nz)
    grid = values.reshape(shape[2], shape[1], shape[0], -1).transpose(2, 1, 0, 3)
    if frame.flipped:  # index k along -c is index (-k) mod nz along c
        grid = grid[:, :, (-np.arange(shape[2])) % shape[2]]
    return np.ascontiguousarray(grid)


def snap_grid(
    atoms: ase.Atoms,
    grid_shape: Sequence[int],
    rcut: float = 4.67637,
    twojmax: int = 10,
    **options: Any,
) -> np.ndarray:
    """Bispectrum components on the ``grid_shape`` real-space grid: float32 (nx, ny, nz, n).

    ``options`` are the other :class:`SnapSettings` fields (rfac0, rmin0, radelem, wj,
    bzeroflag, quadraticflag, switchflag); unknown names raise ConfigError.
    """
    settings = SnapSettings.from_options(rcut, twojmax, options)
    shape = _check_grid_shape(grid_shape)
    start = time.perf_counter()
    grid = _snap_grid_f64(atoms, shape, settings)
    logger.debug(
        "snap_grid: %d atoms, grid %s, twojmax %d, rcut %.4g: %.2f s",
        len(atoms), shape, settings.twojmax, settings.rcut, time.perf_counter() - start,
    )
    return grid.astype(np.float32)


def _periodic_images(
    cell: np.ndarray, positions: np.ndarray, types: np.ndarray, reach_angstrom: float
) -> tuple[np.ndarray, np.ndarray]:
    """All periodic images of the atoms within ``reach_angstrom`` of the cell (a superset).

    A point within distance R of the cell has fractional coordinate d within R / h_d of
    [0, 1), h_d being the cell's height along d (1 / |reciprocal vector d|).
    """
    inverse = np.linalg.inv(cell)
    margin = reach_angstrom * np.linalg.norm(inverse, axis=0)  # R / h_d
    frac = _wrap(positions @ inverse)
    ranges = [np.arange(-int(np.ceil(m)), int(np.ceil(m)) + 1) for m in margin]
    shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    image_frac = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    keep = np.all((image_frac > -margin) & (image_frac < 1.0 + margin), axis=1)
    image_types = np.tile(types, len(shifts))[keep]
    return image_frac[keep] @ cell, image_types


def _snap_points_f64(atoms: ase.Atoms, points: np.ndarray, s: SnapSettings) -> np.ndarray:
    """sna/atom on probe atoms in an open box holding every periodic image within the cutoff.

    Probes are atoms of an extra type with weight 0, excluded as neighbours of each other and
    the only members of the compute group, so each one sees exactly the atoms a grid point
    at its place sees in ``compute sna/grid``. No periodic box means no ghost copies of probes.
    """
    from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

    cell, positions, types = _atoms_arrays(atoms)
    images, image_types = _periodic_images(cell, positions, types, s.cutoff_angstrom + 0.1)
    probes = _wrap(np.linalg.solve(cell.T, points.T).T) @ cell
    probe = int(types.max()) + 1
    coords = np.concatenate([images, probes])
    low, high = (coords.min(axis=0) - 1.0).tolist(), (coords.max(axis=0) + 1.0).tolist()
    region = "region hps_box block " + " ".join(f"{lo!r} {hi!r}" for lo, hi in zip(low, high))
    one = len(images) + len(probes) + 16  # no atom can have more neighbours than this
    setup = [
        "boundary f f f",
        *_box_commands(region, probe, s.cutoff_angstrom, 0.1),
        f"neigh_modify exclude type {probe} {probe} one {one} page {max(100_000, 10 * one)}",
        *[f"neigh_modify exclude type {i} {j}" for i in range(1, probe) for j in range(i, probe)],
    ]
    per_type = " ".join([repr(s.radelem)] * probe + [repr(s.wj)] * (probe - 1) + ["0.0"])
    with _lammps_session(setup) as lmp:
        _create_atoms(lmp, images, image_types)
        _create_atoms(lmp, probes, np.full(len(probes), probe, np.int64))
        lmp.command(f"group hps_probes type {probe}")
        lmp.command(
            f"compute {_ATOM_COMPUTE} hps_probes sna/atom {s.rcut!r} {s.rfac0!r} {s.twojmax} "
            f"{per_type} {s._keywords()}"
        )
        lmp.command("run 0")
        raw = lmp.numpy.extract_compute(_ATOM_COMPUTE, LMP_STYLE_ATOM, LMP_TYPE_ARRAY)
        ids = np.array(lmp.numpy.extract_atom("id"), dtype=np.int64, copy=True)
        values = np.array(raw, dtype=np.float64, copy=True).reshape(len(ids), -1)
    if len(values) != len(images) + len(probes):
        raise DataError(
            f"LAMMPS holds {len(values)} atoms, expected {len(images) + len(probes)}"
        )
    return values[np.argsort(ids)][len(images):]  # ids: images first, probes in input order


def snap_at_points(
    atoms: ase.Atoms,
    points_angstrom: np.ndarray,
    rcut: float = 4.67637,
    twojmax: int = 10,
    **options: Any,
) -> np.ndarray:
    """Bispectrum components at Cartesian points (Angstrom, the atoms' frame): float32 (m, n).

    Equal to :func:`snap_grid` where a point is a grid point (same settings and options), at a
    cost proportional to the number of points instead of the grid size.
    """
    settings = SnapSettings.from_options(rcut, twojmax, options)
    points = np.asarray(points_angstrom, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or not np.isfinite(points).all():
        raise DataError(
            f"points_angstrom must be a finite (m, 3) array, got shape {points.shape}"
        )
    if len(points) == 0:
        return np.zeros((0, settings.n_components), dtype=np.float32)
    start = time.perf_counter()
    values = _snap_points_f64(atoms, points, settings)
    logger.debug(
        "snap_at_points: %d atoms, %d points, twojmax %d: %.2f s",
        len(atoms), len(points), settings.twojmax, time.perf_counter() - start,
    )
    return values.astype(np.float32)
