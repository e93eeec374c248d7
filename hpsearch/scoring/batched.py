"""Fast NASWOT scoring of many architectures: the T initialisations of one architecture stacked.

For each architecture the T networks are evaluated together as one stacked MLP (``baddbmm`` over
a (T, out, in) weight stack) with a single forward and backward pass in float64 on the batch,
which is moved to the device once. The T initial weights are drawn into one flat buffer that
reaches a GPU in one copy. The correlation matrices of a group of architectures go through one
batched symmetric eigensolver call, on the host by default (faster there for these small
matrices, also when the networks run on a GPU). The scores equal :func:`naswot_mean_score`
(one network at a time) to floating-point rounding: the initial weights are the same, because they either come from
``build_network(spec, seed)`` or replay its random-number sequence (verified against a built
network once per layer structure, with a fall-back to building each network).

Example:
    >>> specs = [NetworkSpec(n_in=91, n_out=11, widths=(w,) * d) for w in (32, 64) for d in (1, 2)]
    >>> results = score_architectures(specs, batch, n_init=5, seed=0)
    >>> best = max(zip(results, specs), key=lambda rs: rs[0].score)[1]
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpsearch.errors import ConfigError
from hpsearch.scoring.naswot import (
    WORST_SCORE,
    BuildFn,
    Convention,
    NaswotResult,
    check_options,
    default_build_fn,
    combine_scores,
    correlation_matrices,
    init_seeds,
    naswot_jacobian,
    scores_from_correlations,
    validate_batch,
)

if TYPE_CHECKING:
    from hpsearch.model.network import NetworkSpec

__all__ = ["default_init_params", "score_architectures", "score_architectures_parallel", "score_chunk",
           "stacked_jacobians"]

log = logging.getLogger(__name__)

#: Architectures whose correlation matrices share one eigensolver call.
_EIG_GROUP = 32
_Op = tuple[str, Any]  # ("linear", None) or ("act", module)
_Params = list[tuple[torch.Tensor, torch.Tensor]]


def _structure_key(spec: NetworkSpec) -> tuple[Any, ...]:
    """Specs with the same key build the same sequence of modules (widths aside)."""
    return (spec.n_in, spec.n_out, len(spec.widths), spec.hidden_activations, spec.dropout > 0)


def _elementwise_types() -> tuple[type[torch.nn.Module], ...]:
    from hpsearch.model.network import ACTIVATIONS

    return tuple(ACTIVATIONS.values())


def _plan(net: torch.nn.Module, dtype: torch.dtype, device: torch.device) -> list[_Op] | None:
    """The ops of an nn.Sequential MLP for stacked evaluation; None if it is not one."""
    if not isinstance(net, torch.nn.Sequential):
        return None
    elementwise = _elementwise_types()
    ops: list[_Op] = []
    for module in net:
        if isinstance(module, torch.nn.Linear):
            ops.append(("linear", None))
        elif isinstance(module, (torch.nn.Dropout, torch.nn.Identity)):
            continue  # the identity in eval mode
        elif isinstance(module, elementwise):
            ops.append(("act", copy.deepcopy(module).to(device=device, dtype=dtype).eval()))
        else:
            return None
    return ops


def _linear_params(net: torch.nn.Module) -> _Params:
    return [(m.weight.detach(), m.bias.detach()) for m in net.modules() if isinstance(m, torch.nn.Linear)]


def _dims(spec: NetworkSpec) -> list[int]:
    return [spec.n_in, *spec.widths, spec.n_out]


def _layer_shapes(dims: Sequence[int]) -> list[tuple[int, int]]:
    return [(fan_out, fan_in) for fan_in, fan_out in zip(dims[:-1], dims[1:])]


def _n_params(dims: Sequence[int]) -> int:
    return sum(fan_out * fan_in + fan_out for fan_out, fan_in in _layer_shapes(dims))


def fill_default_init(dims: Sequence[int], seed: int, out: torch.Tensor) -> None:
    """Write the weights of :func:`default_init_params` into the flat float32 ``out`` (n_params,):
    per layer the weight (row-major) then the bias, in the order torch draws them."""
    generator = torch.Generator().manual_seed(int(seed))
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))  # torch.nn.init.calculate_gain("leaky_relu", a)
    offset = 0
    for fan_out, fan_in in _layer_shapes(dims):
        weight_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))  # as kaiming_uniform_
        out[offset : offset + fan_out * fan_in].uniform_(-weight_bound, weight_bound, generator=generator)
        offset += fan_out * fan_in
        bias_bound = 1.0 / math.sqrt(fan_in)
        out[offset : offset + fan_out].uniform_(-bias_bound, bias_bound, generator=generator)
        offset += fan_out


def _unflatten(flat: torch.Tensor, dims: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Views (weight (..., out, in), bias (..., out)) per layer of flat parameters (..., n_params)."""
    views, offset = [], 0
    for fan_out, fan_in in _layer_shapes(dims):
        weight = flat[..., offset : offset + fan_out * fan_in].unflatten(-1, (fan_out, fan_in))
        offset += fan_out * fan_in
        views.append((weight, flat[..., offset : offset + fan_out]))
        offset += fan_out
    return views


