"""The NASWOT pruner: a Ray Tune scheduler that stops, before any training, every trial whose
training-free score falls below a threshold.

Each trial of a study with this scheduler gets ``_naswot: true``; the plug-in's wrapper around
the training kind then reports the ``proxy`` score of its network first
(:data:`hpsearch.scoring.proxies.DEFAULT_PROXY` unless named, as for the NASWOT strategies;
``naswot-paper`` is the paper's NASWOT sign; ``auto`` is not offered here). The threshold is
either fixed (``threshold``, on the scale of that proxy's scores: name the proxy it was set for), or
estimated at run time (default): the ``quantile`` of the scores of every trial scored so far,
once ``warmup_trials`` scores are known; before that no trial is pruned. A pruned trial reports
no band-energy error; the study records it as ``pruned`` and TPE learns it as a bad region.

``then`` names a scheduler that takes over the trials the pruner lets train (prune before
training, then halving): ``asha``, ``hyperband`` or ``median`` with their own options, chained
by :class:`searchers._chain.ChainedScheduler`.

Example YAML::

    strategy: {name: tpe}
    scheduler: {name: naswot-pruner, options: {quantile: 0.5, warmup_trials: 5}}
    # the paper's NASWOT sign: options: {proxy: naswot-paper, quantile: 0.5}
    # or, pruned first, then ASHA over the epochs of the trials that train:
    scheduler:
      name: naswot-pruner
      options: {quantile: 0.5, then: {name: asha, options: {grace_period: 2, max_t: 30}}}
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from hpsearch.config.registry import load_scheduler
from hpsearch.config.strategy import NASWOT_METRIC, SchedulerPlugin, StrategyOptions
from hpsearch.config.trials import TrialWrapper
from hpsearch.errors import ConfigError

from hpsearch.scoring.proxies import DEFAULT_PROXY

from ._chain import ChainedScheduler
from ._naswot_proxy import check_proxy, log_proxy, proxy_params
from ._naswot_trials import proxy_first
from ._statefile import STATE_FORMAT, check_saved_by, read_state_file, write_state_file

try:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
except ImportError as exc:  # pragma: no cover - ray is a hard dependency
    raise ImportError("the naswot-pruner needs Ray Tune: pip install 'ray[tune]'") from exc

logger = logging.getLogger(__name__)

#: Key of the trial's report that says why its NASWOT score is degenerate (empty: a real score).
REASON_KEY = "naswot_reason"


class ThenScheduler(StrategyOptions):
    """A registered scheduler by name with its options, run after the pruner (not the pruner again)."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> ThenScheduler:
        if self.name == "naswot-pruner":
            raise ValueError("then: the naswot-pruner cannot follow itself; name asha, hyperband or median")
        cls = load_scheduler(self.name)  # ConfigError (a ValueError) listing the known names
        cls.Options.model_validate(self.options)
        if cls.trial_flags:
            raise ValueError(f"then: scheduler {self.name!r} needs trial flags {cls.trial_flags}; it cannot be chained")
        return self


class NaswotPrunerOptions(StrategyOptions):
    """A fixed `threshold`, or a run-time `quantile` of the scores seen after `warmup_trials`."""

    #: the training-free score that decides (a registered proxy; default DEFAULT_PROXY of hpsearch.scoring.proxies)
    proxy: str = Field(default=DEFAULT_PROXY, description=f"training-free score (default {DEFAULT_PROXY}; "
                       "naswot-paper: the paper's NASWOT sign)")
    threshold: float | None = Field(default=None,
                                    description="fixed threshold on the proxy's scores (overrides quantile)")
    quantile: float = Field(default=0.5, gt=0.0, lt=1.0, description="prune below this quantile of scores so far")
    warmup_trials: int = Field(default=5, ge=1, description="scores needed before the adaptive threshold applies")
    prune_non_finite: bool = Field(
        default=True, description="prune networks without a real score (NaN, infinite, or degenerate: dead units)"
    )
    then: ThenScheduler | None = Field(
        default=None, description="scheduler for the trials that train (e.g. asha), chained after the pruner"
    )

    @field_validator("proxy")
    @classmethod
    def _known_proxy(cls, proxy: str) -> str:
        return check_proxy(proxy, auto=False)

    @model_validator(mode="after")
    def _finite_threshold(self) -> NaswotPrunerOptions:
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")
        return self


def adaptive_threshold(scores: Iterable[float], quantile: float, warmup_trials: int) -> float | None:
    """The `quantile` of the finite `scores`, or None while fewer than `warmup_trials` are known."""
    finite = [s for s in scores if math.isfinite(s)]
    if len(finite) < warmup_trials:
        return None
    return float(np.quantile(np.asarray(finite, dtype=np.float64), quantile))


@dataclass(frozen=True)
class PruneDecision:
    """What the pruner decided for one trial, with the threshold in force at that moment.

    ``degenerate``: the score is not a real score (non-finite, or the trial reported a
    ``naswot_reason`` such as dead units); such scores never move the threshold.
    """

    trial_id: str
    score: float
    threshold: float | None
    pruned: bool
    degenerate: bool = False


