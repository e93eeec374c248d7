"""The built-in proxies of the T initialisations of one MLP at once (the fast path).

The T networks of an architecture are evaluated as one stacked MLP (``baddbmm`` over (T, out, in)
weight stacks, float64, the weights of ``build_network(spec, seed_t)`` replayed as
:mod:`hpsearch.scoring.batched` does for NASWOT). One forward pass records every layer; one
backward pass of the summed per-network losses gives the loss gradients of every network and
the per-sample gradients ZiCo needs (for a Linear layer dL_i/dW = delta_i a_i^T, so its mean,
mean absolute value and mean square over samples are three matrix products). The results equal
the one-network-at-a-time definitions in :mod:`.activation`, :mod:`.gradient`,
:mod:`.representation` and :mod:`.baselines` up to floating-point rounding (tested).

Example:
    >>> stack = StackedMLP.build(spec, seeds)       # None when spec is not a replayable MLP
    >>> stack.scores(["synflow", "zico"], batch, targets, seed=0)["zico"]  # T ProxyResults
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpsearch.scoring.batched import _dims, _linear_params, _n_params, _plan, _same_params, _unflatten
from hpsearch.scoring.batched import default_init_params, fill_default_init
from hpsearch.scoring.naswot import correlation_matrices, scores_from_correlations
from hpsearch.scoring.proxies._context import ProxyResult, worst
from hpsearch.scoring.proxies.activation import _SINGULAR_LOGDET
from hpsearch.scoring.proxies.representation import meco_units

if TYPE_CHECKING:
    from hpsearch.model.network import NetworkSpec

__all__ = ["STACKED", "StackedMLP"]

#: The proxies this module computes; any other is scored one network at a time.
STACKED = frozenset({"naswot", "naswot-v1", "logdet", "synflow", "snip", "grad-norm", "zico",
                     "meco", "near", "params", "flops"})
#: ZiCo: a variance below this fraction of the mean square counts as zero (exact zeros come out
#: as rounding noise of this order from E[g^2] - E[g]^2).
_ZERO_VARIANCE_RTOL = 1e-10
#: Relative size below which a singular value obtained through the Gram matrix is noise (the
#: Gram eigenvalues carry errors of ~N eps lambda_max, i.e. ~1e-7 sigma_max for N = 64).
_GRAM_NOISE = 1e-6
Layers = list[tuple[torch.Tensor, torch.Tensor]]


@dataclasses.dataclass
class StackedMLP:
    """The T initialisations of one MLP: per layer (T, out, in) weights and (T, out) biases."""

    ops: list[tuple[str, Any]]
    layers: Layers
    dims: list[int]

    @classmethod
    def build(cls, spec: NetworkSpec, seeds: Sequence[int], cache: dict[Any, Any] | None = None) -> StackedMLP | None:
        """The stack of ``spec``'s networks for ``seeds``; None if it is not a plain, replayable MLP.

        Whether the replayed weights equal a built network's is checked once per layer structure
        (``cache`` keeps the answer and the evaluation ops between calls).
        """
        from hpsearch.model.network import build_network

        key = (spec.n_in, spec.n_out, len(spec.widths), spec.hidden_activations, spec.dropout > 0)
        dims = _dims(spec)
        cache = cache if cache is not None else {}
        if key not in cache:
            net = build_network(spec, seeds[0])
            ops = _plan(net, torch.float64, torch.device("cpu"))
            same = ops is not None and _same_params(_linear_params(net), default_init_params(dims, seeds[0]))
            cache[key] = ops if same else None
        ops = cache[key]
        if ops is None:
            return None
        flat = torch.empty(len(seeds), _n_params(dims))
        for row, seed in zip(flat, seeds, strict=True):
            fill_default_init(dims, seed, row)
        return cls(ops, list(_unflatten(flat.to(torch.float64), dims)), dims)

    @property
    def n_nets(self) -> int:
        return self.layers[0][0].shape[0]

    def forward(self, x: torch.Tensor, layers: Layers | None = None) -> tuple[list[torch.Tensor], list[
            torch.Tensor], torch.Tensor]:
        """(pre-activations per hidden layer, activations per hidden layer, output), each (T, N, ...)."""
        layers = layers if layers is not None else self.layers
        hidden = x.expand(self.n_nets, *x.shape) if x.ndim == 2 else x
        pres: list[torch.Tensor] = []
        posts: list[torch.Tensor] = []
        index = 0
        for kind, module in self.ops:
            if kind == "linear":
                weight, bias = layers[index]
                hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
                index += 1
            else:
                pres.append(hidden)
                hidden = module(hidden)
                posts.append(hidden)
        return pres, posts, hidden

    def scores(self, names: Sequence[str], batch: torch.Tensor, targets: torch.Tensor | None,
               seed: int) -> dict[str, list[ProxyResult]]:
        """T results per proxy in ``names`` (all in :data:`STACKED`)."""
        out: dict[str, list[ProxyResult]] = {}
        wanted = set(names)
        if wanted & {"naswot", "naswot-v1"}:
            out.update(self._naswot(batch, wanted))
        if wanted & {"logdet", "meco", "near"}:
            with torch.no_grad():
                pres, posts, output = self.forward(batch)
            if "logdet" in wanted:
                out["logdet"] = self._logdet(pres)
            if "meco" in wanted:
                out["meco"] = self._meco(posts, seed)
            if "near" in wanted:
                out["near"] = self._near(pres, posts, output)
        if "synflow" in wanted:
            out["synflow"] = self._synflow(batch.shape[1])
        if wanted & {"snip", "grad-norm", "zico"}:
            out.update(self._loss_based(batch, targets, wanted))
        if "params" in wanted:
            out["params"] = [ProxyResult(float(sum(o * i + o for i, o in zip(self.dims, self.dims[1:]))))]
        if "flops" in wanted:
            out["flops"] = [ProxyResult(float(sum(2 * o * i for i, o in zip(self.dims, self.dims[1:]))))]
        return {name: out[name] for name in names}

    def _naswot(self, batch: torch.Tensor, wanted: set[str]) -> dict[str, list[ProxyResult]]:
        inputs = batch.expand(self.n_nets, *batch.shape).clone().requires_grad_(True)
        _, _, output = self.forward(inputs)
        (jac,) = torch.autograd.grad(output.sum(), inputs)
        corr, reasons = correlation_matrices(jac)
        per_init = scores_from_correlations(corr, reasons)
        results: dict[str, list[ProxyResult]] = {}
        if "naswot" in wanted:
            results["naswot"] = [ProxyResult(s, r) for s, r in per_init]
        if "naswot-v1" in wanted:
            results["naswot-v1"] = [ProxyResult(-s if r is None else s, r) for s, r in per_init]
        return results

    def _logdet(self, pres: list[torch.Tensor]) -> list[ProxyResult]:
        if not pres:
            return [worst("no elementwise activation module: logdet needs hidden layers with activations")] * self.n_nets
        codes = torch.cat([(p > 0) for p in pres], dim=2).to(torch.float64)
        kernel = codes @ codes.transpose(1, 2) + (1 - codes) @ (1 - codes).transpose(1, 2)
        signs, values = torch.linalg.slogdet(kernel)
        results = []
        for t, (sign, value) in enumerate(zip(signs.tolist(), values.tolist(), strict=True)):
            if sign <= 0 or value < _SINGULAR_LOGDET:
                n, n_units = codes.shape[1], codes.shape[2]
                distinct = int(torch.unique(codes[t], dim=0).shape[0])
                results.append(worst(
                    f"singular kernel K_H: {distinct} distinct binary codes among {n} samples over "
                    f"{n_units} hidden units (K_H has rank at most N_A + 1 = {n_units + 1}); use a batch "
                    "of at most N_A + 1 samples or wider layers"))
            else:
                results.append(ProxyResult(value))
        return results

    def _meco(self, posts: list[torch.Tensor], seed: int) -> list[ProxyResult]:
        if not posts:
            return [worst("no elementwise activation module: meco needs hidden layers")] * self.n_nets
        total = torch.zeros(self.n_nets, dtype=torch.float64)
        for index, post in enumerate(posts):
            units = torch.from_numpy(meco_units(post.shape[2], seed, index))
            picked = post[:, :, units]
            centred = picked - picked.mean(dim=1, keepdim=True)
            norms = torch.linalg.vector_norm(centred, dim=1, keepdim=True)
            unit = centred / norms
            corr = torch.nan_to_num(unit.transpose(1, 2) @ unit, nan=0.0, posinf=0.0, neginf=0.0)
            corr = torch.clamp(corr, -1.0, 1.0)
            total += post.shape[2] * torch.linalg.eigvalsh(corr)[:, 0]
        return [ProxyResult(v) if math.isfinite(v) else worst(f"non-finite meco ({v})") for v in total.tolist()]

    def _near(self, pres: list[torch.Tensor], posts: list[torch.Tensor], output: torch.Tensor) -> list[ProxyResult]:
        matrices = [output, *pres, *posts]
        ranks = _effective_ranks(torch.cat([m @ m.transpose(1, 2) for m in matrices]))  # one eigensolver call
        total = ranks.reshape(len(matrices), self.n_nets).sum(dim=0)
        return [ProxyResult(v) if math.isfinite(v) else worst(f"non-finite near ({v})") for v in total.tolist()]

    def _synflow(self, n_in: int) -> list[ProxyResult]:
        layers = [(w.abs().requires_grad_(True), b.abs()) for w, b in self.layers]
        ones = torch.ones((self.n_nets, 1, n_in), dtype=torch.float64)
        _, _, output = self.forward(ones, layers)
        weights = [w for w, _ in layers]
        grads = torch.autograd.grad(output.sum(), weights)
        total = sum((w * g).abs().sum(dim=(1, 2)) for w, g in zip(weights, grads, strict=True))
        return _finite_results(total.detach(), "synflow")  # type: ignore[union-attr]

    def _loss_based(self, batch: torch.Tensor, targets: torch.Tensor | None,
                    wanted: set[str]) -> dict[str, list[ProxyResult]]:
        from hpsearch.errors import ConfigError

        if targets is None:
            raise ConfigError(f"the proxies {sorted(wanted & {'snip', 'grad-norm', 'zico'})} need targets "
                              "(the batch's LDOS, scaled as training scales it): pass targets=")
        n_samples, n_out = targets.shape
        layers = [(w.clone().requires_grad_(True), b) for w, b in self.layers]
        pres_lin: list[torch.Tensor] = []  # every Linear's output, to get the per-sample deltas
        inputs: list[torch.Tensor] = []  # every Linear's input
        hidden = batch.expand(self.n_nets, *batch.shape)
        index = 0
        for kind, module in self.ops:
            if kind == "linear":
                weight, bias = layers[index]
                inputs.append(hidden)
                hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
                pres_lin.append(hidden)
                index += 1
            else:
                hidden = module(hidden)
        # sum over the T networks of each one's batch MSE; sample i's own loss is N times its share
        loss = ((hidden - targets) ** 2).mean(dim=(1, 2)).sum()
        weights = [w for w, _ in layers]
        grads = torch.autograd.grad(loss, weights + pres_lin)
        weight_grads, deltas = grads[: len(weights)], grads[len(weights):]
        results: dict[str, list[ProxyResult]] = {}
        if "snip" in wanted:
            snip = sum((w.detach() * g).abs().sum(dim=(1, 2)) for w, g in zip(weights, weight_grads, strict=True))
            results["snip"] = _finite_results(snip, "snip")  # type: ignore[arg-type]
        if "grad-norm" in wanted:
            norms = sum(torch.linalg.vector_norm(g, dim=(1, 2)) for g in weight_grads)
            results["grad-norm"] = _finite_results(norms, "grad-norm")  # type: ignore[arg-type]
        if "zico" in wanted:
            results["zico"] = self._zico([d * n_samples for d in deltas], inputs, n_samples)
        return results

    def _zico(self, deltas: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor], n: int) -> list[ProxyResult]:
        total = torch.zeros(self.n_nets, dtype=torch.float64)
        for delta, a in zip(deltas, inputs, strict=True):
            mean = delta.transpose(1, 2) @ a / n
            mean_abs = delta.abs().transpose(1, 2) @ a.abs() / n
            mean_sq = (delta ** 2).transpose(1, 2) @ (a ** 2) / n
            var = mean_sq - mean ** 2
            keep = var > _ZERO_VARIANCE_RTOL * mean_sq
            ratio = torch.where(keep, mean_abs / torch.sqrt(torch.where(keep, var, torch.ones_like(var))), 0.0)
            layer_sum = ratio.sum(dim=(1, 2))
            total += torch.where(layer_sum > 0, torch.log(torch.where(layer_sum > 0, layer_sum, 1.0)), 0.0)
        return _finite_results(total, "zico")


def _effective_ranks(grams: torch.Tensor) -> torch.Tensor:
    """Roy-Vetterli effective rank of each matrix M of a stack, given its Gram matrices M M^T
    (B, N, N); 0 for a zero matrix. The singular values are the square roots of the Gram
    eigenvalues: one batched symmetric eigensolver call instead of an SVD per layer."""
    sigma = torch.sqrt(torch.clamp(torch.linalg.eigvalsh(grams), min=0.0))
    # below _GRAM_NOISE of the largest, a singular value from the Gram matrix is rounding noise
    sigma = torch.where(sigma > _GRAM_NOISE * sigma[:, -1:], sigma, torch.zeros_like(sigma))
    totals = sigma.sum(dim=1, keepdim=True)
    p = sigma / torch.where(totals > 0, totals, torch.ones_like(totals))
    entropy = -torch.where(p > 0, p * torch.log(torch.where(p > 0, p, 1.0)), 0.0).sum(dim=1)
    return torch.where(totals[:, 0] > 0, torch.exp(entropy), torch.zeros_like(entropy))


def _finite_results(values: torch.Tensor, what: str) -> list[ProxyResult]:
    return [ProxyResult(v) if math.isfinite(v) else
            worst(f"non-finite {what} ({v}): the network's output or gradient overflowed")
            for v in np.asarray(values.detach().cpu(), dtype=np.float64).tolist()]
