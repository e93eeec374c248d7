"""Proxies from the gradients of a network at initialisation, after Abdelfattah et al.,
"Zero-Cost Proxies for Lightweight NAS", ICLR 2021, and Li et al., ICLR 2023.

All sums run over the weight matrices W of every ``nn.Linear`` (biases excluded), in float64.
L is the training loss: the mean squared error between the network's output on the batch and
the targets, the batch's LDOS scaled as training scales it. Every sign follows its paper, where
a larger value predicts a better network.

- ``synflow`` (Tanaka et al., NeurIPS 2020, as in Abdelfattah et al.): every parameter replaced by
  its absolute value (weights and biases, as Abdelfattah et al.'s ``linearize`` does), input one
  row of ones, R = sum of the output; score = sum_W sum |W * dR/dW|.
- ``snip`` (Lee et al., ICLR 2019, as in Abdelfattah et al.): score = sum_W sum |W * dL/dW|.
- ``grad-norm`` (Abdelfattah et al.): score = sum_W ||dL/dW||_F.
- ``zico`` (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
  ICLR 2023, eq. 9): score = sum_W log( sum_theta mean_i |g_i(theta)| / std_i g_i(theta) ), g_i the
  gradient of sample i's loss (per-sample gradients: every sample of the batch is one draw; std
  with ddof 0; entries with std = 0 are left out, as in the authors' code; a layer whose sum is 0
  adds nothing).
"""

from __future__ import annotations

import math

import torch

from hpsearch.scoring.proxies._context import ProxyContext, ProxyResult, worst

__all__ = ["grad_norm", "snip", "synflow", "zico"]


def _finite(value: float, what: str) -> ProxyResult:
    if not math.isfinite(value):
        return worst(f"non-finite {what} ({value}): the network's output or gradient overflowed")
    return ProxyResult(value)


def synflow(ctx: ProxyContext) -> ProxyResult:
    """Synaptic flow of the |parameters| network on one all-ones input row (float64)."""
    params = {name: value.abs() for name, value in ctx.params.items()}
    for name in ctx.linear_weights:
        params[name] = params[name].clone().requires_grad_(True)
    ones = torch.ones((1, ctx.batch.shape[1]), dtype=torch.float64, device=ctx.device)
    out = ctx.call(params, ones)
    weights = [params[n] for n in ctx.linear_weights]
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True, materialize_grads=True)
    total = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=True))
    return _finite(total, "synflow")


def snip(ctx: ProxyContext) -> ProxyResult:
    """Connection sensitivity |W * dL/dW| summed over the Linear weights."""
    grads = ctx.loss_gradients
    total = sum(float((ctx.params[n] * g).abs().sum()) for n, g in zip(ctx.linear_weights, grads, strict=True))
    return _finite(total, "snip")


def grad_norm(ctx: ProxyContext) -> ProxyResult:
    """Sum of the Frobenius norms of dL/dW over the Linear weights."""
    total = sum(float(torch.linalg.vector_norm(g)) for g in ctx.loss_gradients)
    return _finite(total, "grad-norm")


def per_sample_gradients(ctx: ProxyContext) -> list[torch.Tensor]:
    """dL_i/dW of every sample i for every Linear weight: one (N, out, in) tensor per layer."""
    targets = ctx.require_targets("zico")
    names = ctx.linear_weights
    rest = {n: v for n, v in ctx.params.items() if n not in names}

    def sample_loss(weights: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ctx.loss({**rest, **weights}, x[None], y[None])

    weights = {n: ctx.params[n] for n in names}
    was_training = ctx.model.training
    try:
        grads = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))(
            weights, ctx.batch.to(ctx.device), targets.to(ctx.device))
    finally:
        ctx.model.train(was_training)
    return [grads[n] for n in names]


def zico(ctx: ProxyContext) -> ProxyResult:
    """ZiCo: sum over layers of log(sum of |mean gradient| / gradient std across samples)."""
    total = 0.0
    for grads in per_sample_gradients(ctx):
        std = grads.std(dim=0, correction=0)
        mean_abs = grads.abs().mean(dim=0)
        keep = std > 0
        layer_sum = float((mean_abs[keep] / std[keep]).sum())
        if layer_sum > 0:
            total += math.log(layer_sum)
    return _finite(total, "zico")
