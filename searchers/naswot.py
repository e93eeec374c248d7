"""NASWOT, training-free (the paper's "NASWOT fixed"): score every architecture, train the best.

Every point of the architecture part of the space (``SearchSpace.subset("architecture")``; a
seeded random sample of ``max_candidates`` when it has more) gets its NASWOT mean score
(paper eq. 14; or the ``proxy`` named in the options, :data:`hpsearch.scoring.proxies.DEFAULT_PROXY`
unless given) without training. The architectures travel in 'score' trials of
``chunk_size`` candidates each (``_kind: "score"``, ``_candidates``), so Ray's per-trial
overhead is paid once per chunk; the trials report ``naswot_scores`` in order. The
architecture with the highest score is then trained once with the fixed optimisation settings
(``_phase: "train-best"``), and the searcher says FINISHED. All scores stay in the searcher's
state (:attr:`NaswotSearcher.scores`), e.g. for the score/error figure. When the pick is one of
the smallest networks, or a narrow one with a saturating activation, a WARNING shows the score table
(:mod:`hpsearch.scoring.guard_rails`).

Per-layer hyperparameters beyond ``n_layers`` (``width_3`` of a 2-layer network) do not change
the network, so such points are scored once.

Example YAML::

    strategy: {name: naswot, options: {chunk_size: 64}}
    search_space:
      n_layers: [1, 2, 3]
      width: [16, 32, 64, 128]
      activation: [ReLU, LeakyReLU, Sigmoid, Tanh]
    fixed: {learning_rate: 1.0e-3, batch_size: 64}
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, field_validator
from ray.tune.search import Searcher

from hpsearch.config.strategy import (
    SearchData,
    Strategy,
    StrategyOptions,
    reported_list,
)
from hpsearch.config.trials import TrialKind
from hpsearch.errors import ConfigError
from hpsearch.scoring.guard_rails import Network, pick_concerns, score_table
from hpsearch.scoring.proxies import DEFAULT_PROXY

from ._architectures import (
    architecture_candidates,
    architecture_levels,
    validate_architecture_space,
)
from ._base import SearchState, StateSearcher
from ._naswot_proxy import AUTO, check_proxy, proxy_params, with_chosen_proxy
from ._naswot_trials import PROXY_KEY, SCORE_KIND, score_trials

__all__ = [
    "NaswotOptions", "NaswotPhase", "NaswotSearcher", "NaswotState", "NaswotStrategy", "ScoreTrial",
    "ScoringSearcher", "TrainBestTrial", "architecture_candidates", "architecture_levels", "check_budget",
    "validate_architecture_space",
]

logger = logging.getLogger(__name__)



class NaswotOptions(StrategyOptions):
    """Options of the training-free NASWOT strategy."""

    #: score every architecture when there are at most this many, else a seeded sample of this many
    max_candidates: int = Field(default=5000, ge=1)
    #: architectures per 'score' trial
    chunk_size: int = Field(default=64, ge=1)
    #: training-free score that ranks the architectures: a registered proxy (naswot-paper: the paper's
    #: sign; naswot-v1: the opposite), or "auto" (chosen on a trained pilot before the search, training +
    #: validation snapshots only; see searchers/_naswot_proxy.py). Default: DEFAULT_PROXY, read once
    #: per process from hpsearch.scoring.proxies, so changing that constant changes every strategy.
    proxy: str = Field(default=DEFAULT_PROXY, description="training-free score that ranks the architectures "
                       f"(default {DEFAULT_PROXY}; naswot-paper: the paper's sign), or auto")
    #: architectures trained by the pilot of proxy: auto
    pilot_size: int = Field(default=12, ge=4, description="architectures the pilot of proxy: auto trains")

    @field_validator("proxy")
    @classmethod
    def _known_proxy(cls, proxy: str) -> str:
        return check_proxy(proxy)


class NaswotPhase(str, Enum):
    """Where a NASWOT-family study stands (naswot-optimized adds TPE, naswot-halving HALVING)."""

    SCORE = "score"
    TPE = "tpe"
    HALVING = "halving"
    TRAIN_BEST = "train-best"
    TRAIN_BEST_RUNNING = "train-best-running"
    DONE = "done"


@dataclass
class ScoreTrial:
    """A pending 'score' trial of the candidates ``start .. start + chunk_size``."""

    start: int
    kind: Literal["score"] = "score"


@dataclass
class TrainBestTrial:
    """The pending training of the best configuration."""

    kind: Literal["train-best"] = "train-best"


NaswotTrial = Annotated[ScoreTrial | TrainBestTrial, Field(discriminator="kind")]


@dataclass
class NaswotState(SearchState):
    """The candidates, the score trials still to suggest, every candidate's score, the best."""

    pending: dict[str, NaswotTrial] = field(default_factory=dict)
    phase: NaswotPhase = NaswotPhase.SCORE
    candidates: list[dict[str, Any]] | None = None
    queue: list[int] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    best: int | None = None
    #: each candidate's size and shape as its score trial reported it (None: not reported)
    networks: list[dict[str, Any] | None] = field(default_factory=list)


