"""NASWOT top-k, then successive halving over the survivors: a training-free ranking that is right
on average, corrected by a few cheap trainings.

1. Every architecture of the space is scored without training, in chunked 'score' trials
   exactly as :mod:`searchers.naswot` does (``proxy``: the training-free score,
   :data:`hpsearch.scoring.proxies.DEFAULT_PROXY` by default, any registered proxy, or ``auto``:
   chosen on a trained pilot before the search).
2. The ``top_k`` best-scored architectures (or the best ``top_fraction`` of them) survive.
3. Synchronous successive halving: rung 0 trains every survivor for ``min_epochs`` epochs; each
   following rung keeps the best ``1/reduction_factor`` by the study's objective and trains them
   for ``reduction_factor`` times more epochs, up to ``max_epochs`` (the last rung, which also
   comes at once when a single survivor is left). Every rung trains from scratch with
   ``max_epochs`` set to its budget (the trainable keeps no checkpoints), so the epochs spent are
   at most ``sum(n_i * r_i)`` over the rungs, e.g. 9x3 + 3x9 + 1x27 = 81 for the defaults.
4. Optimisation hyperparameters: ``optimisation: fixed`` trains with the fixed settings;
   ``optimisation: tpe`` lets a seeded Optuna TPE sampler draw them for each rung-0 training
   (told every rung-0 result); promoted trainings keep their settings.

The winner is the best training of the highest rung that finished one (:attr:`best_config`);
:attr:`NaswotHalvingSearcher.spent` holds the epochs and trial-seconds spent (scoring included;
core-seconds are trial-seconds times the CPUs per trial, as in the study's summary). The whole
state, TPE study included, is saved and restored.

Example YAML::

    strategy:
      name: naswot-halving
      options: {top_k: 9, min_epochs: 3, reduction_factor: 3, optimisation: tpe}
    search_space:
      n_layers: [1, 2, 3]
      width: [16, 32, 64, 128]
      activation: [ReLU, LeakyReLU, Sigmoid, Tanh]
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    fixed: {max_epochs: 27}
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from ray.tune.search import Searcher

from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import SearchData, Strategy
from hpsearch.config.trials import TrialKind
from hpsearch.errors import ConfigError

from ._base import Best, Record, best_from_history
from ._naswot_proxy import proxy_params, with_chosen_proxy
from ._naswot_trials import SCORE_KIND, score_trials
from ._optuna_study import OwnedStudy, SavedStudy
from .naswot import (
    NaswotOptions,
    NaswotPhase,
    NaswotState,
    ScoreTrial,
    ScoringSearcher,
    TrainBestTrial,
    architecture_candidates,
    check_budget,
    validate_architecture_space,
)
from .naswot_optimized import optimisation_distributions, tpe_sampler

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 9


class NaswotHalvingOptions(NaswotOptions):
    """Options of NASWOT top-k followed by successive halving (epochs as the budget)."""

    top_k: int | None = Field(default=None, ge=1, description=f"architectures kept (default {DEFAULT_TOP_K})")
    top_fraction: float | None = Field(default=None, gt=0, le=1, description="or: this fraction of them kept")
    min_epochs: int = Field(default=3, ge=1, description="epochs of rung 0")
    reduction_factor: int = Field(default=3, ge=2, description="keep 1/reduction_factor per rung; epochs x it")
    max_epochs: int | None = Field(default=None, ge=1, description="epochs of the last rung; default fixed max_epochs")
    optimisation: Literal["fixed", "tpe"] = Field(default="fixed", description="fixed settings, or drawn by TPE")
    n_startup_trials: int = Field(default=4, ge=0, description="random draws before TPE models (tpe only)")
    multivariate: bool = True

    @model_validator(mode="after")
    def _one_selection(self) -> NaswotHalvingOptions:
        if self.top_k is not None and self.top_fraction is not None:
            raise ValueError(f"give top_k ({self.top_k}) or top_fraction ({self.top_fraction}), not both")
        if self.max_epochs is not None and self.min_epochs > self.max_epochs:
            raise ValueError(f"min_epochs {self.min_epochs} exceeds max_epochs {self.max_epochs}")
        return self

    def n_survivors(self, n_scored: int) -> int:
        """Architectures kept out of `n_scored` (at least one when any was scored)."""
        if self.top_fraction is not None:
            wanted = math.ceil(self.top_fraction * n_scored)
        else:
            wanted = self.top_k if self.top_k is not None else DEFAULT_TOP_K
        return min(max(wanted, 1), n_scored)


def rung_plan(n_survivors: int, min_epochs: int, max_epochs: int, eta: int) -> list[tuple[int, int]]:
    """(trainings, epochs) of each rung when no training fails: sizes // eta, epochs x eta, the
    last rung at `max_epochs` (at once when one survivor is left)."""
    plan: list[tuple[int, int]] = []
    n, epochs = n_survivors, min(min_epochs, max_epochs)
    while n > 0:
        plan.append((n, epochs))
        if epochs >= max_epochs:
            break
        n = max(1, n // eta)
        epochs = max_epochs if n == 1 else min(epochs * eta, max_epochs)
    return plan


@dataclass
class RungTrial:
    """A pending training of survivor `index` in rung `rung`."""

    rung: int
    index: int
    kind: Literal["rung"] = "rung"


HalvingTrial = Annotated[ScoreTrial | TrainBestTrial | RungTrial, Field(discriminator="kind")]


@dataclass
class Survivor:
    """An architecture kept after scoring, with its optimisation settings (drawn by TPE or none)."""

    arch: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    tpe_number: int | None = None


@dataclass
class NaswotHalvingState(NaswotState):
    """NASWOT's state, the survivors, the rungs so far, what was spent, the TPE study (at save)."""

    pending: dict[str, HalvingTrial] = field(default_factory=dict)
    survivors: list[Survivor] = field(default_factory=list)
    rung: int = 0
    alive: list[int] = field(default_factory=list)
    rung_queue: list[int] = field(default_factory=list)
    #: epochs of each rung so far, and per rung: survivor index -> objective (None: failed)
    budgets: list[int] = field(default_factory=list)
    values: list[dict[int, float | None]] = field(default_factory=list)
    epochs_spent: int = 0
    trial_seconds: float = 0.0
    score_trials: int = 0
    trainings: int = 0
    study: SavedStudy | None = None


