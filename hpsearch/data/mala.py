"""Import MALA-format data (``*.in.npy``, ``*.out.npy``, ``*.info.json``) into a snapshot store.

MALA writes, per snapshot ``NAME``: ``NAME.in.npy`` (nx, ny, nz, 3 + n_features) whose first 3
columns are grid coordinates (dropped here), ``NAME.out.npy`` (nx, ny, nz, n_e) the LDOS, and
``NAME.info.json`` the atoms, grid, temperature, electrons and DFT reference energies. The energy
grid of the LDOS is not in the files: the caller gives it. Every file is validated (shapes, NaN,
negative LDOS, required keys) and errors name the file. Example::

    import_mala("data/mala-be2", "be2.h5", EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=11))
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.data.store import Snapshot, append_snapshots, write_store
from hpsearch.data.units import ldos_unit_factor
from hpsearch.errors import DataError
from hpsearch.physics import EnergyGrid

__all__ = ["MALA_SNAP_SETTINGS", "N_COORDINATE_COLUMNS", "find_mala_snapshots", "import_mala", "read_mala_snapshot"]

logger = logging.getLogger(__name__)

N_COORDINATE_COLUMNS = 3
"""Leading columns of ``*.in.npy`` that hold grid coordinates, not descriptors."""

MALA_SNAP_SETTINGS: dict[str, Any] = {
    "kind": "snap",
    "rcut": 4.67637,
    "twojmax": 10,
    "rfac0": 0.99363,
    "rmin0": 0.0,
    "radelem": 0.5,
    "wj": 1.0,
    "bzeroflag": 0,
    "quadraticflag": 0,
    "switchflag": 1,
}
"""SNAP settings of MALA's published Be2 data (LAMMPS ``compute sna/grid``; ``rcut`` is rcutfac)."""

# MALA info.json key -> reference key in the store (eV unless named otherwise).
_REFERENCE_KEYS = {
    "fermi_energy_dft": "fermi_energy_ev",
    "band_energy_dft_calculation": "band_energy_ev",
    "total_energy_dft_calculation": "total_energy_ev",
    "entropy_contribution_dft_calculation": "entropy_contribution_ev",
    "number_of_electrons_from_eigenvals": "n_electrons_from_eigenvalues",
}


