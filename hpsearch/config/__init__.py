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
    Strategy,
    StrategyContext,
    StrategyOptions,
)

__all__ = [
    "METRIC",
    "MODE",
    "NASWOT_METRIC",
    "RESERVED_KEYS",
    "Categorical",
    "FloatRange",
    "IntRange",
    "SchedulerPlugin",
    "SearchSpace",
    "Strategy",
    "StrategyContext",
    "StrategyOptions",
    "available_schedulers",
    "available_strategies",
    "load_scheduler",
    "load_strategy",
    "parameter_kind",
]