def default_init_params(dims: Sequence[int], seed: int) -> _Params:
    """The weights ``torch.nn.Linear`` layers of ``dims`` get after ``torch.manual_seed(seed)``.

    Replays torch's default initialisation (Kaiming-uniform weight, uniform bias, layer by layer)
    on a private generator, without building modules or touching the global RNG.
    """
    flat = torch.empty(_n_params(dims))
    fill_default_init(dims, seed, flat)
    return _unflatten(flat, dims)


def _same_params(a: _Params, b: _Params) -> bool:
    return len(a) == len(b) and all(
        wa.shape == wb.shape and torch.equal(wa, wb) and torch.equal(ba, bb)
        for (wa, ba), (wb, bb) in zip(a, b)
    )


def _stacks_from_params(params: Sequence[_Params], x: torch.Tensor) -> _Params:
    """Per layer the (T, out, in) weight and (T, out) bias stacks of T networks, on x's device."""
    return [
        (torch.stack([p[i][0] for p in params]).to(x), torch.stack([p[i][1] for p in params]).to(x))
        for i in range(len(params[0]))
    ]


def _jacobians(ops: Sequence[_Op], stacks: _Params, x: torch.Tensor) -> torch.Tensor:
    """J of T networks of one structure from their stacked weights: (T, N, n_in)."""
    n_nets = stacks[0][0].shape[0]
    inputs = x.expand(n_nets, *x.shape).clone().requires_grad_(True)
    hidden, layer = inputs, 0
    for kind, module in ops:
        if kind == "linear":
            weight, bias = stacks[layer]
            hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
            layer += 1
        else:
            hidden = module(hidden)
    (grad,) = torch.autograd.grad(hidden.sum(), inputs)
    return grad


def stacked_jacobians(
    ops: Sequence[_Op], params: Sequence[_Params], x: torch.Tensor
) -> torch.Tensor:
    """J of T networks of one structure in one pass: (T, N, n_in), on x's device and dtype."""
    return _jacobians(ops, _stacks_from_params(params, x), x)