def find_mala_snapshots(directory: str | Path) -> list[str]:
    """Names ``NAME`` of every ``NAME.in.npy`` in ``directory``, in natural order (2 before 10)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"MALA data directory {directory} does not exist or is not a directory")
    names = [p.name[: -len(".in.npy")] for p in directory.glob("*.in.npy")]
    if not names:
        raise DataError(f"no *.in.npy files in {directory}: expected MALA data (NAME.in.npy, NAME.out.npy, NAME.info.json)")
    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def _require(info: Mapping[str, Any], key: str, path: Path) -> Any:
    if key not in info:
        raise DataError(f"{path}: missing key {key!r} (keys present: {sorted(info)})")
    return info[key]


def _load_info(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: metadata file missing; MALA data needs NAME.info.json beside NAME.in.npy")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(info).__name__}")
    return info


def _load_array(path: Path, kind: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: {kind} file missing")
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read as .npy ({exc})") from exc
    if array.ndim != 4:
        raise DataError(f"{path}: {kind} must have shape (nx, ny, nz, n), got {array.shape}")
    return array


def _check_values(array: np.ndarray, path: Path, kind: str, non_negative: bool) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{path}: {kind} has {int(bad.sum())} NaN/inf values (first at index {first})")
    if non_negative and (array < 0).any():
        raise DataError(
            f"{path}: {kind} has {int((array < 0).sum())} negative values (minimum {float(array.min()):.4g}); "
            "an LDOS is non-negative: check the file"
        )


def _atoms_fields(info: Mapping[str, Any], path: Path) -> dict[str, np.ndarray]:
    atoms = _require(info, "atoms", path)
    fields = {key: _require(atoms, key, path) for key in ("numbers", "positions", "cell", "pbc")}
    numbers = np.asarray(fields["numbers"], dtype=np.int64)
    positions = np.asarray(fields["positions"], dtype=np.float64)
    if numbers.ndim != 1 or positions.shape != (numbers.shape[0], 3):
        raise DataError(f"{path}: atoms.positions has shape {positions.shape}, expected ({numbers.shape[0]}, 3)")
    return {
        "numbers": numbers,
        "positions_angstrom": positions,
        "cell_angstrom": np.asarray(fields["cell"], dtype=np.float64).reshape(3, 3),
        "pbc": np.asarray(fields["pbc"], dtype=bool).reshape(3),
    }


def _n_electrons(info: Mapping[str, Any], n_atoms: int, path: Path) -> float:
    if "number_of_electrons_exact" in info:
        return float(info["number_of_electrons_exact"])
    if "electrons_per_atom" in info:
        return float(info["electrons_per_atom"]) * n_atoms
    raise DataError(f"{path}: missing key 'number_of_electrons_exact' (or 'electrons_per_atom')")


def _check_grid(info: Mapping[str, Any], grid: tuple[int, ...], cell: np.ndarray, path: Path) -> tuple[int, ...]:
    """The grid of the whole cell (``grid_dimensions``); the arrays may hold a block of it."""
    dims = tuple(int(v) for v in _require(info, "grid_dimensions", path))
    if len(dims) != 3 or any(g > d for g, d in zip(grid, dims)):
        raise DataError(f"{path}: grid_dimensions {list(dims)} do not match the arrays' grid {list(grid)} "
                        "(they may be larger, for a block of the cell, never smaller)")
    if "voxel" in info:
        voxel = np.asarray(info["voxel"]["array"] if isinstance(info["voxel"], dict) else info["voxel"])
        expected = cell / np.asarray(dims, dtype=np.float64)[:, None]
        if voxel.shape != (3, 3) or not np.allclose(voxel, expected, rtol=1e-6, atol=1e-9):
            if dims != grid:
                raise DataError(f"{path}: grid_dimensions {list(dims)} do not match the arrays' grid {list(grid)}, "
                                f"and the voxel {voxel.tolist()} is not cell / grid_dimensions either (as it is "
                                "for a block of a larger grid): check grid_dimensions")
            raise DataError(f"{path}: voxel {voxel.tolist()} is not cell / grid_dimensions {expected.tolist()}")
    return dims


def _block_offset(info: Mapping[str, Any], coordinates: np.ndarray, voxel: np.ndarray, path: Path) -> tuple[int, int, int]:
    """Offset of a block in the whole grid: ``grid_offset`` in info.json, else its first point's coordinates.

    MALA writes the coordinates of each point in the first 3 columns of ``*.in.npy``, in Angstrom
    (recent versions) or as grid indices (older ones); both are recognised.
    """
    if "grid_offset" in info:
        values = [int(v) for v in info["grid_offset"]]
        return (values[0], values[1], values[2])
    first = np.asarray(coordinates, dtype=np.float64)
    for frac in (np.linalg.solve(voxel.T, first), first):  # Angstrom, then grid indices
        if np.allclose(frac, np.rint(frac), atol=1e-3) and np.rint(frac).min() >= 0:
            a, b, c = (int(v) for v in np.rint(frac))
            return (a, b, c)
    raise DataError(f"{path}: the block's first point {first.tolist()} is not a grid point of the whole cell; "
                    "add \"grid_offset\": [i, j, k] to the info.json")


def read_mala_snapshot(
    directory: str | Path,
    name: str,
    energy_grid: EnergyGrid,
    descriptor_settings: Mapping[str, Any] | None = None,
    ldos_units: str = "1/(eV A^3)",
) -> Snapshot:
    """Read and validate one MALA snapshot ``NAME.{in.npy,out.npy,info.json}``.

    ``ldos_units``: the unit of ``NAME.out.npy`` (see :mod:`hpsearch.data.units`); the store
    holds states/eV/Angstrom^3. When ``grid_dimensions`` is larger than the arrays' grid, the
    files hold a block of the cell: the store keeps the whole cell and the block's offset.
    """
    unit, factor = ldos_unit_factor(ldos_units)
    directory = Path(directory)
    in_path, out_path = directory / f"{name}.in.npy", directory / f"{name}.out.npy"
    info_path = directory / f"{name}.info.json"
    info = _load_info(info_path)
    raw_in, raw_out = _load_array(in_path, "descriptor"), _load_array(out_path, "LDOS")
    if raw_in.shape[3] <= N_COORDINATE_COLUMNS:
        raise DataError(f"{in_path}: {raw_in.shape[3]} columns, expected 3 coordinate columns plus descriptors")
    if raw_in.shape[:3] != raw_out.shape[:3]:
        raise DataError(f"{out_path}: LDOS grid {raw_out.shape[:3]} does not match the descriptor grid "
                        f"{raw_in.shape[:3]} of {in_path.name}")
    if raw_out.shape[3] != energy_grid.n:
        raise DataError(
            f"{out_path}: LDOS has {raw_out.shape[3]} energy points but the energy grid has {energy_grid.n} "
            f"(offset {energy_grid.offset_ev} eV, spacing {energy_grid.spacing_ev} eV): give the grid the data was computed on"
        )
    atoms = _atoms_fields(info, info_path)
    full = _check_grid(info, raw_in.shape[:3], atoms["cell_angstrom"], info_path)
    partial: dict[str, Any] = {}
    if full != raw_in.shape[:3]:
        voxel = atoms["cell_angstrom"] / np.asarray(full, dtype=np.float64)[:, None]
        offset = _block_offset(info, raw_in[0, 0, 0, :N_COORDINATE_COLUMNS], voxel, info_path)
        partial = {"full_grid_shape": full, "grid_offset": offset}
    descriptors = np.ascontiguousarray(raw_in[..., N_COORDINATE_COLUMNS:], dtype=np.float32)
    ldos = np.ascontiguousarray(np.asarray(raw_out, dtype=np.float64) * factor if factor != 1.0 else raw_out,
                                dtype=np.float32)
    _check_values(descriptors, in_path, "descriptors", non_negative=False)
    _check_values(ldos, out_path, "LDOS", non_negative=True)
    temperature_k = float(_require(info, "temperature", info_path))
    reference = {new: float(info[old]) for old, new in _REFERENCE_KEYS.items() if old in info}
    provenance = {
        "source": "mala",
        "directory": str(directory.resolve()),
        "files": [in_path.name, out_path.name, info_path.name],
        "coordinate_columns_dropped": N_COORDINATE_COLUMNS,
        "ldos_units": unit,
        "ldos_factor_to_per_ev_angstrom3": factor,
        "info": info,
    }
    settings = dict(MALA_SNAP_SETTINGS if descriptor_settings is None else descriptor_settings)
    return Snapshot(name=name, descriptors=descriptors, ldos=ldos, energy_grid=energy_grid,
                    temperature_k=temperature_k, n_electrons=_n_electrons(info, len(atoms["numbers"]), info_path),
                    descriptor_settings=settings, provenance=provenance, reference=reference, **atoms,
                    **partial)


def import_mala(
    directory: str | Path,
    output: str | Path,
    energy_grid: EnergyGrid,
    descriptor_settings: Mapping[str, Any] | None = None,
    names: Sequence[str] | None = None,
    overwrite: bool = False,
    append: bool = False,
    ldos_units: str = "1/(eV A^3)",
) -> Path:
    """Import the MALA snapshots of ``directory`` (all, or ``names``) into a new store ``output``.

    ``descriptor_settings`` records how ``*.in.npy`` was computed (default
    :data:`MALA_SNAP_SETTINGS`, those of MALA's Be2 data). With ``append`` the snapshots are
    added to an existing ``output``. ``ldos_units`` is the unit of the ``*.out.npy`` files
    (1/(eV A^3), 1/(eV Bohr^3) or 1/(Ry Bohr^3)); it is converted and recorded in each
    snapshot's provenance. The store is written atomically: an invalid file leaves the output
    as it was.
    """
    ldos_unit_factor(ldos_units)  # an unknown unit fails before any file is read
    if overwrite and append:
        raise DataError("choose either overwrite or append, not both")
    available = find_mala_snapshots(directory)
    selected = list(available if names is None else names)
    unknown = sorted(set(selected) - set(available))
    if unknown:
        raise DataError(f"no MALA snapshots {unknown} in {directory}; available: {available}")
    if descriptor_settings is None:
        logger.info("recording MALA's default SNAP settings for %s: %s", directory, MALA_SNAP_SETTINGS)

    def snapshots() -> Iterator[Snapshot]:
        for name in selected:
            logger.info("importing %s", name)
            yield read_mala_snapshot(directory, name, energy_grid, descriptor_settings, ldos_units)

    if append and Path(output).exists():
        return append_snapshots(output, snapshots())
    attrs = {"source": "mala", "directory": str(Path(directory).resolve()), "energy_grid": energy_grid.to_dict()}
    return write_store(output, snapshots(), attrs=attrs, overwrite=overwrite)
