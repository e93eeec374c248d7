"""Exact integrals of the hat-interpolated DOS against Fermi-Dirac kernels (torch float64).

The DOS between grid points is ``D(E) = sum_i D_i h_i(E)`` with hat functions ``h_i`` of half-width
one spacing (MALA's convention: the first and last hats reach one spacing beyond the grid). On each
linear segment we integrate exactly. With ``x = (E - mu) / kT`` the occupation is split as
``f(x) = theta(-x) + g(x)``: the step part gives polynomials, and ``g`` (odd, decaying like
``exp(-|x|)``) and the entropy density ``s`` (even) have antiderivatives made of
``phi_n(y) = -Li_n(-exp(-y))`` with ``y = |x| >= 0``. Nothing here depends on the spacing or on
``|x|`` being moderate, so coarse grids (2.5 eV, ``|x| ~ 100``) and ``T = 0`` are exact.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from hpsearch.physics._grid import EnergyGrid

_ZETA3 = 1.2020569031595942
_ETA2 = math.pi**2 / 12.0  # eta(2) = phi_2(0)
_ETA3 = 0.75 * _ZETA3  # eta(3) = phi_3(0)
_SWITCH_Y = 1.0  # phi_n: Taylor series in y below, exponential series above
_N_TAYLOR = 40  # (1/pi)^40 ~ 1e-20 at y = 1
_N_SERIES = 40  # exp(-40) ~ 4e-18 at y = 1

QUANTITIES = ("electrons", "band", "entropy")


def _bernoulli_numbers(count: int) -> list[Fraction]:
    """Exact B_0 .. B_(count-1) (B_1 = +1/2), Akiyama-Tanigawa algorithm."""
    numbers, row = [], [Fraction(0)] * count
    for m in range(count):
        row[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            row[j - 1] = j * (row[j - 1] - row[j])
        numbers.append(row[0])
    return numbers


def _taylor_coefficients(order: int) -> tuple[float, ...]:
    """Coefficients c_m of phi_n(y) = sum_m c_m y^m = sum_m eta(n - m) (-y)^m / m!.

    Dirichlet eta at integers: eta(3), eta(2), eta(1) = ln 2, and exactly
    eta(-k) = (2^(k+1) - 1) B_(k+1) / (k+1) for k >= 0 (rational, so rounded once).
    """
    positive = {3: _ETA3, 2: _ETA2, 1: math.log(2.0)}
    bernoulli = _bernoulli_numbers(_N_TAYLOR + 2)
    coefficients = []
    for m in range(_N_TAYLOR):
        s = order - m
        if s >= 1:
            coefficients.append(positive[s] * (-1.0) ** m / math.factorial(m))
        else:
            k = -s
            eta = (2 ** (k + 1) - 1) * bernoulli[k + 1] / (k + 1)
            coefficients.append(float(eta * (-1) ** m / math.factorial(m)))
    return tuple(coefficients)


_TAYLOR = {2: _taylor_coefficients(2), 3: _taylor_coefficients(3)}


_SERIES = {n: tuple((-1.0) ** (k + 1) / k**n for k in range(1, _N_SERIES + 1)) for n in (2, 3)}


def _horner(coefficients: tuple[float, ...], z: torch.Tensor) -> torch.Tensor:
    """sum_m coefficients[m] z^m (in-place Horner steps: cheap on CPU and GPU alike)."""
    total = torch.full_like(z, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        total.mul_(z).add_(coefficient)
    return total


def _phi(order: int, y: torch.Tensor) -> torch.Tensor:
    """``phi_n(y) = -Li_n(-exp(-y)) = sum_k (-1)^(k+1) exp(-k y) / k^n``, y >= 0, n = 1, 2, 3."""
    if order == 1:
        return torch.log1p(torch.exp(-y))
    taylor = _horner(_TAYLOR[order], y.clamp(max=_SWITCH_Y))
    q = torch.exp(-y.clamp(min=_SWITCH_Y))
    series = _horner(_SERIES[order], q).mul_(q)
    return torch.where(y < _SWITCH_Y, taylor, series)


def _occupation_antiderivatives(x: torch.Tensor, max_power: int) -> list[torch.Tensor]:
    """A_j(x) with A_j' = x^j g(x), A_j(0) = 0, for j = 0 .. max_power (<= 2)."""
    y = x.abs()
    sign = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    phi1, phi2 = _phi(1, y), _phi(2, y)
    # y-antiderivatives of y^j / (1 + e^y); g is odd, so x < 0 takes a factor (-1)^j.
    out = [-phi1 - (-math.log(2.0)), sign * (-y * phi1 - phi2 + _ETA2)]
    if max_power >= 2:
        phi3 = _phi(3, y)
        out.append(-y * y * phi1 - 2.0 * y * phi2 - 2.0 * phi3 + 2.0 * _ETA3)
    return out


