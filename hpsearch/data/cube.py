"""Import Quantum ESPRESSO ``pp.x`` LDOS cube files (one Gaussian cube file per energy).

``pp.x`` with ``plot_num = 3`` writes one cube file per energy of the LDOS, in 1/(Ry Bohr^3),
with the energy in the second comment line (``Energy =  -5.0000 eV, broadening = ...``). This
module reads the files as they are (ASE reads the cube format: atoms, cell and values in the
file's grid order, x index first), takes the energy grid from the headers (or from the caller),
converts the LDOS to states/eV/Angstrom^3 and builds a :class:`~hpsearch.data.store.Snapshot`.
Descriptors come from a ``.npy`` file (MALA's ``.in.npy`` with its 3 coordinate columns, or a
plain ``(nx, ny, nz, n_features)`` array) or are computed with LAMMPS. Temperature and electron
count come from the ``pw.x`` output or are given. Example::

    snap = read_cube_snapshot(sorted(Path("cubes").glob("*.cube")), "Be_snapshot0",
                              qe_output="Be_snapshot0.out", descriptors="Be_snapshot0.in.npy")
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.data.store import Snapshot
from hpsearch.data.units import RYDBERG_EV, ldos_unit_factor
from hpsearch.errors import DataError
from hpsearch.physics import KB_EV_PER_K, EnergyGrid

__all__ = ["QE_LDOS_UNIT", "CubeLdos", "QeRun", "read_cube_ldos", "read_cube_snapshot", "read_qe_output"]

logger = logging.getLogger(__name__)

QE_LDOS_UNIT = "1/(Ry Bohr^3)"
"""The unit ``pp.x`` writes the LDOS in (plot_num 3)."""

_ENERGY = re.compile(r"energy\s*=\s*([-+]?\d+(?:\.\d*)?(?:[eEdD][-+]?\d+)?)\s*ev", re.IGNORECASE)


@dataclass(frozen=True)
class CubeLdos:
    """The LDOS of a set of cube files: values (nx, ny, nz, n_e) in states/eV/Angstrom^3 and more."""

    ldos: np.ndarray
    energy_grid: EnergyGrid
    atoms: Any  # ase.Atoms of the first file (cell: the block the file covers)
    voxel_angstrom: np.ndarray  # (3, 3) rows
    origin_angstrom: np.ndarray  # (3,)
    files: list[str]
    unit: str
    factor: float


def cube_energy_ev(path: Path) -> float | None:
    """The energy (eV) in the second comment line of a cube file, as pp.x writes it; None if absent."""
    try:
        with open(path, encoding="ascii", errors="replace") as stream:
            header = stream.readline() + stream.readline()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    match = _ENERGY.search(header)
    return float(match.group(1).replace("d", "e").replace("D", "e")) if match else None


def _read_one(path: Path) -> dict[str, Any]:
    from ase.io.cube import read_cube

    try:
        with open(path) as stream:
            content = read_cube(stream, read_data=True)
    except (OSError, ValueError, IndexError, KeyError) as exc:
        raise DataError(f"{path}: not a readable Gaussian cube file ({type(exc).__name__}: {exc})") from exc
    data = np.asarray(content["data"], dtype=np.float64)
    if data.ndim != 3 or not np.isfinite(data).all():
        raise DataError(f"{path}: expected a finite 3-D grid of values, got shape {data.shape}")
    return content


def _energy_grid(paths: Sequence[Path], given: EnergyGrid | None) -> tuple[EnergyGrid, list[Path]]:
    """The files ordered by energy and the uniform energy grid they sample."""
    if given is not None:
        if given.n != len(paths):
            raise DataError(f"the energy grid has {given.n} points but {len(paths)} cube files were given: "
                            "one file per energy")
        return given, list(paths)
    energies = [cube_energy_ev(p) for p in paths]
    missing = [str(p) for p, e in zip(paths, energies) if e is None]
    if missing:
        raise DataError(f"no 'Energy = ... eV' in the header of {missing[:3]}: give the grid with --energy-grid "
                        "OFFSET:SPACING:N (files then in name order)")
    order = np.argsort(energies, kind="stable")
    values = np.asarray(energies, dtype=np.float64)[order]
    if len(values) == 1:
        raise DataError("a single cube file has no energy spacing: give it with --energy-grid OFFSET:SPACING:1")
    steps = np.diff(values)
    if steps.min() <= 0 or not np.allclose(steps, steps[0], rtol=1e-4, atol=1e-4):
        raise DataError(f"the cube files' energies {values.tolist()} eV are not a uniform grid "
                        "(duplicates or gaps?): check the files or give --energy-grid")
    grid = EnergyGrid(offset_ev=float(values[0]), spacing_ev=float(steps.mean()), n=len(values))
    return grid, [paths[i] for i in order]


def read_cube_ldos(
    paths: Sequence[str | Path], energy_grid: EnergyGrid | None = None, unit: str = QE_LDOS_UNIT
) -> CubeLdos:
    """Read one cube file per energy into an LDOS (nx, ny, nz, n_e) in states/eV/Angstrom^3.

    All files must share atoms, cell and grid. ``energy_grid`` None: taken from the headers.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise DataError("no cube files given")
    canonical, factor = ldos_unit_factor(unit)
    grid, ordered = _energy_grid(files, energy_grid)
    first = _read_one(ordered[0])
    shape = first["data"].shape
    ldos = np.empty((*shape, len(ordered)), dtype=np.float32)
    for index, path in enumerate(ordered):
        content = first if index == 0 else _read_one(path)
        if content["data"].shape != shape:
            raise DataError(f"{path}: grid {content['data'].shape} differs from {shape} of {ordered[0].name}")
        if not np.allclose(content["spacing"], first["spacing"], atol=1e-9):
            raise DataError(f"{path}: voxel differs from that of {ordered[0].name}: files of different runs?")
        ldos[..., index] = np.asarray(content["data"], dtype=np.float64) * factor
    if (ldos < 0).any():
        logger.warning("%d negative LDOS values (minimum %.3g) in the cube files: kept as they are",
                       int((ldos < 0).sum()), float(ldos.min()))
    return CubeLdos(ldos=ldos, energy_grid=grid, atoms=first["atoms"],
                    voxel_angstrom=np.asarray(first["spacing"], dtype=np.float64),
                    origin_angstrom=np.asarray(first["origin"], dtype=np.float64),
                    files=[p.name for p in ordered], unit=canonical, factor=factor)