def _in_phase(phase: str) -> Callable[[Record], bool]:
    return lambda record: record.phase == phase


class NaswotHalvingSearcher(ScoringSearcher[NaswotHalvingOptions, NaswotHalvingState]):
    """Score trials, then successive halving of the top-k; see the module docstring."""

    def __init__(self, space: SearchSpace, options: NaswotHalvingOptions, *, max_epochs: int,
                 max_concurrent: int = 1, seed: int = 0, metric: str, mode: str) -> None:
        self._max_epochs = max_epochs
        self._max_concurrent = max(1, max_concurrent)
        self._tpe = OwnedStudy(functools.partial(tpe_sampler, seed, options.n_startup_trials,
                                                 options.multivariate, True))
        super().__init__(space, options, seed=seed, metric=metric, mode=mode)

    def _fingerprint(self) -> str:
        return f"{super()._fingerprint()}-{self._max_epochs}"

    def _initial_state(self) -> NaswotHalvingState:
        return NaswotHalvingState()

    # -- phases --------------------------------------------------------------------------------
    def _phase_config(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if state.phase is NaswotPhase.SCORE:
            if state.pending:
                return None
            self._select_survivors()
            state.phase = NaswotPhase.HALVING if state.survivors else NaswotPhase.DONE
        if state.phase is NaswotPhase.HALVING:
            config = self._halving_config(trial_id)
            if config != Searcher.FINISHED:
                return config
            state.phase = NaswotPhase.DONE
            spent = self.spent
            logger.info("naswot-halving: %d score trials and %d trainings, %d epochs, %.1f trial-seconds",
                        spent["score_trials"], spent["trainings"], spent["epochs"], spent["trial_seconds"])
        return Searcher.FINISHED

    def _select_survivors(self) -> None:
        state = self.state
        valid = sorted(((s, i) for i, s in enumerate(state.scores) if s is not None), key=lambda x: (-x[0], x[1]))
        if not valid:
            logger.error("naswot-halving: no architecture got a valid score; nothing to train")
            return
        keep = self._options.n_survivors(len(valid))
        state.survivors = [Survivor(dict(self._candidates()[i])) for _, i in valid[:keep]]
        state.best = valid[0][1]
        state.rung, state.alive, state.rung_queue = 0, list(range(keep)), list(range(keep))
        state.budgets, state.values = [min(self._options.min_epochs, self._max_epochs)], [{}]
        logger.info("naswot-halving: kept the %d best of %d scored architectures by %s (score %.6g to %.6g)",
                    keep, len(valid), self._options.proxy, valid[0][0], valid[keep - 1][0])
        self._check_pick(state.best)

    def _halving_config(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if state.rung_queue:
            tpe_first = self._options.optimisation == "tpe" and state.rung == 0
            if tpe_first and len(state.pending) >= self._max_concurrent:
                return None  # TPE asks only as trials can start, so it sees the results it may
            index = state.rung_queue.pop(0)
            if tpe_first:
                self._ask_settings(index)
            self._register(trial_id, RungTrial(state.rung, index))
            return self._rung_config(state.rung, index)
        if state.pending:
            return None
        if self._promote():
            return self._halving_config(trial_id)
        return Searcher.FINISHED

    def _promote(self) -> bool:
        """Start the next rung with the best of this one; False when the halving is over."""
        state = self.state
        rung, values = state.rung, state.values[state.rung]
        done = sorted((i for i in state.alive if values.get(i) is not None),
                      key=lambda i: (self.sort_key(values[i]), i))
        budget = state.budgets[rung]
        if budget >= self._max_epochs or not done:
            return False
        eta = self._options.reduction_factor
        n_next = max(1, len(state.alive) // eta)
        keep = done[:n_next]
        next_budget = self._max_epochs if len(keep) == 1 else min(budget * eta, self._max_epochs)
        state.rung, state.alive, state.rung_queue = rung + 1, keep, list(keep)
        state.budgets.append(next_budget)
        state.values.append({})
        logger.info("naswot-halving: rung %d: %d trainings of %d epochs", rung + 1, len(keep), next_budget)
        return True

    def _rung_config(self, rung: int, index: int) -> dict[str, Any]:
        survivor = self.state.survivors[index]
        return {**survivor.arch, **survivor.settings, "max_epochs": self.state.budgets[rung],
                "_kind": "train", "_phase": f"rung-{rung}"}

    def _complete(self, info: Any, value: float | None, result: dict[str, Any] | None) -> None:
        result = result or {}
        state = self.state
        seconds = result.get("trial_seconds", result.get("time_total_s"))
        if isinstance(seconds, (int, float)) and math.isfinite(seconds):
            state.trial_seconds += float(seconds)
        if not isinstance(info, RungTrial):
            state.score_trials += 1
            super()._complete(info, value, result)
            return
        state.values[info.rung][info.index] = value
        state.trainings += 1
        epochs = result.get("epochs", result.get("epoch"))
        if isinstance(epochs, int) and not isinstance(epochs, bool):
            state.epochs_spent += epochs
        if info.rung == 0 and self._options.optimisation == "tpe":
            self._tell(state.survivors[info.index].tpe_number, value)
        self._record(f"rung-{info.rung}", self._rung_config(info.rung, info.index), value)

    # -- the TPE sampler of the optimisation settings ------------------------------------------
    def _ask_settings(self, index: int) -> None:
        trial = self._tpe.ask(self._objective_mode, optimisation_distributions(self._space))
        survivor = self.state.survivors[index]
        survivor.settings, survivor.tpe_number = dict(trial.params), trial.number

    def _tell(self, number: int | None, value: float | None) -> None:
        if number is not None:
            self._tpe.tell(self._objective_mode, number, value)

    def _before_save(self) -> None:
        self.state.study = self._tpe.save()

    def _after_restore(self) -> None:
        self._tpe.restore(self.state.study)

    # -- results -------------------------------------------------------------------------------
    @property
    def spent(self) -> dict[str, Any]:
        """Epochs trained, trial-seconds (scoring included), score trials and trainings so far."""
        state = self.state
        return {"epochs": state.epochs_spent, "trial_seconds": state.trial_seconds,
                "score_trials": state.score_trials, "trainings": state.trainings}

    @property
    def rungs(self) -> list[dict[str, Any]]:
        """Per rung: its epochs and {survivor index: objective (None: failed)}."""
        return [{"epochs": b, "values": dict(v)} for b, v in zip(self.state.budgets, self.state.values)]

    def best(self) -> Best | None:
        """The best training of the highest rung that finished one (its max_epochs included)."""
        phases = [f"rung-{rung}" for rung in reversed(range(len(self.state.budgets)))]
        tiers = [_in_phase(phase) for phase in phases]
        return best_from_history(self.state.history, self.sort_key, tiers=tiers) if tiers else None


class NaswotHalvingStrategy(Strategy):
    """NASWOT ranks every architecture; successive halving trains the top-k on growing budgets."""

    name = "naswot-halving"
    description = "NASWOT top-k, then successive halving over the survivors (epochs as the budget)."
    Options = NaswotHalvingOptions
    options: NaswotHalvingOptions

    def max_epochs(self) -> int:
        if self.options.max_epochs is not None:
            return self.options.max_epochs
        fixed = self.context.fixed.get("max_epochs")
        if isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 1:
            raise ConfigError(f"naswot-halving needs the epochs of its last rung: give options.max_epochs or a "
                              f"whole number in fixed.max_epochs (got {fixed!r})")
        return fixed

    def plan(self) -> list[tuple[int, int]]:
        """(trainings, epochs) per rung when no training fails."""
        n_scored = len(architecture_candidates(self.space, self.options.max_candidates, self.context.seed))
        eta = self.options.reduction_factor
        return rung_plan(self.options.n_survivors(n_scored), self.options.min_epochs, self.max_epochs(), eta)

    def validate(self) -> None:
        validate_architecture_space(self.space, self.name)
        if "max_epochs" in self.space.names:
            raise ConfigError("naswot-halving sets max_epochs itself (the rung budgets): remove max_epochs from "
                              "the search space and give options.min_epochs / options.max_epochs instead")
        max_epochs = self.max_epochs()
        if self.options.min_epochs > max_epochs:
            raise ConfigError(f"naswot-halving: min_epochs {self.options.min_epochs} exceeds max_epochs {max_epochs}")
        optimisation = self.space.subset("optimisation")
        if self.options.optimisation == "tpe" and optimisation is None:
            raise ConfigError(f"naswot-halving with optimisation: tpe needs optimisation hyperparameters in the "
                              f"search space {self.space.names} (learning_rate, batch_size, ...): add some, or use "
                              "optimisation: fixed")
        if self.options.optimisation == "tpe":
            optimisation_distributions(self.space)
        elif optimisation is not None:
            logger.warning("naswot-halving trains with the fixed settings; %s of the search space are not searched "
                           "(use optimisation: tpe)", optimisation.names)
        n_score = math.ceil(len(architecture_candidates(self.space, self.options.max_candidates, self.context.seed))
                            / self.options.chunk_size)
        plan = self.plan()
        n_train = sum(n for n, _ in plan)
        check_budget(self.name, n_score + n_train, self.context.max_trials,
                     f"{n_score} score trials + {n_train} trainings in rungs {plan}")

    def trial_kinds(self) -> Mapping[str, TrialKind]:
        """The chunked score trials with the strategy's proxy (:mod:`searchers._naswot_trials`)."""
        return {SCORE_KIND: score_trials(self.options.proxy)}

    def prepared(self, data: SearchData) -> NaswotHalvingStrategy:
        """With ``proxy: auto``, a copy whose proxy a trained pilot chose (:mod:`searchers._naswot_proxy`);
        logs the proxy and its sign."""
        return with_chosen_proxy(self, data)

    def tracking_params(self) -> Mapping[str, Any]:
        """The proxy the study ranks with and its sign."""
        return proxy_params(self.options.proxy)

    def make_searcher(self) -> NaswotHalvingSearcher:
        return NaswotHalvingSearcher(self.space, self.options, max_epochs=self.max_epochs(),
                                     max_concurrent=self.context.max_concurrent, seed=self.context.seed,
                                     metric=self.context.metric, mode=self.context.mode)
