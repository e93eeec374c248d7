"""The NASWOT trial kinds: chunked scoring of candidate architectures (the NASWOT strategies'
``_kind: "score"``), and the score reported before training (the naswot-pruner's wrapper).

A score trial scores every architecture of ``_candidates`` in one trial (one Ray trial per chunk
of candidates, not per candidate: Ray's per-trial overhead is ~0.25 s even with reused actors)
and reports the scores in order as JSON text, with each candidate's size and shape
(``candidate_networks``, for the guard rails of :mod:`hpsearch.scoring.guard_rails`); no training.
The score is the strategy's ``proxy`` (:data:`hpsearch.scoring.proxies.DEFAULT_PROXY` unless
named), which the searcher also writes into every score trial's config (``_proxy``): a study
resumed after the default changed, or after ``proxy: auto`` chose again, keeps ranking with the
proxy it started with. Every proxy is maximised; a degenerate network gets the worst score with
its reason. The NASWOT names (``naswot`` = ``naswot-paper``, ``naswot-v1``) use the batched NASWOT
scorer with the experiment's ``naswot.k``; the name alone sets the sign.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hpsearch.config.experiment import network_spec, training_settings
from hpsearch.config.strategy import NASWOT_METRIC
from hpsearch.config.trials import TrialContext, TrialFunction, TrialKind, TrialWrapper
from hpsearch.errors import ConfigError
from hpsearch.scoring.naswot import Convention
from hpsearch.scoring.proxies import DEFAULT_PROXY, PROXIES

#: The ``_kind`` of a trial that scores ``_candidates`` without training.
SCORE_KIND = "score"
#: The trial-config key naming the proxy of a score trial (written by the NASWOT searchers).
PROXY_KEY = "_proxy"
#: The NASWOT proxies and the sign (score convention) each name stands for.
NASWOT_SIGNS: Mapping[str, Convention] = MappingProxyType({"naswot": "paper", "naswot-v1": "v1"})


def _naswot_batch(context: TrialContext, params: dict[str, Any]) -> Any:
    """The NASWOT batch of training points, scaled as a training with `params` scales them."""
    from hpsearch.scoring.experiment import naswot_batch

    base = training_settings(params, context.training, context.seed)
    return naswot_batch(context.data, base, context.naswot.batch_size, context.seed)


def _naswot_scores(specs: list[Any], context: TrialContext, convention: Convention,
                   params: dict[str, Any]) -> tuple[list[float], list[str]]:
    """NASWOT mean scores (eq. 14, the experiment's k, the given sign) and reasons of `specs`."""
    from hpsearch.scoring import score_architectures

    batch = _naswot_batch(context, params)
    options = context.naswot
    results = score_architectures(
        specs, batch, n_init=options.n_init, seed=context.seed, k=options.k,
        convention=convention, progress=False,
    )
    return [float(r.score) for r in results], [r.reason or "" for r in results]


def _registry_scores(specs: list[Any], context: TrialContext, proxy: str,
                     params: dict[str, Any]) -> tuple[list[float], list[str]]:
    """The registered proxy's scores (aggregated over the experiment's initialisations) and reasons."""
    from hpsearch.scoring.proxies.many import score_architectures_proxies

    targets = None
    if PROXIES[proxy].needs_targets:  # ConfigError naming the registered proxies
        from hpsearch.scoring.proxy_study import proxy_batch

        if not hasattr(context.data, "x_train"):
            raise ConfigError(f"proxy {proxy!r} needs the LDOS of its batch, which streamed data do not give "
                              "the score trials: choose a proxy without targets (naswot-v1, synflow, logdet, ...)")
        base = training_settings(params, context.training, context.seed)
        batch, targets = proxy_batch(context.data, base, context.naswot.batch_size, context.seed)
    else:
        batch = _naswot_batch(context, params)
    results = score_architectures_proxies(specs, batch, targets, [proxy], n_init=context.naswot.n_init,
                                          seed=context.seed)
    return [float(r.scores[proxy]) for r in results], [r.reasons.get(proxy, "") for r in results]


def proxy_scores(specs: list[Any], context: TrialContext, proxy: str,
                 params: dict[str, Any]) -> tuple[list[float], list[str]]:
    """The `proxy` score (higher = predicted better) and the reason of a degenerate one, per spec; the
    batch is scaled as a training with `params` scales it."""
    convention = NASWOT_SIGNS.get(PROXIES.canonical(proxy))
    if convention is not None:
        return _naswot_scores(specs, context, convention, params)
    return _registry_scores(specs, context, proxy, params)


def score_candidates(config: dict[str, Any], context: TrialContext, proxy: str = DEFAULT_PROXY) -> dict[str, Any]:
    """The proxy score of every architecture of ``_candidates``, in order (no training): the proxy the
    config names in ``_proxy``, else `proxy`."""
    from hpsearch.scoring.guard_rails import network_of

    proxy = str(config.get(PROXY_KEY) or proxy)
    data = context.data
    candidates = [context.parameters(dict(c)) for c in config.get("_candidates", [])]
    specs = [network_spec(c, data.n_features, data.n_energies) for c in candidates]
    scores, reasons = proxy_scores(specs, context, proxy, dict(context.defaults))
    finite = [s for s in scores if math.isfinite(s)]
    return {
        # as JSON text: Tune's TensorBoard logger refuses lists (a warning per trial) and skips strings
        "naswot_scores": json.dumps(scores),
        "naswot_reasons": json.dumps(reasons),
        "candidate_networks": json.dumps([network_of(spec).to_dict() for spec in specs]),
        NASWOT_METRIC: max(finite) if finite else float("nan"),
        "n_candidates": len(scores),
        "status": "completed",
        "proxy": proxy,
    }


def score_failure(config: dict[str, Any], reason: str) -> dict[str, Any]:
    """A failed score trial: a NaN score and the reason for every candidate."""
    n = len(config.get("_candidates", []))
    return {"naswot_scores": json.dumps([float("nan")] * n), "naswot_reasons": json.dumps([reason] * n),
            "n_candidates": n}


@dataclass(frozen=True)
class ProxyScoring:
    """The score trials' function for one proxy (pickles by reference, compares by value)."""

    proxy: str = DEFAULT_PROXY

    def __call__(self, config: dict[str, Any], context: TrialContext) -> dict[str, Any]:
        return score_candidates(config, context, self.proxy)


def score_trials(proxy: str = DEFAULT_PROXY) -> TrialKind:
    """The NASWOT strategies' score trials, ranking with `proxy`."""
    return TrialKind(ProxyScoring(proxy), score_failure, f"{proxy}-score `_candidates`, no training")


#: The score trials of the default proxy (:data:`hpsearch.scoring.proxies.DEFAULT_PROXY`).
SCORE_TRIALS = score_trials()


@dataclass(frozen=True)
class ProxyFirst:
    """The naswot-pruner's wrapper for one proxy: with ``_naswot`` in the config, report the network's
    `proxy` score (and why it is degenerate, if it is) first, keep it in every later report, then run
    the training. Pickles by reference, compares by value."""

    proxy: str = DEFAULT_PROXY

    def __call__(self, config: dict[str, Any], context: TrialContext, inner: TrialFunction) -> dict[str, Any]:
        if not config.get("_naswot"):
            return inner(config, context)
        params = context.parameters(config)
        spec = network_spec(params, context.data.n_features, context.data.n_energies)
        ((score,), (reason,)) = proxy_scores([spec], context, self.proxy, params)
        extra = {NASWOT_METRIC: float(score), "naswot_reason": reason, "proxy": self.proxy}
        context.report({**extra, "phase": "naswot"})
        context.keep(extra)
        return inner(config, context)


def proxy_first(proxy: str = DEFAULT_PROXY) -> TrialWrapper:
    """The naswot-pruner's score before training, with `proxy`."""
    return TrialWrapper(ProxyFirst(proxy), description=f"report the {proxy} score before training")


#: The naswot-pruner's score before training with the default proxy (trials flagged ``_naswot``).
NASWOT_FIRST = proxy_first()
