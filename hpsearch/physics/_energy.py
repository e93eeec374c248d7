"""Band energies from LDOS and the project's loss: band-energy error in meV/atom."""

from __future__ import annotations

import numpy as np
import torch

from hpsearch.errors import DataError
from hpsearch.physics._dos import (
    Array,
    Result,
    Value,
    _as_dos,
    _integral,
    _fermi_levels,
    _kt_ev,
    _per_row,
    _result,
    dos_from_ldos,
)
from hpsearch.physics._fermi_dirac import segment_weights
from hpsearch.physics._grid import EnergyGrid


def band_energy_from_ldos(
    ldos: Array, grid: EnergyGrid, voxel_volume: float, n_electrons: float, temperature_k: float
) -> tuple[float, float]:
    """(band energy in eV, self-consistent Fermi level in eV) of one LDOS (..., n_e)."""
    dos, _, _ = _as_dos(dos_from_ldos(ldos, voxel_volume), grid)
    kt = _kt_ev(temperature_k)
    target = _per_row(n_electrons, 1, dos.device, "n_electrons")
    mu = _fermi_levels(dos, grid, target, kt, strict=True)
    return float(_integral(dos, grid, mu, kt, "band")[0]), float(mu[0])


def _shape(array: Array) -> tuple[int, ...]:
    return tuple(array.shape) if isinstance(array, torch.Tensor) else np.shape(array)


def _check_atoms(n_atoms: int) -> int:
    if isinstance(n_atoms, bool) or int(n_atoms) != n_atoms or n_atoms < 1:
        raise DataError(f"n_atoms must be a positive integer, got {n_atoms!r}")
    return int(n_atoms)


def band_energy_error_mev_per_atom(
    ldos_pred: Array,
    ldos_true: Array,
    grid: EnergyGrid,
    voxel_volume: float,
    n_electrons: float,
    n_atoms: int,
    temperature_k: float,
) -> float:
    """|Eb(pred) - Eb(true)| / n_atoms * 1000 (meV/atom), each LDOS at its own Fermi level."""
    atoms = _check_atoms(n_atoms)
    shape_pred, shape_true = _shape(ldos_pred), _shape(ldos_true)
    if shape_pred != shape_true:
        raise DataError(
            f"predicted and reference LDOS differ in shape: {shape_pred} vs {shape_true}"
        )
    pred, _ = band_energy_from_ldos(ldos_pred, grid, voxel_volume, n_electrons, temperature_k)
    true, _ = band_energy_from_ldos(ldos_true, grid, voxel_volume, n_electrons, temperature_k)
    return abs(pred - true) / atoms * 1000.0


def band_energy_error_from_dos(
    dos_pred: Array,
    dos_true: Array,
    grid: EnergyGrid,
    n_electrons: Value,
    n_atoms: int,
    temperature_k: float,
    *,
    strict: bool = True,
) -> Result:
    """Batched loss: |Eb(pred) - Eb(true)| / n_atoms * 1000 (meV/atom) for many predicted DOS.

    ``dos_pred`` (n_e,) or (B, n_e); ``dos_true`` (n_e,) (shared) or matching ``dos_pred``. Each DOS
    gets its own Fermi level. With ``strict=False`` a DOS that is NaN or cannot hold the electrons
    gives NaN instead of raising. Torch in -> (B,) tensor on the input's device.
    """
    atoms = _check_atoms(n_atoms)
    pred, is_numpy, single = _as_dos(dos_pred, grid)
    true, _, _ = _as_dos(dos_true, grid)
    true = true.to(pred.device)
    if true.shape[0] not in (1, pred.shape[0]):
        raise DataError(
            f"dos_true must be one DOS or one per prediction ({pred.shape[0]}), got {true.shape[0]}"
        )
    kt = _kt_ev(temperature_k)
    both = torch.cat([pred, true])
    target = _per_row(n_electrons, pred.shape[0], pred.device, "n_electrons")
    target = torch.cat([target, target[: true.shape[0]]])
    mu = _fermi_levels(both, grid, target, kt, strict)
    energy = _integral(both, grid, mu, kt, "band")
    error = (energy[: pred.shape[0]] - energy[pred.shape[0] :]).abs() / atoms * 1000.0
    return _result(error, is_numpy, single)


def density_from_ldos(
    ldos: Array, grid: EnergyGrid, fermi_energy_ev: float, temperature_k: float
) -> Array:
    """Electron density (electrons/Angstrom^3) at each grid point of an LDOS (..., n_e)."""
    is_torch = isinstance(ldos, torch.Tensor)
    data = ldos if is_torch else torch.from_numpy(np.ascontiguousarray(ldos, dtype=np.float64))
    if data.ndim < 1 or data.shape[-1] != grid.n:
        raise DataError(f"LDOS must have shape (..., {grid.n}), got {tuple(data.shape)}")
    mu = _per_row(fermi_energy_ev, 1, data.device, "fermi_energy_ev")
    weights = segment_weights(grid, mu, _kt_ev(temperature_k), "electrons")[0]
    density = data.to(torch.float64) @ weights
    if not bool(torch.isfinite(density).all()):
        raise DataError(
            "LDOS contains NaN or infinite values: check the data or the network output"
        )
    return density if is_torch else density.numpy()

