"""What every proxy reads from a network: float64 copies, recorded activations, loss gradients.

A :class:`ProxyContext` holds one network, one batch (and optionally its targets) and computes
each shared quantity once, on first use: the activations recorded in one float64 forward pass
serve ``logdet``, ``meco`` and ``near``; one backward pass of the loss serves ``snip`` and
``grad-norm``. The network itself is never changed (weights, dtype, train/eval flag).

Example:
    >>> ctx = ProxyContext(net, batch, targets, seed=0)
    >>> [layer.pre.shape for layer in ctx.activations]  # (N, width) per hidden layer
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Final

import numpy as np
import torch

from hpsearch.errors import ConfigError, DataError

__all__ = ["WORST_SCORE", "LayerRecord", "ProxyContext", "ProxyResult", "as_batch", "worst"]

#: The score of a degenerate network, for every proxy (all of them are maximised); finite, so
#: means and ranks over many networks never turn into NaN. The same value as NASWOT's.
WORST_SCORE: Final[float] = -1.0e30


@dataclasses.dataclass(frozen=True)
class ProxyResult:
    """One proxy's score of one network (higher = predicted better), or the worst with a reason."""

    score: float
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when the score is a real score, not the degenerate worst value."""
        return self.reason is None


def worst(reason: str) -> ProxyResult:
    """The degenerate result: :data:`WORST_SCORE` and why."""
    return ProxyResult(WORST_SCORE, reason)


@dataclasses.dataclass(frozen=True)
class LayerRecord:
    """One elementwise activation module seen in the forward pass: its input and output (N, width)."""

    name: str
    pre: torch.Tensor
    post: torch.Tensor


def as_batch(values: torch.Tensor | np.ndarray, what: str, n_rows: int | None = None) -> torch.Tensor:
    """``values`` as a finite float64 (N, features) tensor; DataError naming ``what`` otherwise."""
    tensor = torch.as_tensor(values)
    if tensor.ndim != 2:
        raise DataError(f"the proxy {what} must be 2-D (samples, features), got shape {tuple(tensor.shape)}")
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
        raise DataError(f"the proxy {what} must hold real numbers, got dtype {tensor.dtype}")
    if n_rows is not None and tensor.shape[0] != n_rows:
        raise DataError(f"the proxy {what} has {tensor.shape[0]} rows but the batch has {n_rows}: "
                        "give one target row (LDOS vector) per descriptor row")
    if tensor.shape[0] < 2:
        raise ConfigError(f"the proxy {what} needs at least 2 samples, got {tensor.shape[0]}")
    tensor = tensor.to(torch.float64)
    if not bool(torch.isfinite(tensor).all()):
        raise DataError(f"the proxy {what} holds {int((~torch.isfinite(tensor)).sum())} non-finite values")
    return tensor


def _activation_types() -> tuple[type[torch.nn.Module], ...]:
    from hpsearch.model.network import ACTIVATIONS

    return tuple(ACTIVATIONS.values())


class ProxyContext:
    """One network and one batch; shared float64 quantities computed lazily, once.

    ``batch`` holds scaled descriptors (N, n_in); ``targets`` the matching scaled LDOS (N, n_out)
    for the proxies that use a loss; ``seed`` feeds the proxies that sample (``meco``).
    """

    def __init__(self, model: torch.nn.Module, batch: torch.Tensor | np.ndarray,
                 targets: torch.Tensor | np.ndarray | None = None, seed: int = 0) -> None:
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"proxies score a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        self.model = model
        self.batch = as_batch(batch, "batch")
        self.targets = None if targets is None else as_batch(targets, "targets", self.batch.shape[0])
        self.seed = int(seed)
        first = next(iter(model.parameters()), None)
        self.device = first.device if first is not None else self.batch.device

    @functools.cached_property
    def params(self) -> dict[str, torch.Tensor]:
        """float64 copies of every parameter (detached, on the model's device)."""
        return {n: p.detach().to(self.device, torch.float64) for n, p in self.model.named_parameters()}

    @functools.cached_property
    def buffers(self) -> dict[str, torch.Tensor]:
        return {n: b.to(self.device, torch.float64) if b.is_floating_point() else b.to(self.device)
                for n, b in self.model.named_buffers()}

    @functools.cached_property
    def linear_weights(self) -> list[str]:
        """Names of the weight matrices of every ``nn.Linear`` (biases excluded), in order."""
        names = [f"{prefix}.weight" if prefix else "weight"
                 for prefix, module in self.model.named_modules() if isinstance(module, torch.nn.Linear)]
        if not names:
            raise ConfigError(f"{type(self.model).__name__} has no torch.nn.Linear layer: the weight-based "
                              "proxies (synflow, snip, grad-norm, zico, flops) need one")
        return names

    def call(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The network evaluated with ``params`` (float64) in eval mode; DataError if it cannot run."""
        was_training = self.model.training
        self.model.eval()
        try:
            return torch.func.functional_call(self.model, (params, self.buffers), (x.to(self.device),))
        except RuntimeError as exc:
            raise DataError(f"the network could not evaluate a batch of shape {tuple(x.shape)}: {exc}") from exc
        finally:
            self.model.train(was_training)

    @functools.cached_property
    def recorded(self) -> tuple[list[LayerRecord], torch.Tensor]:
        """(every elementwise activation's input and output, the network output), one forward pass."""
        types = _activation_types()
        records: list[LayerRecord] = []
        handles = []

        def hook(name: str) -> Any:
            def record(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
                records.append(LayerRecord(name, inputs[0].detach(), output.detach()))
            return record

        for name, module in self.model.named_modules():
            if isinstance(module, types):
                handles.append(module.register_forward_hook(hook(name)))
        try:
            with torch.no_grad():
                out = self.call(self.params, self.batch)
        finally:
            for handle in handles:
                handle.remove()
        return records, out.detach()

    @property
    def activations(self) -> list[LayerRecord]:
        return self.recorded[0]

    def require_targets(self, proxy: str) -> torch.Tensor:
        if self.targets is None:
            raise ConfigError(f"the proxy {proxy!r} needs targets (the batch's LDOS, scaled as training "
                              "scales it): pass targets=")
        return self.targets

    def loss(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss: mean squared error in the scaled space (what training minimises)."""
        out = self.call(params, x)
        if out.shape != y.shape:
            raise DataError(f"the network outputs shape {tuple(out.shape)} but the targets have "
                            f"{tuple(y.shape)}: give the LDOS of the batch's points")
        return torch.nn.functional.mse_loss(out, y.to(out.device))

    @functools.cached_property
    def loss_gradients(self) -> list[torch.Tensor]:
        """dL/dW for every Linear weight (float64), L the batch's MSE against the targets."""
        targets = self.require_targets("snip/grad-norm")
        params = dict(self.params)
        for name in self.linear_weights:
            params[name] = params[name].clone().requires_grad_(True)
        loss = self.loss(params, self.batch, targets)
        return list(torch.autograd.grad(loss, [params[n] for n in self.linear_weights], allow_unused=True,
                                        materialize_grads=True))
