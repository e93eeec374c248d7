"""Thermal snapshots of fcc aluminium from Langevin molecular dynamics in LAMMPS.

Interatomic potential: the Morse pair potential of Girifalco and Weizer for Al,

    phi(r) = D [exp(-2 alpha (r - r0)) - 2 exp(-alpha (r - r0))],
    D = 0.2703 eV, alpha = 1.1646 1/Angstrom, r0 = 3.253 Angstrom

(L. A. Girifalco and V. G. Weizer, Phys. Rev. 114, 687 (1959), table I), cut off at 8 Angstrom
with the energy shifted to zero there. A pair potential is the simplest published Al potential;
it gives thermal displacements of the right size (rms about 0.1 Angstrom at 298 K), which is what
the electronic model needs, not Al's elastic anisotropy.

Protocol: fcc lattice at the requested density (2.699 g/cc gives a = 4.0494 Angstrom), velocities
drawn at twice the target temperature (equipartition halves it within a few phonon periods),
Langevin thermostat (damping 0.1 ps) with velocity Verlet, 1 fs steps; equilibration, then one
snapshot every ``interval_ps``. With a 0.1 ps damping the displacement autocorrelation decays
within a few tenths of a picosecond, so snapshots 2 ps apart are decorrelated; the measured
correlation between successive displacement fields is reported in the diagnostics. One MPI
rank and seeded random numbers: the same seed gives the same trajectory bit for bit.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpsearch.errors import ConfigError

logger = logging.getLogger(__name__)

AL_MASS_AMU = 26.9815385
AMU_GRAMS = 1.66053906660e-24
MORSE_DEPTH_EV = 0.2703
MORSE_ALPHA_PER_ANGSTROM = 1.1646
MORSE_R0_ANGSTROM = 3.253
MORSE_CUTOFF_ANGSTROM = 8.0
MORSE_REFERENCE = "L. A. Girifalco and V. G. Weizer, Phys. Rev. 114, 687 (1959)"
LANGEVIN_DAMPING_PS = 0.1
TIMESTEP_PS = 0.001


def lattice_constant_angstrom(density_g_per_cm3: float) -> float:
    """Cubic fcc lattice constant of Al at the given mass density (4 atoms per cubic cell)."""
    if density_g_per_cm3 <= 0:
        raise ConfigError(f"density must be > 0 g/cc, got {density_g_per_cm3}")
    volume_cm3 = 4.0 * AL_MASS_AMU * AMU_GRAMS / density_g_per_cm3
    return (volume_cm3 * 1e24) ** (1.0 / 3.0)


def supercell_repeats(n_atoms: int) -> tuple[int, int, int]:
    """The most cubic (n1 >= n2 >= n3) repetition of the 4-atom cubic fcc cell with ``n_atoms``."""
    if n_atoms < 4 or n_atoms % 4:
        raise ConfigError(f"n_atoms must be a multiple of 4 (cubic fcc cells), got {n_atoms}; e.g. 8, 16, 32, 108")
    cells = n_atoms // 4
    best = (cells, 1, 1)
    for n1, n2 in itertools.product(range(1, cells + 1), repeat=2):
        n3 = cells // (n1 * n2)
        if n1 * n2 * n3 == cells and n1 >= n2 >= n3 and n1 / n3 < best[0] / best[2]:
            best = (n1, n2, n3)
    return best


@dataclass
class MdResult:
    """Snapshots (Cartesian positions in Angstrom, wrapped into the cell) and diagnostics."""

    cell_angstrom: np.ndarray
    frames: list[np.ndarray] = field(default_factory=list)
    times_ps: list[float] = field(default_factory=list)
    temperatures_k: list[float] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)


def _seeds(seed: int) -> tuple[int, int]:
    """Two LAMMPS seeds (1 .. 9e8, the range of its Marsaglia generator) from one user seed."""
    state = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint32)
    return tuple(int(v) % 900_000_000 + 1 for v in state)  # type: ignore[return-value]


def _setup_commands(repeats: tuple[int, int, int], lattice_angstrom: float, temperature_k: float,
                    seed: int) -> list[str]:
    velocity_seed, langevin_seed = _seeds(seed)
    n1, n2, n3 = repeats
    return [
        "units metal", "atom_style atomic", "atom_modify map array sort 0 0.0", "boundary p p p",
        f"lattice fcc {lattice_angstrom!r}", f"region hps_box block 0 {n1} 0 {n2} 0 {n3}",
        "create_box 1 hps_box", "create_atoms 1 box", f"mass 1 {AL_MASS_AMU!r}",
        f"pair_style morse {MORSE_CUTOFF_ANGSTROM!r}",
        f"pair_coeff 1 1 {MORSE_DEPTH_EV!r} {MORSE_ALPHA_PER_ANGSTROM!r} {MORSE_R0_ANGSTROM!r}",
        "pair_modify shift yes", "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
        f"timestep {TIMESTEP_PS!r}",
        f"velocity all create {2.0 * temperature_k!r} {velocity_seed} dist gaussian mom yes rot no",
        "fix hps_nve all nve",
        f"fix hps_langevin all langevin {temperature_k!r} {temperature_k!r} {LANGEVIN_DAMPING_PS!r} "
        f"{langevin_seed} zero yes",
        "thermo_style custom step temp pe", "thermo 0",
    ]


def _gather_positions(lmp: Any) -> np.ndarray:
    """Positions of all atoms ordered by atom ID (Angstrom)."""
    return np.array(lmp.gather_atoms("x", 1, 3)[:], dtype=np.float64).reshape(-1, 3)


def _displacements(positions: np.ndarray, sites: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Minimum-image displacements from the ideal sites, centre-of-mass drift removed."""
    delta = positions - sites
    delta -= box * np.round(delta / box)
    return delta - delta.mean(axis=0)