def _entropy_antiderivatives(x: torch.Tensor) -> list[torch.Tensor]:
    """B_j(x) with B_j' = x^j s(x), B_j(0) = 0, j = 0, 1; s = -f ln f - (1-f) ln(1-f)."""
    y = x.abs()
    sign = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    phi1, phi2, phi3 = _phi(1, y), _phi(2, y), _phi(3, y)
    # s(y) = phi_1(y) + y / (1 + e^y) is even, so x < 0 takes a factor (-1)^(j+1).
    b0 = sign * (-y * phi1 - 2.0 * phi2 + 2.0 * _ETA2)
    b1 = -y * y * phi1 - 3.0 * y * phi2 - 3.0 * phi3 + 3.0 * _ETA3
    return [b0, b1]


def segment_weights(
    grid: EnergyGrid, mu_ev: torch.Tensor, kt_ev: float, quantity: str
) -> torch.Tensor:
    """Weights ``w`` (B, n) such that ``sum_i D_i w_i`` is the integral of the hat-DOS times

    ``f`` ("electrons"), ``E f`` ("band", eV) or ``s`` ("entropy", eV; times -kT gives -TS), at
    the Fermi levels ``mu_ev`` (B,) float64 and ``kt_ev >= 0``.
    """
    spacing = grid.spacing_ev
    opts = {"dtype": torch.float64, "device": mu_ev.device}
    bounds = grid.offset_ev + spacing * (torch.arange(grid.n + 2, **opts) - 1.0)
    start = bounds[:-1]  # segment s = [E_(s-1), E_s], s = 0 .. n
    mu = mu_ev.unsqueeze(-1)
    u = ((mu - start) / spacing).clamp(0.0, 1.0)  # occupied fraction of the segment at T = 0
    if quantity == "electrons":
        left, right = spacing * (u - 0.5 * u * u), 0.5 * spacing * u * u
    elif quantity == "band":
        left = spacing * (start * (u - 0.5 * u * u) + spacing * (0.5 * u * u - u**3 / 3.0))
        right = spacing * (start * 0.5 * u * u + spacing * u**3 / 3.0)
    elif quantity == "entropy":
        left = right = torch.zeros_like(u)
    else:
        raise ValueError(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
    if kt_ev > 0.0:
        x = (bounds - mu) / kt_ev
        xa, xb = x[..., :-1], x[..., 1:]
        scale = kt_ev * kt_ev / spacing  # (1 - t) dE = scale (xb - x) dx, t dE = scale (x - xa) dx
        if quantity == "entropy":
            d = [torch.diff(b, dim=-1) for b in _entropy_antiderivatives(x)]
        else:
            power = 1 if quantity == "electrons" else 2
            d = [torch.diff(a, dim=-1) for a in _occupation_antiderivatives(x, power)]
        left_g, right_g = scale * (xb * d[0] - d[1]), scale * (d[1] - xa * d[0])
        if quantity == "band":  # E g(E) = (mu + kT x) g(x)
            left_g = mu * left_g + scale * kt_ev * (xb * d[1] - d[2])
            right_g = mu * right_g + scale * kt_ev * (d[2] - xa * d[1])
        left, right = left + left_g, right + right_g
    return right[..., :-1] + left[..., 1:]