@dataclass(frozen=True)
class QeRun:
    """What a ``pw.x`` output says about electrons: count, smearing temperature, Fermi level."""

    n_electrons: float
    temperature_k: float | None
    fermi_energy_ev: float | None


def read_qe_output(path: str | Path) -> QeRun:
    """Electron count, Fermi-Dirac smearing temperature (K) and Fermi energy (eV) of a pw.x output."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the Quantum ESPRESSO output ({exc})") from exc
    electrons = re.findall(r"number of electrons\s*=\s*([\d.]+)", text)
    if not electrons:
        raise DataError(f"{path}: no 'number of electrons =' line: is this a pw.x output?")
    smearing = re.search(r"Fermi-Dirac smearing, width \(Ry\)=\s*([\d.eE+-]+)", text)
    fermi = re.findall(r"the Fermi energy is\s+([-\d.]+)\s*ev", text)
    temperature = float(smearing.group(1)) * RYDBERG_EV / KB_EV_PER_K if smearing else None
    return QeRun(n_electrons=float(electrons[-1]), temperature_k=temperature,
                 fermi_energy_ev=float(fermi[-1]) if fermi else None)


def _block_offset(voxel: np.ndarray, origin: np.ndarray, path: str) -> tuple[int, int, int]:
    """Grid index of the cube's origin: origin = offset @ voxel, integers."""
    frac = np.linalg.solve(voxel.T, origin)
    offset = np.rint(frac)
    if not np.allclose(frac, offset, atol=1e-3) or offset.min() < 0:
        raise DataError(f"{path}: the cube's origin {origin.tolist()} Angstrom is not a grid point "
                        f"({frac.tolist()} voxels from the cell's corner)")
    a, b, c = (int(v) for v in offset)
    return (a, b, c)