def run_md(n_atoms: int, density_g_per_cm3: float, temperature_k: float, n_snapshots: int,
           equilibration_ps: float, interval_ps: float, seed: int,
           on_snapshot: Callable[[int], None] | None = None) -> MdResult:
    """Equilibrate, then record ``n_snapshots`` configurations ``interval_ps`` apart."""
    from hpsearch._lammps import new_lammps

    if n_snapshots < 1 or equilibration_ps < 0 or interval_ps <= 0:
        raise ConfigError(f"need n_snapshots >= 1, equilibration_ps >= 0, interval_ps > 0; got "
                          f"{n_snapshots}, {equilibration_ps}, {interval_ps}")
    repeats = supercell_repeats(n_atoms)
    lattice = lattice_constant_angstrom(density_g_per_cm3)
    box = np.asarray(repeats, dtype=np.float64) * lattice
    result = MdResult(cell_angstrom=np.diag(box))
    lmp = new_lammps()
    try:
        for command in _setup_commands(repeats, lattice, temperature_k, seed):
            lmp.command(command)
        sites = _gather_positions(lmp)
        lmp.command(f"run {int(round(equilibration_ps / TIMESTEP_PS))}")
        steps = int(round(interval_ps / TIMESTEP_PS))
        for index in range(n_snapshots):
            lmp.command(f"run {steps}")
            result.frames.append(np.mod(_gather_positions(lmp), box))
            result.times_ps.append(equilibration_ps + (index + 1) * interval_ps)
            result.temperatures_k.append(float(lmp.get_thermo("temp")))
            if on_snapshot is not None:
                on_snapshot(index)
    finally:
        lmp.close()
    result.diagnostics = _diagnostics(result, sites, box)
    return result


def _diagnostics(result: MdResult, sites: np.ndarray, box: np.ndarray) -> dict[str, Any]:
    """RMS displacement, mean temperature and the correlation between successive snapshots."""
    fields = [_displacements(frame, sites, box).ravel() for frame in result.frames]
    rms = [float(np.sqrt(np.mean(np.sum(f.reshape(-1, 3) ** 2, axis=1)))) for f in fields]
    correlations = [float(a @ b / math.sqrt((a @ a) * (b @ b))) for a, b in zip(fields, fields[1:])]
    return {
        "rms_displacement_angstrom": float(np.mean(rms)),
        "mean_temperature_k": float(np.mean(result.temperatures_k)),
        "successive_displacement_correlation": float(np.mean(correlations)) if correlations else None,
        "max_abs_successive_correlation": float(np.max(np.abs(correlations))) if correlations else None,
    }