class _Scorer:
    """Per-call state: per layer structure, whether weights replay and the evaluation ops."""

    def __init__(self, x: torch.Tensor, seeds: tuple[int, ...], build: BuildFn, dtype: torch.dtype) -> None:
        self.x = x
        self.seeds = seeds
        self.build = build
        self.dtype = dtype
        self.x_eval = x.to(dtype)  # the batch in the dtype the networks are evaluated in
        self.replayable: dict[tuple[Any, ...], bool] = {}
        self.ops: dict[tuple[Any, ...], list[_Op]] = {}

    def _replayable(self, spec: NetworkSpec) -> tuple[Any, ...]:
        """The structure key of ``spec``; whether torch's default init of that structure can be
        replayed is checked once per structure, against a network built from its first spec."""
        key = _structure_key(spec)
        if key in self.replayable:
            return key
        template = self.build(spec, self.seeds[0])
        ops = _plan(template, self.dtype, self.x.device)
        first = _linear_params(template)
        self.replayable[key] = ops is not None and _same_params(
            first, default_init_params(_dims(spec), self.seeds[0])
        )
        if self.replayable[key]:
            self.ops[key] = ops  # type: ignore[assignment]
        else:
            log.info("networks of structure %s cannot be replayed: building each one", key)
        return key

    def _replayed_stacks(self, spec: NetworkSpec) -> _Params:
        """The T initial weights of ``spec`` drawn into one flat (T, n_params) buffer (pinned when
        the batch is on a GPU), moved in one copy and cast there; per layer (W, b) stacks."""
        dims = _dims(spec)
        pin = self.x.device.type == "cuda"
        flat = torch.empty(len(self.seeds), _n_params(dims), pin_memory=pin)
        for row, seed in zip(flat, self.seeds):
            fill_default_init(dims, seed, row)
        flat = flat.to(self.x.device, non_blocking=pin).to(self.dtype)
        return _unflatten(flat, dims)

    def jacobians(self, spec: NetworkSpec) -> torch.Tensor:
        """(T, N, n_in) float64 Jacobians of the T initialisations of ``spec``."""
        key = self._replayable(spec)
        x = self.x_eval
        if self.replayable[key]:
            return _jacobians(self.ops[key], self._replayed_stacks(spec), x).to(torch.float64)
        nets = [self.build(spec, s) for s in self.seeds]
        ops = _plan(nets[0], self.dtype, self.x.device)
        if ops is None:  # not a plain MLP: one network at a time
            jacs = [naswot_jacobian(net, self.x) for net in nets]
            return torch.stack([j if j is not None else torch.zeros_like(self.x) for j in jacs])
        return stacked_jacobians(ops, [_linear_params(n) for n in nets], x).to(torch.float64)