def _descriptors(source: str | Path | None, atoms: Any, cube: CubeLdos, full_shape: tuple[int, int, int],
                 offset: tuple[int, int, int], settings: Mapping[str, Any]) -> tuple[np.ndarray, str, dict[str, Any]]:
    """Descriptors of the LDOS's points: read from .npy or computed with LAMMPS (SNAP)."""
    shape = cube.ldos.shape[:3]
    if source is not None:
        path = Path(source)
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read descriptors as .npy ({exc})") from exc
        if array.ndim != 4 or array.shape[:3] != shape:
            raise DataError(f"{path}: descriptors of shape {array.shape}, expected ({', '.join(map(str, shape))}, "
                            "n_features) for the cube files' grid")
        skip = 3 if path.name.endswith(".in.npy") else 0  # MALA: 3 coordinate columns first
        return np.ascontiguousarray(array[..., skip:], dtype=np.float32), path.name, dict(settings)
    from hpsearch.descriptors import SnapSettings, snap_at_points, snap_grid
    from hpsearch.descriptors.snap import grid_points_angstrom

    snap = SnapSettings.from_options(settings.get("rcut", 4.67637), settings.get("twojmax", 10),
                                     {k: v for k, v in settings.items() if k not in ("kind", "rcut", "twojmax")})
    options = snap.model_dump()
    used = {"kind": "snap", **options}
    logger.info("computing SNAP descriptors of %d grid points with LAMMPS (%s)", int(np.prod(shape)), options)
    if full_shape == shape:
        return snap_grid(atoms, shape, **options), "computed", used
    block = Snapshot(name="block", numbers=atoms.numbers, positions_angstrom=atoms.positions, cell_angstrom=atoms.cell[:],
                     pbc=atoms.pbc, descriptors=None, ldos=None, energy_grid=cube.energy_grid, temperature_k=1.0,
                     n_electrons=1.0, grid_dimensions=shape, full_grid_shape=full_shape, grid_offset=offset)
    points = grid_points_angstrom(atoms.get_cell()[:], full_shape, block.point_indices())
    return snap_at_points(atoms, points, **options).reshape(*shape, -1), "computed", used


def read_cube_snapshot(
    paths: Sequence[str | Path],
    name: str,
    energy_grid: EnergyGrid | None = None,
    unit: str = QE_LDOS_UNIT,
    descriptors: str | Path | None = None,
    descriptor_settings: Mapping[str, Any] | None = None,
    qe_output: str | Path | None = None,
    temperature_k: float | None = None,
    n_electrons: float | None = None,
    full_grid_shape: Sequence[int] | None = None,
) -> Snapshot:
    """One snapshot from the cube files of its LDOS (see the module docstring).

    ``full_grid_shape``: the files hold a block of that larger grid; the cell becomes
    ``voxel * full_grid_shape`` and the block's offset is read from the cube's origin.
    Explicit ``temperature_k`` / ``n_electrons`` win over those of ``qe_output``.
    """
    from hpsearch.data.mala import MALA_SNAP_SETTINGS

    cube = read_cube_ldos(paths, energy_grid, unit)
    shape = tuple(int(n) for n in cube.ldos.shape[:3])
    run = read_qe_output(qe_output) if qe_output is not None else None
    temperature = temperature_k if temperature_k is not None else (run.temperature_k if run else None)
    electrons = n_electrons if n_electrons is not None else (run.n_electrons if run else None)
    if temperature is None or electrons is None:
        raise DataError("the cube files do not say the electronic temperature and electron count: give the pw.x "
                        "output (--qe-output) or --temperature K and --n-electrons N")
    full = tuple(int(n) for n in (full_grid_shape or shape))
    offset = _block_offset(cube.voxel_angstrom, cube.origin_angstrom, cube.files[0]) if full != shape else (0, 0, 0)
    atoms = cube.atoms.copy()
    atoms.set_cell(cube.voxel_angstrom * np.asarray(full, dtype=np.float64)[:, None])
    atoms.pbc = True
    settings = dict(MALA_SNAP_SETTINGS if descriptor_settings is None else descriptor_settings)
    features, origin, settings = _descriptors(descriptors, atoms, cube, full, offset, settings)  # type: ignore[arg-type]
    provenance = {"source": "qe-cube", "files": cube.files, "directory": str(Path(paths[0]).resolve().parent),
                  "ldos_units": cube.unit, "ldos_factor_to_per_ev_angstrom3": cube.factor,
                  "descriptors": origin, "qe_output": str(qe_output) if qe_output else None}
    reference = {"fermi_energy_ev": run.fermi_energy_ev} if run and run.fermi_energy_ev is not None else {}
    partial = {"full_grid_shape": full, "grid_offset": offset} if full != shape else {}
    return Snapshot(name=name, numbers=atoms.get_atomic_numbers().astype(np.int64),
                    positions_angstrom=atoms.get_positions(), cell_angstrom=np.asarray(atoms.get_cell()[:]),
                    pbc=np.ones(3, dtype=bool), descriptors=features, ldos=cube.ldos, energy_grid=cube.energy_grid,
                    temperature_k=float(temperature), n_electrons=float(electrons), descriptor_settings=settings,
                    provenance=provenance, reference=reference, **partial)  # type: ignore[arg-type]
