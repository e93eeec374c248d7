"""Every chosen proxy of many architectures over T initialisations each.

The T initial weights are those of ``build_network(spec, seed_t)`` with the seeds of
:func:`hpsearch.scoring.init_seeds` (the same for every architecture: common random numbers, as
for NASWOT). The T scores of a proxy combine as its :attr:`Proxy.aggregate` says (``mean+std``:
the paper's eq. 14; ``mean``); any degenerate initialisation makes the architecture's score the
worst, with that reason. Proxies that do not depend on the weights (``params``, ``flops``) are
computed once.

Example:
    >>> scores = score_architectures_proxies(specs, batch, targets, n_init=5, seed=0)
    >>> scores[0].scores["synflow"], scores[0].reasons.get("logdet")
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpsearch.scoring.naswot import init_seeds, mean_score
from hpsearch.scoring.proxies._context import WORST_SCORE, ProxyContext, ProxyResult, as_batch
from hpsearch.scoring.proxies._registry import PROXIES, Proxy, run_proxy
from hpsearch.scoring.proxies.stacked import STACKED, StackedMLP

if TYPE_CHECKING:
    from hpsearch.model.network import NetworkSpec

__all__ = ["ArchitectureProxyScores", "aggregate", "score_architectures_proxies"]


@dataclasses.dataclass(frozen=True)
class ArchitectureProxyScores:
    """One architecture's aggregated score per proxy, the per-initialisation scores, and the
    reason of every degenerate proxy."""

    scores: dict[str, float]
    per_init: dict[str, tuple[float, ...]]
    reasons: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def aggregate(proxy: Proxy, results: Sequence[ProxyResult], seeds: Sequence[int]) -> tuple[float, str | None]:
    """The architecture's score from its per-initialisation results, or the worst with a reason."""
    for result, seed in zip(results, seeds, strict=False):
        if not result.ok:
            return WORST_SCORE, f"initialisation seed {seed}: {result.reason}"
    values = [r.score for r in results]
    if proxy.aggregate == "mean+std":
        return mean_score(values), None
    return float(np.mean(values)), None


def _check_batch(names: Sequence[str], batch: torch.Tensor, targets: torch.Tensor | None,
                 specs: Sequence[NetworkSpec]) -> tuple[torch.Tensor, torch.Tensor | None]:
    from hpsearch.errors import ConfigError
    from hpsearch.scoring.naswot import validate_batch

    n_ins = {spec.n_in for spec in specs}
    if len(n_ins) > 1:
        raise ConfigError(f"all specs of one call must share n_in (the batch), got n_in values {sorted(n_ins)}")
    n_in = n_ins.pop() if n_ins else None
    x = validate_batch(batch, n_in) if {"naswot", "naswot-v1"} & set(names) else as_batch(batch, "batch")
    if n_in is not None and x.shape[1] != n_in:
        raise ConfigError(f"the batch has {x.shape[1]} features but the networks expect n_in={n_in}")
    y = None if targets is None else as_batch(targets, "targets", x.shape[0])
    needing = [n for n in names if PROXIES[n].needs_targets]
    if needing and y is None:
        raise ConfigError(f"the proxies {needing} need targets (the batch's LDOS, scaled as training "
                          "scales it): pass targets= or leave them out of the names")
    return x, y


def score_architectures_proxies(
    specs: Sequence[NetworkSpec], batch: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray | None = None,
    names: Sequence[str] | None = None, n_init: int = 5, seed: int = 0,
    seconds: dict[str, float] | None = None, progress: Callable[[int, int], None] | None = None,
    fast: bool = True,
) -> list[ArchitectureProxyScores]:
    """Score every spec with every proxy in ``names`` (default: all registered) over ``n_init``
    initialisations, on the CPU in float64.

    Built-in proxies of plain MLPs go through :class:`StackedMLP` (all T initialisations at once;
    ``fast=False`` forces one network at a time, the reference); plug-ins and other networks are
    scored one network at a time. ``seconds``, when given, accumulates the time per proxy (the
    stacked path times its groups: ``naswot`` holds both NASWOT signs, ``forward`` the pass shared
    by logdet/meco/near, ``loss-gradients`` the pass shared by snip/grad-norm/zico; ``build``: drawing
    the weights). ``progress(done, total)`` is called after each architecture.
    """
    chosen = list(names) if names is not None else list(PROXIES)
    canonical = {name: PROXIES.canonical(name) for name in chosen}  # naswot-paper is scored as naswot
    computed = list(dict.fromkeys(canonical.values()))
    x, y = _check_batch(computed, torch.as_tensor(batch), None if targets is None else torch.as_tensor(targets),
                        specs)
    seeds = init_seeds(seed, n_init)
    timer = seconds if seconds is not None else {}
    cache: dict[Any, Any] = {}
    out: list[ArchitectureProxyScores] = []
    for index, spec in enumerate(specs):
        per_proxy = _score_one(spec, computed, x, y, seeds, seed, timer, cache, fast)
        scores: dict[str, float] = {}
        reasons: dict[str, str] = {}
        for name in chosen:
            value, reason = aggregate(PROXIES[name], per_proxy[canonical[name]], seeds)
            scores[name] = value
            if reason is not None:
                reasons[name] = reason
        out.append(ArchitectureProxyScores(
            scores, {name: tuple(r.score for r in per_proxy[canonical[name]]) for name in chosen}, reasons))
        if progress is not None:
            progress(index + 1, len(specs))
    return out


def _timed(timer: dict[str, float], key: str, start: float) -> float:
    now = time.perf_counter()
    timer[key] = timer.get(key, 0.0) + now - start
    return now


def _score_one(spec: NetworkSpec, names: Sequence[str], x: torch.Tensor, y: torch.Tensor | None,
               seeds: Sequence[int], seed: int, timer: dict[str, float], cache: dict[Any, Any],
               fast: bool) -> dict[str, list[ProxyResult]]:
    from hpsearch.model.network import build_network

    fast_names = [n for n in names if fast and n in STACKED]
    results: dict[str, list[ProxyResult]] = {}
    start = time.perf_counter()
    stack = StackedMLP.build(spec, seeds, cache) if fast_names else None
    start = _timed(timer, "build", start)
    if stack is not None:
        for group in _GROUPS:
            members = [n for n in fast_names if n in group[1]]
            if members:
                results.update(stack.scores(members, x, y, seed))
                start = _timed(timer, group[0], start)
    slow = [n for n in names if n not in results]
    if not slow:
        return results
    for t, init_seed in enumerate(seeds):
        start = time.perf_counter()
        ctx = ProxyContext(build_network(spec, init_seed), x, y, seed)
        start = _timed(timer, "build", start)
        for name in slow:
            proxy = PROXIES[name]
            if t == 0 or proxy.per_init:
                results.setdefault(name, []).append(run_proxy(proxy, ctx))
                start = _timed(timer, name, start)
    return results


#: Timing groups of the stacked path: proxies that share one pass are timed together.
_GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("naswot", frozenset({"naswot", "naswot-v1"})),
    ("forward (logdet, meco, near)", frozenset({"logdet", "meco", "near"})),
    ("synflow", frozenset({"synflow"})),
    ("loss-gradients (snip, grad-norm, zico)", frozenset({"snip", "grad-norm", "zico"})),
    ("params, flops", frozenset({"params", "flops"})),
)
