"""The honest baselines every training-free score has to beat: the network's size.

- ``params``: the number of trainable parameters (weights and biases).
- ``flops``: floating-point operations of the Linear layers per input sample,
  2 * in_features * out_features per layer (one multiply and one add per weight; biases and
  activations not counted).

Sign: larger networks are predicted better, the convention of the zero-cost-proxy literature
(Abdelfattah et al. 2021 and later compare every proxy with these two).
"""

from __future__ import annotations

import torch

from hpsearch.scoring.proxies._context import ProxyContext, ProxyResult

__all__ = ["flops", "params"]


def params(ctx: ProxyContext) -> ProxyResult:
    """The number of trainable parameters."""
    return ProxyResult(float(sum(p.numel() for p in ctx.model.parameters() if p.requires_grad)))


def flops(ctx: ProxyContext) -> ProxyResult:
    """2 * in * out summed over the Linear layers: operations per input sample."""
    ctx.linear_weights  # noqa: B018 - a clear ConfigError for a network without Linear layers
    total = sum(2 * m.in_features * m.out_features for m in ctx.model.modules() if isinstance(m, torch.nn.Linear))
    return ProxyResult(float(total))
