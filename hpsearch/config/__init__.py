"""Typed, validated, immutable experiment configuration and the strategy plug-in contract."""

from hpsearch.config.registry import (
    available_schedulers,
    available_strategies,
    load_scheduler,
    load_strategy,
)
from hpsearch.config.space import Categorical, FloatRange, IntRange, SearchSpace, parameter_kind
from hpsearch.config.strategy import (
    METRIC,
    MODE,
    NASWOT_METRIC,
    RESERVED_KEYS,
    SchedulerPlugin,
    SearchData,
    Strategy,
    StrategyContext,
    StrategyOptions,
)
from hpsearch.config.trials import TRAIN_KIND, TrialContext, TrialKind, TrialWrapper

__all__ = [
    "METRIC",
    "MODE",
    "NASWOT_METRIC",
    "RESERVED_KEYS",
    "Categorical",
    "FloatRange",
    "IntRange",
    "SchedulerPlugin",
    "SearchData",
    "SearchSpace",
    "Strategy",
    "StrategyContext",
    "StrategyOptions",
    "TRAIN_KIND",
    "TrialContext",
    "TrialKind",
    "TrialWrapper",
    "available_schedulers",
    "available_strategies",
    "load_scheduler",
    "load_strategy",
    "parameter_kind",
]
