"""Proxies from how a network at initialisation tells the samples of a batch apart.

- ``naswot``: the paper's eq. 13 (Fiedler et al. 2022): ``S = sum_i [log(lambda_i + k) +
  1/(lambda_i + k)]`` over the eigenvalues of the correlation matrix of the input Jacobian rows,
  k = 1e-4 (:mod:`hpsearch.scoring.naswot`). Sign: the paper maximises S.
- ``naswot-v1``: ``-S``, the first version of the original NASWOT paper (also maximised).
- ``logdet``: Mellor et al., "Neural Architecture Search without Training", ICML 2021, eq. 2:
  ``log |K_H|``, ``K_H[i, j] = N_A - d_H(c_i, c_j)``, where c_i in {0, 1}^N_A is the binary code of
  sample i over all N_A hidden units (1 where the unit's pre-activation is > 0: the ReLU's
  on/off pattern; for other activations the sign of the pre-activation) and d_H the Hamming
  distance. Sign: Mellor et al. maximise it (more distinguishable codes, better network).

The batch must hold at most as many samples as input features for the NASWOT variants (see
:func:`hpsearch.scoring.naswot.validate_batch`); ``logdet`` is singular when two samples share a
code or N exceeds N_A + 1, which gives the worst score with that reason.
"""

from __future__ import annotations

import math

import torch

from hpsearch.scoring.naswot import naswot_result
from hpsearch.scoring.proxies._context import ProxyContext, ProxyResult, worst

__all__ = ["logdet", "naswot", "naswot_v1"]

#: K_H has integer entries, so |K_H| is a non-negative integer: below 1/2 it is exactly zero.
_SINGULAR_LOGDET = math.log(0.5)


def _naswot(ctx: ProxyContext, convention: str) -> ProxyResult:
    first = next(iter(ctx.model.parameters()), None)
    batch = ctx.batch if first is None else ctx.batch.to(first.device)
    result = naswot_result(ctx.model, batch, convention=convention)  # type: ignore[arg-type]
    return ProxyResult(result.score, result.reason)


def naswot(ctx: ProxyContext) -> ProxyResult:
    """Eq. 13 of the paper, maximised (the paper's convention)."""
    return _naswot(ctx, "paper")


def naswot_v1(ctx: ProxyContext) -> ProxyResult:
    """-(eq. 13): the first NASWOT paper's sign, maximised."""
    return _naswot(ctx, "v1")


def binary_codes(ctx: ProxyContext) -> torch.Tensor | None:
    """(N, N_A) float64 codes: 1 where a hidden pre-activation is > 0; None without hidden layers."""
    layers = ctx.activations
    if not layers:
        return None
    return torch.cat([(layer.pre > 0).reshape(layer.pre.shape[0], -1) for layer in layers], dim=1).double()


def logdet(ctx: ProxyContext) -> ProxyResult:
    """log |K_H| of the binary activation codes (Mellor et al. 2021, eq. 2), float64."""
    codes = binary_codes(ctx)
    if codes is None:
        return worst("no elementwise activation module: logdet needs hidden layers with activations")
    n_samples, n_units = codes.shape
    kernel = codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T  # N_A minus the Hamming distance
    sign, value = torch.linalg.slogdet(kernel.cpu())
    if float(sign) <= 0.0 or float(value) < _SINGULAR_LOGDET:
        distinct = int(torch.unique(codes, dim=0).shape[0])
        return worst(
            f"singular kernel K_H: {distinct} distinct binary codes among {n_samples} samples over "
            f"{n_units} hidden units (K_H has rank at most N_A + 1 = {n_units + 1}); use a batch of at "
            "most N_A + 1 samples or wider layers"
        )
    return ProxyResult(float(value))
