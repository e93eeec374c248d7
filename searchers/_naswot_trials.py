"""The NASWOT trial kinds: chunked scoring of candidate architectures (the NASWOT strategies'
``_kind: "score"``), and the score reported before training (the naswot-pruner's wrapper).

A score trial scores every architecture of ``_candidates`` in one trial (one Ray trial per chunk
of candidates, not per candidate: Ray's per-trial overhead is ~0.25 s even with reused actors)
and reports the scores in order as JSON text; no training. The score is the strategy's
``proxy``: NASWOT's mean score (eq. 14) by default, or any registered training-free proxy
(:data:`hpsearch.scoring.proxies.PROXIES`; every one is maximised, a degenerate network gets the
worst score with its reason).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from hpsearch.config.experiment import network_spec, training_settings
from hpsearch.config.strategy import NASWOT_METRIC
from hpsearch.config.trials import TrialContext, TrialFunction, TrialKind, TrialWrapper
from hpsearch.errors import ConfigError

#: The ``_kind`` of a trial that scores ``_candidates`` without training.
SCORE_KIND = "score"


def _naswot_batch(context: TrialContext, params: dict[str, Any]) -> Any:
    """The NASWOT batch of training points, scaled as a training with `params` scales them."""
    from hpsearch.scoring.experiment import naswot_batch

    base = training_settings(params, context.training, context.seed)
    return naswot_batch(context.data, base, context.naswot.batch_size, context.seed)


def _naswot_scores(specs: list[Any], context: TrialContext) -> tuple[list[float], list[str]]:
    """NASWOT mean scores (eq. 14, the experiment's k and convention) and reasons of `specs`."""
    from hpsearch.scoring import score_architectures

    batch = _naswot_batch(context, dict(context.defaults))
    options = context.naswot
    results = score_architectures(
        specs, batch, n_init=options.n_init, seed=context.seed, k=options.k,
        convention=options.convention, progress=False,
    )
    return [float(r.score) for r in results], [r.reason or "" for r in results]


def _proxy_scores(specs: list[Any], context: TrialContext, proxy: str) -> tuple[list[float], list[str]]:
    """The registered proxy's scores (aggregated over the experiment's initialisations) and reasons."""
    from hpsearch.scoring.proxies import PROXIES
    from hpsearch.scoring.proxies.many import score_architectures_proxies

    targets = None
    if PROXIES[proxy].needs_targets:  # ConfigError naming the registered proxies
        from hpsearch.scoring.proxy_study import proxy_batch

        if not hasattr(context.data, "x_train"):
            raise ConfigError(f"proxy {proxy!r} needs the LDOS of its batch, which streamed data do not give "
                              "the score trials: choose a proxy without targets (naswot, synflow, logdet, ...)")
        base = training_settings(dict(context.defaults), context.training, context.seed)
        batch, targets = proxy_batch(context.data, base, context.naswot.batch_size, context.seed)
    else:
        batch = _naswot_batch(context, dict(context.defaults))
    results = score_architectures_proxies(specs, batch, targets, [proxy], n_init=context.naswot.n_init,
                                          seed=context.seed)
    return [float(r.scores[proxy]) for r in results], [r.reasons.get(proxy, "") for r in results]


def score_candidates(config: dict[str, Any], context: TrialContext, proxy: str = "naswot") -> dict[str, Any]:
    """The `proxy` score of every architecture of ``_candidates``, in order (no training)."""
    data = context.data
    candidates = [context.parameters(dict(c)) for c in config.get("_candidates", [])]
    specs = [network_spec(c, data.n_features, data.n_energies) for c in candidates]
    if proxy == "naswot":
        scores, reasons = _naswot_scores(specs, context)
    else:
        scores, reasons = _proxy_scores(specs, context, proxy)
    finite = [s for s in scores if math.isfinite(s)]
    return {
        # as JSON text: Tune's TensorBoard logger refuses lists (a warning per trial) and skips strings
        "naswot_scores": json.dumps(scores),
        "naswot_reasons": json.dumps(reasons),
        NASWOT_METRIC: max(finite) if finite else float("nan"),
        "n_candidates": len(scores),
        "status": "completed",
        **({} if proxy == "naswot" else {"proxy": proxy}),
    }


def score_failure(config: dict[str, Any], reason: str) -> dict[str, Any]:
    """A failed score trial: a NaN score and the reason for every candidate."""
    n = len(config.get("_candidates", []))
    return {"naswot_scores": json.dumps([float("nan")] * n), "naswot_reasons": json.dumps([reason] * n),
            "n_candidates": n}


@dataclass(frozen=True)
class ProxyScoring:
    """The score trials' function for one proxy (pickles by reference, compares by value)."""

    proxy: str = "naswot"

    def __call__(self, config: dict[str, Any], context: TrialContext) -> dict[str, Any]:
        return score_candidates(config, context, self.proxy)


def score_trials(proxy: str = "naswot") -> TrialKind:
    """The NASWOT strategies' score trials, ranking with `proxy`."""
    return TrialKind(ProxyScoring(proxy), score_failure, f"{proxy}-score `_candidates`, no training")


#: The score trials of the default proxy (NASWOT's mean score).
SCORE_TRIALS = score_trials()


def naswot_first(config: dict[str, Any], context: TrialContext, inner: TrialFunction) -> dict[str, Any]:
    """With ``_naswot`` in the config: report the network's NASWOT mean score (and why it is
    degenerate, if it is) first, keep it in every later report, then run `inner` (the training)."""
    if not config.get("_naswot"):
        return inner(config, context)
    from hpsearch.scoring import naswot_mean_score

    params = context.parameters(config)
    spec = network_spec(params, context.data.n_features, context.data.n_energies)
    options = context.naswot
    result = naswot_mean_score(spec, _naswot_batch(context, params), n_init=options.n_init, seed=context.seed,
                               k=options.k, convention=options.convention)
    extra = {NASWOT_METRIC: float(result.score), "naswot_reason": result.reason or ""}
    context.report({**extra, "phase": "naswot"})
    context.keep(extra)
    return inner(config, context)


#: The naswot-pruner's score before training (trials flagged ``_naswot``).
NASWOT_FIRST = TrialWrapper(naswot_first, description="report the NASWOT mean score before training")
