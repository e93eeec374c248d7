"""The NASWOT trial kinds: chunked scoring of candidate architectures (the NASWOT strategies'
``_kind: "score"``), and the score reported before training (the naswot-pruner's wrapper).

A score trial scores every architecture of ``_candidates`` in one trial (one Ray trial per chunk
of candidates, not per candidate: Ray's per-trial overhead is ~0.25 s even with reused actors)
and reports the scores in order as JSON text; no training.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hpsearch.config.experiment import network_spec, training_settings
from hpsearch.config.strategy import NASWOT_METRIC
from hpsearch.config.trials import TrialContext, TrialFunction, TrialKind, TrialWrapper

#: The ``_kind`` of a trial that scores ``_candidates`` without training.
SCORE_KIND = "score"


def _naswot_batch(context: TrialContext, params: dict[str, Any]) -> Any:
    """The NASWOT batch of training points, scaled as a training with `params` scales them."""
    from hpsearch.scoring.experiment import naswot_batch

    base = training_settings(params, context.training, context.seed)
    return naswot_batch(context.data, base, context.naswot.batch_size, context.seed)


def score_candidates(config: dict[str, Any], context: TrialContext) -> dict[str, Any]:
    """NASWOT mean score of every architecture of ``_candidates``, in order (no training)."""
    from hpsearch.scoring import score_architectures

    data = context.data
    candidates = [context.parameters(dict(c)) for c in config.get("_candidates", [])]
    specs = [network_spec(c, data.n_features, data.n_energies) for c in candidates]
    batch = _naswot_batch(context, dict(context.defaults))
    options = context.naswot
    results = score_architectures(
        specs, batch, n_init=options.n_init, seed=context.seed, k=options.k,
        convention=options.convention, progress=False, use_ray=False,
    )
    scores = [float(r.score) for r in results]
    finite = [s for s in scores if math.isfinite(s)]
    return {
        # as JSON text: Tune's TensorBoard logger refuses lists (a warning per trial) and skips strings
        "naswot_scores": json.dumps(scores),
        "naswot_reasons": json.dumps([r.reason or "" for r in results]),
        NASWOT_METRIC: max(finite) if finite else float("nan"),
        "n_candidates": len(scores),
        "status": "completed",
    }


def score_failure(config: dict[str, Any], reason: str) -> dict[str, Any]:
    """A failed score trial: a NaN score and the reason for every candidate."""
    n = len(config.get("_candidates", []))
    return {"naswot_scores": json.dumps([float("nan")] * n), "naswot_reasons": json.dumps([reason] * n),
            "n_candidates": n}


#: The NASWOT strategies' score trials.
SCORE_TRIALS = TrialKind(score_candidates, score_failure, "NASWOT-score `_candidates`, no training")


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
