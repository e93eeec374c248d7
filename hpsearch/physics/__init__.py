"""LDOS physics (MALA conventions): DOS, Fermi level, electron count, band energy, -TS, loss.

Pure numpy/torch, no I/O. The DOS between energy grid points is a sum of hat functions (half-width
one spacing; the end points' hats reach one spacing beyond the grid), integrated exactly against
the Fermi-Dirac occupation, so coarse energy grids give correct energies. Functions take numpy
arrays or torch tensors; a batch of DOS ``(B, n_e)`` gives ``(B,)`` results on the input's device.

Example:
    >>> import numpy as np
    >>> grid = EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=11)
    >>> dos = np.full(11, 0.2)  # states/eV
    >>> mu = fermi_energy(dos, grid, n_electrons=4.0, temperature_k=298.0)
    >>> round(number_of_electrons(dos, grid, mu, 298.0), 10)
    4.0
"""

from __future__ import annotations

from hpsearch.physics._dos import (
    band_energy,
    dos_from_ldos,
    entropy_contribution,
    fermi_energy,
    number_of_electrons,
)
from hpsearch.physics._energy import (
    band_energy_error_from_dos,
    band_energy_error_mev_per_atom,
    band_energy_from_ldos,
    density_from_ldos,
)
from hpsearch.physics._grid import KB_EV_PER_K, EnergyGrid

__all__ = [
    "KB_EV_PER_K",
    "EnergyGrid",
    "band_energy",
    "band_energy_error_from_dos",
    "band_energy_error_mev_per_atom",
    "band_energy_from_ldos",
    "density_from_ldos",
    "dos_from_ldos",
    "entropy_contribution",
    "fermi_energy",
    "number_of_electrons",
]