class NaswotPruner(FIFOScheduler):
    """Stops a trial at its first report when its NASWOT score is below the threshold."""

    def __init__(self, options: NaswotPrunerOptions) -> None:
        super().__init__()
        self.options = options
        self.decisions: dict[str, PruneDecision] = {}

    def current_threshold(self) -> float | None:
        if self.options.threshold is not None:
            return self.options.threshold
        scores = (d.score for d in self.decisions.values() if not d.degenerate)
        return adaptive_threshold(scores, self.options.quantile, self.options.warmup_trials)

    def judge(self, trial_id: str, score: float, reason: str = "") -> PruneDecision:
        """Decide for one trial (once); a real score then joins those the threshold is built from."""
        if trial_id in self.decisions:
            return self.decisions[trial_id]
        threshold = self.current_threshold()
        degenerate = bool(reason) or not math.isfinite(score)
        if degenerate:
            pruned = self.options.prune_non_finite
        else:
            pruned = threshold is not None and score < threshold
        decision = PruneDecision(trial_id, score, threshold, pruned, degenerate)
        self.decisions[trial_id] = decision
        if pruned and degenerate:
            logger.info("pruned trial %s: degenerate NASWOT score %.4g (%s)", trial_id, score, reason or "not finite")
        elif pruned:
            logger.info("pruned trial %s: NASWOT score %.4g below threshold %.4g", trial_id, score, threshold)
        return decision

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        """A trial restored after an interrupted study brings back its score (state rebuild)."""
        last = getattr(trial, "last_result", None) or {}
        if NASWOT_METRIC in last and trial.trial_id not in self.decisions:
            score = float(last[NASWOT_METRIC])
            degenerate = bool(last.get(REASON_KEY)) or not math.isfinite(score)
            self.decisions[trial.trial_id] = PruneDecision(
                trial.trial_id, score, None, "status" not in last, degenerate
            )

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if NASWOT_METRIC not in result or trial.trial_id in self.decisions:
            return TrialScheduler.CONTINUE
        used, mine = result.get("proxy"), getattr(self.options, "proxy", "naswot")  # pickled before the option
        if used is not None and used != mine:
            logger.error("trial %s reported a %r score but this pruner judges %r scores: it trains unjudged",
                         trial.trial_id, used, mine)
            return TrialScheduler.CONTINUE
        decision = self.judge(trial.trial_id, float(result[NASWOT_METRIC]), str(result.get(REASON_KEY) or ""))
        return TrialScheduler.STOP if decision.pruned else TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        pruned = sum(d.pruned for d in self.decisions.values())
        return f"NaswotPruner: {pruned}/{len(self.decisions)} pruned, threshold {self.current_threshold()}"

    def save(self, checkpoint_path: str) -> None:
        """The decisions so far as JSON (Tune itself never calls this; see :mod:`._chain`)."""
        decisions = [asdict(d) for d in self.decisions.values()]
        write_state_file(checkpoint_path, {"format": STATE_FORMAT, "searcher": type(self).__name__,
                                           "state": {"decisions": decisions}})

    def restore(self, checkpoint_path: str) -> None:
        payload = read_state_file(checkpoint_path)
        check_saved_by(payload, type(self).__name__)
        decisions = [PruneDecision(**d) for d in payload["state"]["decisions"]]
        self.decisions = {d.trial_id: d for d in decisions}


class NaswotPrunerPlugin(SchedulerPlugin):
    """Stop trials whose NASWOT score is below a fixed or run-time-estimated threshold."""

    name = "naswot-pruner"
    description = "Stop a trial before training when its training-free (proxy) score is below a threshold."
    Options = NaswotPrunerOptions
    options: NaswotPrunerOptions
    trial_flags: ClassVar[dict[str, Any]] = {"_naswot": True}

    def then(self) -> SchedulerPlugin | None:
        """The scheduler chained after the pruner (None: the pruner alone)."""
        then = self.options.then
        if then is None:
            return None
        cls = load_scheduler(then.name)
        try:
            options = cls.Options.model_validate(then.options)
        except ValueError as exc:
            raise ConfigError(f"naswot-pruner option then ({then.name}): {exc}") from None
        return cls(options, self.context)

    def trial_wrappers(self) -> Sequence[TrialWrapper]:
        """Score with the proxy before training, in every trial flagged ``_naswot``
        (:mod:`searchers._naswot_trials`)."""
        return (proxy_first(self.options.proxy),)

    def tracking_params(self) -> Mapping[str, Any]:
        """The proxy the pruner judges with and its sign."""
        return proxy_params(self.options.proxy, prefix="pruner_")

    def validate(self) -> None:
        if self.options.threshold is not None and "proxy" not in self.options.model_fields_set:
            logger.warning("naswot-pruner: the fixed threshold %g applies to scores of the default proxy %r; a "
                           "threshold set for the paper's NASWOT scores needs proxy: naswot-paper",
                           self.options.threshold, self.options.proxy)
        then = self.then()
        if then is not None:
            then.validate()

    def make_scheduler(self) -> NaswotPruner | ChainedScheduler:
        log_proxy(self.name, self.options.proxy)
        pruner = NaswotPruner(self.options)
        then = self.then()
        if then is None:
            return pruner
        return ChainedScheduler([(pruner, ()), (then.make_scheduler(), ())])