def _as_device(value: str | torch.device, what: str) -> torch.device:
    """``value`` as a torch device that is there; ConfigError saying what to use otherwise."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"{what}={value!r} is not a device: use 'cpu', 'cuda' or 'cuda:N'") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{what}={value!r}, but no CUDA device is visible to this process: use 'cpu'")
    return device


def _resolve_device(batch: torch.Tensor | np.ndarray, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return _as_device(device, "device")
    return batch.device if isinstance(batch, torch.Tensor) else torch.device("cpu")


def score_chunk(
    specs: Sequence[NetworkSpec], batch: torch.Tensor | np.ndarray, n_init: int = 5, seed: int = 0,
    k: float = 1e-4, convention: Convention = "paper", *, device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64, build_fn: BuildFn | None = None,
    eig_device: str | torch.device | None = None, on_done: Callable[[int], None] | None = None,
) -> list[NaswotResult]:
    """The fast path of :func:`score_architectures` (also what each Ray task runs)."""
    check_options(k, convention)
    if dtype not in (torch.float64, torch.float32):
        raise ConfigError(f"dtype={dtype} is not supported: use torch.float64 (exact) or torch.float32")
    seeds = init_seeds(seed, n_init)
    n_ins = {spec.n_in for spec in specs}
    if len(n_ins) > 1:
        raise ConfigError(f"all specs of one call must share n_in (the batch), got n_in values {sorted(n_ins)}")
    x = validate_batch(batch, n_ins.pop() if n_ins else None).to(_resolve_device(batch, device))
    if not bool(torch.isfinite(x).all()):
        reason = f"the batch holds {int((~torch.isfinite(x)).sum())} non-finite values"
        worst = (WORST_SCORE,) * n_init
        return [NaswotResult(WORST_SCORE, worst, reason, seeds, convention, k) for _ in specs]
    scorer = _Scorer(x, seeds, build_fn or default_build_fn(), dtype)
    # by default on the host, also for a batch on a GPU: batched symmetric eigensolvers for these
    # small (N x N, N <= n_in) matrices are faster there (750 of 64 x 64 on an H200 machine: CUDA
    # 235 ms, one CPU thread 93 ms, 114 ms with the copy to the host)
    eig_dev = _as_device(eig_device if eig_device is not None else "cpu", "eig_device")
    results: list[NaswotResult] = []
    for start in range(0, len(specs), _EIG_GROUP):
        group = specs[start : start + _EIG_GROUP]
        # the group's Jacobians in one stack: one device-to-host transfer of its flags, not one
        # per architecture, so a GPU runs ahead of the Python loop
        corr, reasons = correlation_matrices(torch.cat([scorer.jacobians(spec) for spec in group]))
        per_init = scores_from_correlations(corr.to(eig_dev), reasons, k, convention)
        for i in range(len(group)):
            results.append(combine_scores(per_init[i * n_init : (i + 1) * n_init], seeds, k, convention))
        if on_done is not None:
            on_done(len(group))
    return results


def score_architectures(
    specs: Sequence[NetworkSpec], batch: torch.Tensor | np.ndarray, n_init: int = 5, seed: int = 0,
    k: float = 1e-4, convention: Convention = "paper", *, device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64, progress: bool = True, build_fn: BuildFn | None = None,
    eig_device: str | torch.device | None = None,
) -> list[NaswotResult]:
    """NASWOT mean scores (eq. 14) of many architectures, in the order of ``specs``, in this process.

    The same ``n_init`` seeds (derived from ``seed``) initialise every architecture. ``dtype``:
    float64 (default) evaluates the networks exactly like :func:`naswot_mean_score`; float32 is
    faster for wide networks on a CPU (C and its eigenvalues stay float64). ``eig_device``: where
    the correlation matrices are decomposed (default: the CPU, also for a batch on a GPU, where it
    is slower for them). :func:`score_architectures_parallel` computes the same over Ray tasks.
    """
    from hpsearch.parallel import progress_bar

    specs = list(specs)
    if not specs:
        return []
    options = _checked_options(n_init, seed, k, convention, device, dtype, build_fn, eig_device)
    with progress_bar(len(specs), progress, "NASWOT scoring") as advance:
        return score_chunk(specs, batch, on_done=advance, **options)


def score_architectures_parallel(
    specs: Sequence[NetworkSpec], batch: torch.Tensor | np.ndarray, n_init: int = 5, seed: int = 0,
    k: float = 1e-4, convention: Convention = "paper", *, device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64, progress: bool = True, address: str | None = None,
    n_chunks: int | None = None, build_fn: BuildFn | None = None, eig_device: str | torch.device | None = None,
) -> list[NaswotResult]:
    """:func:`score_architectures` split into ``n_chunks`` Ray tasks of one CPU each.

    Joins the running Ray (or starts one at ``address``, default local, and leaves it running);
    ``n_chunks`` defaults to 4 per free CPU. The batch goes into the object store once; each task
    scores its chunk with the same seeds, so results equal the serial path's up to
    floating-point summation order, however the specs were split.
    """
    from hpsearch import parallel

    specs = list(specs)
    if not specs:
        return []
    options = _checked_options(n_init, seed, k, convention, device, dtype, build_fn, eig_device)
    parallel.ensure_ray(address)
    cpus = max(1, int(parallel.free_cpus() or 1))
    chunks = parallel.split_evenly(specs, n_chunks or 4 * cpus)
    array = batch.detach().cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
    log.info("scoring %d architectures in %d Ray tasks", len(specs), len(chunks))
    with parallel.progress_bar(len(specs), progress, "NASWOT scoring (Ray)") as advance:
        per_chunk = parallel.map_chunks(_score_task, chunks, (array, options),
                                        on_chunk=lambda i, _: advance(len(chunks[i])))
    return [result for results in per_chunk for result in results]


def _checked_options(
    n_init: int, seed: int, k: float, convention: Convention, device: str | torch.device | None,
    dtype: torch.dtype, build_fn: BuildFn | None, eig_device: str | torch.device | None,
) -> dict[str, Any]:
    """The options of :func:`score_chunk`, the devices checked before any work starts."""
    for value, what in ((device, "device"), (eig_device, "eig_device")):
        if value is not None:
            _as_device(value, what)
    return dict(n_init=n_init, seed=seed, k=k, convention=convention, device=device,
                dtype=dtype, build_fn=build_fn, eig_device=eig_device)


def _score_task(specs: list[NetworkSpec], shared: tuple[np.ndarray, dict[str, Any]]) -> list[NaswotResult]:
    """One Ray task of :func:`score_architectures_parallel`: the serial path on its chunk."""
    batch, options = shared
    return score_chunk(specs, np.array(batch), **options)