OptionsT = TypeVar("OptionsT", bound=NaswotOptions)
StateT = TypeVar("StateT", bound=NaswotState)


class ScoringSearcher(StateSearcher[OptionsT, StateT]):
    """The NASWOT family's common part: score trials first, then (by default) one training of
    the best architecture, FINISHED. Subclasses add phases in :meth:`_phase_config`."""

    # -- the search ----------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if state.finished:
            return Searcher.FINISHED
        if state.candidates is None:
            candidates = architecture_candidates(self._space, self._options.max_candidates, self._seed)
            size = self._options.chunk_size
            state.candidates = candidates
            state.queue = list(range(0, len(candidates), size))
            state.scores = [None] * len(candidates)
            state.networks = [None] * len(candidates)
            state.reasons = ["not scored"] * len(candidates)
            logger.info("NASWOT: %d architectures in %d score trials", len(candidates), len(state.queue))
        if state.queue:
            start = state.queue.pop(0)
            self._register(trial_id, ScoreTrial(start))
            chunk = self._candidates()[start : start + self._options.chunk_size]
            proxy = {} if self._options.proxy == AUTO else {PROXY_KEY: self._options.proxy}
            return {"_kind": "score", "_candidates": [dict(c) for c in chunk], "_phase": "score", **proxy}
        config = self._phase_config(trial_id)
        if config == Searcher.FINISHED:
            state.finished = True
            logger.info("%s finished: best %s = %s", type(self).__name__, self.best_config, self.best_value)
        return config

    def _candidates(self) -> list[dict[str, Any]]:
        return self.state.candidates or []

    def _phase_config(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config once every score trial was suggested: None to wait, FINISHED at the end."""
        state = self.state
        if state.pending:
            return None
        if state.phase is NaswotPhase.SCORE:
            self._select_best()
            state.phase = NaswotPhase.TRAIN_BEST if state.best is not None else NaswotPhase.DONE
        if state.phase is NaswotPhase.TRAIN_BEST:
            state.phase = NaswotPhase.TRAIN_BEST_RUNNING
            self._register(trial_id, TrainBestTrial())
            return self._train_best_config()
        return Searcher.FINISHED

    def _select_best(self) -> None:
        state = self.state
        valid = [(s, i) for i, s in enumerate(state.scores) if s is not None]
        if not valid:
            logger.error("NASWOT: no architecture got a valid score; nothing to train")
            return
        state.best = max(valid, key=lambda item: (item[0], -item[1]))[1]
        logger.info("NASWOT: best of %d scored architectures by %s: %s (score %.6g)", len(valid),
                    self._options.proxy, self._candidates()[state.best], state.scores[state.best])
        self._check_pick(state.best)

    def _check_pick(self, pick: int) -> None:
        """A WARNING with the score table when the pick looks like a proxy ranking backwards (one of the
        smallest networks, or a narrow saturating one preferred over every wider candidate)."""
        state = self.state
        reported = getattr(state, "networks", [])
        if len(reported) != len(state.scores) or reported[pick] is None:
            return  # the pick's score trial reported no shapes (a study started before they were reported)
        unknown = Network(0, (), ())
        networks = [unknown if n is None else Network.from_dict(n) for n in reported]
        scores = [s if n is not None else None for s, n in zip(state.scores, reported)]
        concerns = pick_concerns(networks, scores, pick)
        if concerns:
            logger.warning("%s: check proxy %r before trusting its pick: %s. Its scores (higher = predicted "
                           "better):\n%s\nRank the proxies against trained errors on this data with `hpsearch "
                           "proxy-study`, or name another proxy (e.g. params, naswot-v1, synflow).",
                           type(self).__name__, self._options.proxy, "; ".join(concerns),
                           score_table(networks, scores, pick))

    def _train_best_config(self) -> dict[str, Any]:
        return {**(self.best_architecture or {}), "_kind": "train", "_phase": "train-best"}

    def _complete(self, info: Any, value: float | None, result: dict[str, Any] | None) -> None:
        if isinstance(info, ScoreTrial):
            self._store_scores(info.start, result)
        elif isinstance(info, TrainBestTrial):
            self.state.phase = NaswotPhase.DONE
            self._record("train-best", self._train_best_config(), value)

    def _store_scores(self, start: int, result: dict[str, Any] | None) -> None:
        state = self.state
        n = len(self._candidates()[start : start + self._options.chunk_size])
        scores = reported_list((result or {}).get("naswot_scores"))
        reasons = reported_list((result or {}).get("naswot_reasons")) or [None] * n
        networks = reported_list((result or {}).get("candidate_networks"))
        if len(getattr(state, "networks", ())) != len(state.scores):  # a study pickled before shapes existed
            state.networks = [None] * len(state.scores)
        if networks is not None and len(networks) == n:
            state.networks[start : start + n] = networks
        used = (result or {}).get("proxy")
        if used is not None and self._options.proxy != AUTO and used != self._options.proxy:
            logger.error("NASWOT: the score trial of candidates %d..%d ranked with proxy %r, but this study ranks "
                         "with %r: its scores are left out", start, start + n - 1, used, self._options.proxy)
            scores = None
        if not isinstance(scores, (list, tuple)) or len(scores) != n or len(reasons) != n:
            logger.warning("NASWOT: score trial of candidates %d..%d failed or reported %r scores",
                           start, start + n - 1, None if scores is None else len(scores))
            scores, reasons = [None] * n, ["score trial failed"] * n
        for offset, (score, reason) in enumerate(zip(scores, reasons)):
            try:
                value = float(score) if score is not None else math.nan
            except (TypeError, ValueError):
                value = math.nan
            ok = math.isfinite(value) and not reason
            state.scores[start + offset] = value if ok else None
            state.reasons[start + offset] = None if ok else (reason or "no finite score")

    # -- results -------------------------------------------------------------------------------
    @property
    def scores(self) -> list[tuple[dict[str, Any], float | None]]:
        """(architecture, NASWOT mean score) of every candidate; None where scoring failed."""
        return [(dict(c), s) for c, s in zip(self._candidates(), self.state.scores)]

    @property
    def best_architecture(self) -> dict[str, Any] | None:
        best = self.state.best
        return None if best is None else dict(self._candidates()[best])


class NaswotSearcher(ScoringSearcher[NaswotOptions, NaswotState]):
    """Score trials (chunks of architectures) first, then one training of the best, FINISHED."""

    def _initial_state(self) -> NaswotState:
        return NaswotState()


def check_budget(strategy: str, n_trials: int, max_trials: int | None, what: str) -> None:
    """ConfigError when the budget cannot hold the trials the strategy needs."""
    if max_trials is not None and max_trials < n_trials:
        raise ConfigError(
            f"the {strategy} strategy needs {n_trials} trials ({what}) but budget.max_trials is "
            f"{max_trials}: raise max_trials, or lower max_candidates / raise chunk_size"
        )


class NaswotStrategy(Strategy):
    """Training-free NASWOT with fixed optimisation settings (paper: NASWOT fixed)."""

    name = "naswot"
    description = (
        "NASWOT fixed: score every architecture without training, train the best once with the fixed settings."
    )
    Options = NaswotOptions
    options: NaswotOptions

    def n_score_trials(self) -> int:
        n = len(architecture_candidates(self.space, self.options.max_candidates, self.context.seed))
        return math.ceil(n / self.options.chunk_size)

    def validate(self) -> None:
        validate_architecture_space(self.space, self.name)
        optimisation = self.space.subset("optimisation")
        if optimisation is not None:
            logger.warning(
                "naswot trains the best architecture with the fixed settings; the optimisation "
                "hyperparameters %s of the search space are not searched (use naswot-optimized)",
                optimisation.names,
            )
        n_score = self.n_score_trials()
        check_budget(self.name, n_score + 1, self.context.max_trials, f"{n_score} score trials + 1 training")

    def make_searcher(self) -> NaswotSearcher:
        return NaswotSearcher(self.space, self.options, seed=self.context.seed,
                              metric=self.context.metric, mode=self.context.mode)

    def trial_kinds(self) -> Mapping[str, TrialKind]:
        """The chunked score trials with the strategy's proxy (:mod:`searchers._naswot_trials`)."""
        return {SCORE_KIND: score_trials(self.options.proxy)}

    def prepared(self, data: SearchData) -> NaswotStrategy:
        """With ``proxy: auto``, a copy whose proxy a trained pilot chose (:mod:`searchers._naswot_proxy`);
        logs the proxy and its sign."""
        return with_chosen_proxy(self, data)

    def tracking_params(self) -> Mapping[str, Any]:
        """The proxy the study ranks with and its sign."""
        return proxy_params(self.options.proxy)

    def num_samples(self) -> int:
        return -1
