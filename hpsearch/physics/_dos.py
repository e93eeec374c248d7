"""DOS from LDOS, self-consistent Fermi level, electron count, band energy and -TS.

Every function takes numpy arrays or torch tensors. A DOS of shape ``(n_e,)`` gives Python
floats; a batch ``(B, n_e)`` gives ``(B,)`` results of the input's kind (torch tensors stay on
their device). The arithmetic is float64 throughout (numpy input runs through torch on the CPU).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Union

import numpy as np
import torch

from hpsearch.errors import DataError
from hpsearch.physics._fermi_dirac import segment_weights
from hpsearch.physics._grid import KB_EV_PER_K, EnergyGrid

logger = logging.getLogger(__name__)

Array = Union[np.ndarray, torch.Tensor]
Result = Union[float, np.ndarray, torch.Tensor]
Value = Union[float, np.ndarray, torch.Tensor]

_BRACKET_KT = 60.0  # f(E) = exp(-60) ~ 1e-26 outside the Fermi bracket
_MAX_ITERATIONS = 200
_MAX_REGULA_FALSI = 60  # then plain bisection (a guarantee, rarely reached)
_EPS = float(np.finfo(np.float64).eps)


def _as_dos(dos: Any, grid: EnergyGrid) -> tuple[torch.Tensor, bool, bool]:
    """(B, n_e) float64 tensor, whether the input was numpy, whether it was a single DOS."""
    if isinstance(dos, torch.Tensor):
        tensor, is_numpy = dos.to(torch.float64), False
    else:
        try:
            array = np.ascontiguousarray(dos, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"DOS must be a numeric array or tensor, got {type(dos).__name__}: {exc}"
            ) from exc
        tensor, is_numpy = torch.from_numpy(array), True
    if tensor.ndim not in (1, 2) or tensor.shape[-1] != grid.n:
        raise DataError(
            f"DOS must have shape (n_e,) or (B, n_e) with n_e = {grid.n} (the energy grid), got "
            f"{tuple(tensor.shape)}; for an LDOS use dos_from_ldos first"
        )
    return tensor.reshape(-1, grid.n), is_numpy, tensor.ndim == 1


def _bad_rows_message(mask: torch.Tensor) -> str:
    rows = torch.nonzero(mask).flatten().tolist()
    return f"rows {rows[:10]}{' ...' if len(rows) > 10 else ''} of {mask.numel()}"


def _check_finite(dos: torch.Tensor, strict: bool) -> torch.Tensor:
    """Mask of rows with only finite values; raise for any other row when strict."""
    finite = torch.isfinite(dos).all(dim=-1)
    if strict and not bool(finite.all()):
        raise DataError(
            f"DOS contains NaN or infinite values ({_bad_rows_message(~finite)}): check the "
            "LDOS (a diverged network predicts NaN) or pass strict=False to get NaN results"
        )
    return finite


def _per_row(value: Value, rows: int, device: torch.device, name: str) -> torch.Tensor:
    """A scalar or (B,) value as a (B,) float64 tensor on ``device``."""
    tensor = torch.as_tensor(value, dtype=torch.float64).to(device).reshape(-1)
    if tensor.numel() == 1:
        tensor = tensor.expand(rows)
    if tensor.numel() != rows:
        raise DataError(
            f"{name} must be a scalar or have one value per DOS ({rows}), got {tensor.numel()}"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise DataError(f"{name} must be finite, got {value!r}")
    return tensor


def _kt_ev(temperature_k: float) -> float:
    temperature = float(temperature_k)
    if not (math.isfinite(temperature) and temperature >= 0.0):
        raise DataError(f"temperature_k must be finite and >= 0 K, got {temperature_k!r}")
    return KB_EV_PER_K * temperature


def _result(values: torch.Tensor, is_numpy: bool, single: bool) -> Result:
    if single:
        return float(values[0])
    return values.detach().cpu().numpy() if is_numpy else values


def _integral(
    dos: torch.Tensor, grid: EnergyGrid, mu: torch.Tensor, kt: float, quantity: str
) -> torch.Tensor:
    """Integral of the hat-interpolated DOS rows times the kernel of ``quantity``, shape (B,)."""
    return (dos * segment_weights(grid, mu, kt, quantity)).sum(dim=-1)


def dos_from_ldos(ldos: Array, voxel_volume: float, *, batch_dims: int = 0) -> Array:
    """DOS in states/eV: the LDOS (..., n_e) summed over its grid axes times the voxel volume.

    ``voxel_volume`` is the volume of one real-space grid cell (Angstrom^3). The leading
    ``batch_dims`` axes are kept (e.g. ``batch_dims=1`` for (B, nx, ny, nz, n_e) -> (B, n_e)).
    numpy in -> numpy out, torch in -> torch out (float64; summed in float64).
    """
    volume = float(voxel_volume)
    if not (math.isfinite(volume) and volume > 0.0):
        raise DataError(
            f"voxel_volume must be a positive volume in Angstrom^3, got {voxel_volume!r}"
        )
    is_torch = isinstance(ldos, torch.Tensor)
    data = ldos if is_torch else np.asarray(ldos)
    if not is_torch and not np.issubdtype(data.dtype, np.number):
        raise DataError(f"LDOS must be a numeric array, got dtype {data.dtype}")
    if data.ndim < batch_dims + 1 or batch_dims < 0:
        raise DataError(
            f"LDOS must have shape (batch..., grid..., n_e) with {batch_dims} batch axes, "
            f"got shape {tuple(data.shape)}"
        )
    axes = tuple(range(batch_dims, data.ndim - 1))
    if is_torch:
        dos: Array = data.sum(dim=axes, dtype=torch.float64) if axes else data.to(torch.float64)
    else:
        dos = np.sum(data, axis=axes, dtype=np.float64)
    dos = dos * volume
    if not bool((torch.isfinite(dos) if is_torch else np.isfinite(dos)).all()):
        raise DataError(
            "LDOS contains NaN or infinite values: check the data or the network output"
        )
    return dos


def _fermi_levels(
    dos: torch.Tensor, grid: EnergyGrid, target: torch.Tensor, kt: float, strict: bool
) -> torch.Tensor:
    """Vectorised root of N(mu) = target; NaN for rows without a solution when not strict."""
    pad = grid.spacing_ev + _BRACKET_KT * kt + 1.0
    lo = torch.full_like(target, grid.offset_ev - pad)
    hi = torch.full_like(target, float(grid.energies[-1]) + pad)
    finite = _check_finite(dos, strict)
    f_lo = _integral(dos, grid, lo, kt, "electrons") - target
    f_hi = _integral(dos, grid, hi, kt, "electrons") - target
    ok = finite & (f_lo < 0) & (f_hi > 0)
    if strict and not bool(ok.all()):
        row = int(torch.nonzero(~ok)[0])
        raise DataError(
            f"cannot place {float(target[row]):.10g} electrons in DOS row {row} "
            f"({_bad_rows_message(~ok)} fail): its hat-interpolated integral holds "
            f"{float(f_lo[row] + target[row]):.6g} .. {float(f_hi[row] + target[row]):.6g} "
            "electrons over all Fermi levels; check n_electrons, the voxel volume and the LDOS "
            "normalisation"
        )
    f_lo, f_hi = torch.where(ok, f_lo, -1.0), torch.where(ok, f_hi, 1.0)  # keep bad rows finite
    return _bracketed_root(dos, grid, target, kt, (lo, hi, f_lo, f_hi), ok)


def _bracketed_root(
    dos: torch.Tensor,
    grid: EnergyGrid,
    target: torch.Tensor,
    kt: float,
    bracket: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    ok: torch.Tensor,
) -> torch.Tensor:
    """Illinois regula falsi inside a sign-changing bracket, then bisection as a safeguard.

    Stops per row once |N - target| <= max(1e-12, 64 eps target) or the bracket is as narrow as
    float64 allows; a row's level is frozen when it converges.
    """
    lo, hi, f_lo, f_hi = bracket
    tol_n = torch.clamp(64.0 * _EPS * target.abs(), min=1e-12)
    result, done = torch.full_like(target, math.nan), ~ok
    moved = torch.zeros_like(target)  # -1: lo moved last, +1: hi moved last
    for iteration in range(_MAX_ITERATIONS):
        if iteration < _MAX_REGULA_FALSI:
            trial = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        else:
            trial = 0.5 * (lo + hi)
        f_trial = _integral(dos, grid, trial, kt, "electrons") - target
        narrow = (hi - lo) <= 1e-13 + 8.0 * _EPS * torch.maximum(lo.abs(), hi.abs())
        converged = ~done & ((f_trial.abs() <= tol_n) | narrow)
        result, done = torch.where(converged, trial, result), done | converged
        if bool(done.all()):
            break
        below = f_trial < 0
        f_hi = torch.where(below & (moved < 0), 0.5 * f_hi, f_hi)  # Illinois: same end twice
        f_lo = torch.where(~below & (moved > 0), 0.5 * f_lo, f_lo)
        lo, f_lo = torch.where(below, trial, lo), torch.where(below, f_trial, f_lo)
        hi, f_hi = torch.where(below, hi, trial), torch.where(below, f_hi, f_trial)
        moved = torch.where(below, -1.0, 1.0).to(moved)
    else:
        result = torch.where(done, result, 0.5 * (lo + hi))
    logger.debug("Fermi level: %d iterations for %d DOS", iteration + 1, target.numel())
    return torch.where(ok, result, math.nan)


def fermi_energy(
    dos: Array, grid: EnergyGrid, n_electrons: Value, temperature_k: float, *, strict: bool = True
) -> Result:
    """Self-consistent Fermi level (eV): the Fermi-Dirac occupied DOS holds ``n_electrons``.

    A bracket over the whole hat-interpolated DOS, then Illinois regula falsi (bisection as a
    safeguard) until the electron count is exact to ~1e-12. A DOS that cannot hold
    ``n_electrons`` (or has NaN) raises :class:`DataError`, or gives NaN for that row when
    ``strict=False``. At T = 0 with the level in a gap, some level inside the gap is returned.
    """
    values, is_numpy, single = _as_dos(dos, grid)
    kt = _kt_ev(temperature_k)
    target = _per_row(n_electrons, values.shape[0], values.device, "n_electrons")
    return _result(_fermi_levels(values, grid, target, kt, strict), is_numpy, single)


def _quantity(
    dos: Array, grid: EnergyGrid, fermi_energy_ev: Value, temperature_k: float, quantity: str
) -> Result:
    values, is_numpy, single = _as_dos(dos, grid)
    kt = _kt_ev(temperature_k)
    mu = _per_row(fermi_energy_ev, values.shape[0], values.device, "fermi_energy_ev")
    out = _integral(values, grid, mu, kt, quantity)
    return _result(-kt * out if quantity == "entropy" else out, is_numpy, single)


def number_of_electrons(
    dos: Array, grid: EnergyGrid, fermi_energy_ev: Value, temperature_k: float
) -> Result:
    """Electrons in the occupied DOS: the integral of D(E) f(E) over the hat-interpolated DOS."""
    return _quantity(dos, grid, fermi_energy_ev, temperature_k, "electrons")


def band_energy(
    dos: Array, grid: EnergyGrid, fermi_energy_ev: Value, temperature_k: float
) -> Result:
    """Band energy in eV: the integral of E D(E) f(E) over the hat-interpolated DOS."""
    return _quantity(dos, grid, fermi_energy_ev, temperature_k, "band")


def entropy_contribution(
    dos: Array, grid: EnergyGrid, fermi_energy_ev: Value, temperature_k: float
) -> Result:
    """Electronic entropy term -kT S in eV (<= 0), S = -int D [f ln f + (1-f) ln(1-f)] dE."""
    return _quantity(dos, grid, fermi_energy_ev, temperature_k, "entropy")
