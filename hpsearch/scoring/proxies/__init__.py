"""A zoo of training-free scores ("zero-cost proxies") of a network at initialisation.

Every proxy is maximised: a higher score predicts a lower trained error (each module says how
its sign follows its paper). Degenerate networks get :data:`WORST_SCORE` with a reason, never
an exception or a NaN. Built-ins: ``naswot``, ``naswot-v1``, ``logdet`` (:mod:`.activation`),
``synflow``, ``snip``, ``grad-norm``, ``zico`` (:mod:`.gradient`), ``meco``, ``near``
(:mod:`.representation`), ``params``, ``flops`` (:mod:`.baselines`); plug-ins come from the
entry-point group ``hpsearch.proxies``. ``naswot-paper`` is another name of ``naswot`` (the paper's
sign); :data:`DEFAULT_PROXY` is what the NASWOT strategies rank with unless told otherwise.

Example:
    >>> net = build_network(NetworkSpec(n_in=91, n_out=64, widths=(64, 32)), seed=0)
    >>> proxy_score("synflow", net, batch)            # batch: (N, 91) scaled descriptors
    >>> proxy_score("snip", net, batch, targets=ldos)  # targets: (N, 64) scaled LDOS
    >>> score_proxies(net, batch, ldos, names=["naswot", "zico", "params"])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from hpsearch.scoring.proxies._context import WORST_SCORE, ProxyContext, ProxyResult
from hpsearch.scoring.proxies._registry import (
    ALIASES,
    DEFAULT_PROXY,
    ENTRY_POINT_GROUP,
    PROXIES,
    Proxy,
    ProxyRegistry,
    proxy_sign,
    run_proxy,
)

__all__ = [
    "ALIASES",
    "DEFAULT_PROXY",
    "ENTRY_POINT_GROUP",
    "PROXIES",
    "WORST_SCORE",
    "Proxy",
    "ProxyContext",
    "ProxyRegistry",
    "ProxyResult",
    "proxy_result",
    "proxy_score",
    "proxy_sign",
    "score_proxies",
]

log = logging.getLogger(__name__)
Array = torch.Tensor | np.ndarray


def proxy_result(name: str, model: torch.nn.Module, batch: Array, targets: Array | None = None,
                 seed: int = 0) -> ProxyResult:
    """The proxy ``name`` of ``model`` on ``batch`` with the reason when it is degenerate."""
    proxy = PROXIES[name]
    return run_proxy(proxy, ProxyContext(model, batch, targets, seed))


def proxy_score(name: str, model: torch.nn.Module, batch: Array, targets: Array | None = None,
                seed: int = 0) -> float:
    """The proxy ``name`` of ``model`` on ``batch`` (higher = predicted better).

    ``batch``: scaled descriptors (N, n_in); ``targets``: the batch's scaled LDOS (N, n_out), needed
    by ``snip``, ``grad-norm`` and ``zico``; ``seed``: for proxies that sample (``meco``). A
    degenerate network scores :data:`WORST_SCORE` (the reason is logged as a warning).
    """
    result = proxy_result(name, model, batch, targets, seed)
    if not result.ok:
        log.warning("proxy %s is the worst value %g: %s", name, WORST_SCORE, result.reason)
    return result.score


def score_proxies(model: torch.nn.Module, batch: Array, targets: Array | None = None,
                  names: Sequence[str] | None = None, seed: int = 0) -> dict[str, ProxyResult]:
    """Several proxies of one network, sharing their forward and backward passes.

    ``names`` defaults to every registered proxy; proxies that need targets are skipped (with an
    info message) when none are given and ``names`` is not explicit.
    """
    chosen = list(names) if names is not None else list(PROXIES)
    ctx = ProxyContext(model, batch, targets, seed)
    results: dict[str, ProxyResult] = {}
    for name in chosen:
        proxy = PROXIES[name]
        if proxy.needs_targets and targets is None and names is None:
            log.info("skipping proxy %s: it needs targets", name)
            continue
        results[name] = run_proxy(proxy, ctx)
    return results
