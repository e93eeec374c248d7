"""Proxies from the layer outputs of a network at initialisation on one batch (float64).

- ``meco`` (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
  Minimum Eigenvalue of Correlation", NeurIPS 2023; the MeCo_opt form): for each hidden layer l
  of width w_l, P_l is the Pearson correlation matrix between (at most) 8 of its units, drawn
  with the seed, over the N samples of the batch (the units play MeCo's channels, the samples
  its spatial positions; NaN entries of a constant unit set to 0 as in the authors' code);
  score = sum_l w_l * lambda_min(P_l). Sign: MeCo maximises it.
- ``near`` (Husistein, Reiher and Eckhoff, "NEAR: A Training-Free Pre-Estimator of Machine
  Learning Model Performance", ICLR 2025): score = sum over hidden layers of
  erank(Z_l) + erank(A_l), plus erank of the output layer's Z, where Z_l (N, w_l) holds the
  pre-activations, A_l the activations, and erank(M) = exp(-sum_i p_i log p_i) with
  p_i = sigma_i / sum_j sigma_j over M's singular values (Roy and Vetterli 2007). Sign: NEAR
  maximises it (richer representations).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import torch

from hpsearch.scoring.proxies._context import ProxyContext, ProxyResult, worst

__all__ = ["MECO_UNITS", "effective_rank", "meco", "near"]

#: Units per layer whose correlation MeCo_opt uses (the authors sample 8 channels).
MECO_UNITS: Final[int] = 8


def meco_units(width: int, seed: int, layer: int) -> np.ndarray:
    """The sorted unit indices MeCo uses in hidden layer ``layer`` (reproducible from ``seed``)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(layer,)))
    return np.sort(rng.choice(width, size=min(MECO_UNITS, width), replace=False))


def meco(ctx: ProxyContext) -> ProxyResult:
    """sum over hidden layers of width times the smallest eigenvalue of a unit correlation matrix."""
    layers = ctx.activations
    if not layers:
        return worst("no elementwise activation module: meco needs hidden layers")
    total = 0.0
    for index, layer in enumerate(layers):
        post = layer.post.reshape(layer.post.shape[0], -1)
        units = torch.from_numpy(meco_units(post.shape[1], ctx.seed, index)).to(post.device)
        corr = torch.nan_to_num(torch.corrcoef(post[:, units].T), nan=0.0, posinf=0.0, neginf=0.0)
        total += post.shape[1] * float(torch.linalg.eigvalsh(corr.cpu())[0])
    if not math.isfinite(total):
        return worst(f"non-finite meco ({total})")
    return ProxyResult(total)


def effective_rank(matrix: torch.Tensor) -> float:
    """Roy and Vetterli's effective rank exp(H(p)), p the normalised singular values; 0 for zero."""
    sigma = torch.linalg.svdvals(matrix.to(torch.float64).cpu())
    total = float(sigma.sum())
    if not math.isfinite(total) or total <= 0.0:
        return 0.0
    p = sigma / total
    p = p[p > 0]
    return float(torch.exp(-(p * torch.log(p)).sum()))


def near(ctx: ProxyContext) -> ProxyResult:
    """Sum of effective ranks of every hidden layer's pre-activations and activations, plus the output's."""
    layers, output = ctx.recorded
    total = effective_rank(output.reshape(output.shape[0], -1))
    for layer in layers:
        total += effective_rank(layer.pre.reshape(layer.pre.shape[0], -1))
        total += effective_rank(layer.post.reshape(layer.post.shape[0], -1))
    if not math.isfinite(total):
        return worst(f"non-finite near ({total}): the layer outputs overflowed")
    return ProxyResult(total)
