"""The ``proxy`` option of the NASWOT strategies: which training-free score ranks the architectures.

``naswot`` (default): NASWOT's mean score (eq. 14). Any name of the proxy registry
(:data:`hpsearch.scoring.proxies.PROXIES`, plug-ins included). ``auto``: before the search, a
small pilot of ``pilot_size`` architectures of the search space is trained on the search's
training snapshots and evaluated on its validation snapshots (never a test snapshot: the search
split holds none), and the single proxy whose scores rank the pilot best (most negative Kendall
tau, :func:`hpsearch.scoring.auto.choose_proxy`) scores the candidates. Ensembles are not offered:
score trials rank chunk by chunk, and a rank average needs every candidate at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from hpsearch.config.strategy import SearchData, Strategy
from hpsearch.errors import ConfigError

if TYPE_CHECKING:
    from hpsearch.scoring.proxy_study import ProxyStudyConfig

logger = logging.getLogger(__name__)

#: The `proxy` value that chooses the proxy on a trained pilot before the search.
AUTO = "auto"

S = TypeVar("S", bound=Strategy)


def check_proxy(proxy: str) -> str:
    """`proxy` when it is a registered proxy or ``auto``; ConfigError listing the known names."""
    from hpsearch.scoring.proxies import PROXIES

    if proxy != AUTO and proxy not in PROXIES:
        raise ConfigError(f"proxy {proxy!r} is not available; known: {', '.join([*PROXIES, AUTO])}")
    return proxy


def _levels(levels: dict[str, tuple[Any, ...]], fixed: dict[str, Any], name: str, kind: type) -> tuple[Any, ...] | None:
    values = levels.get(name) or ((fixed[name],) if name in fixed else ())
    return tuple(values) if values and all(isinstance(v, kind) and not isinstance(v, bool) for v in values) else None


def pilot_config(strategy: Strategy, data: SearchData) -> ProxyStudyConfig:
    """The pilot of `proxy: auto`: the architectures of the search space, trained as the search trains
    (fixed max_epochs, patience, learning rate, batch size), scored as the score trials score."""
    from hpsearch.scoring.proxy_study import ProxyStudyConfig

    from .naswot import architecture_levels

    levels = architecture_levels(strategy.space, strategy.name)
    fixed = dict(strategy.context.fixed)
    values: dict[str, Any] = {
        "depths": _levels(levels, fixed, "n_layers", int), "widths": _levels(levels, fixed, "width", int),
        "activations": _levels(levels, fixed, "activation", str),
        "max_epochs": fixed.get("max_epochs"), "patience": fixed.get("patience") or fixed.get("max_epochs"),
        "learning_rate": fixed.get("learning_rate"), "train_batch_size": fixed.get("batch_size"),
    }
    missing = [k for k in ("depths", "widths", "activations") if values[k] is None]
    if missing:
        logger.warning("proxy auto: the pilot samples %s from the proxy study's defaults (the search space "
                       "gives no single n_layers/width/activation levels for them)", missing)
    return ProxyStudyConfig(store=data.store_path, n_init=data.naswot.n_init, batch_size=data.naswot.batch_size,
                            seed=strategy.context.seed, ensembles=(), tracking=False,
                            **{k: v for k, v in values.items() if v is not None})


def with_chosen_proxy(strategy: S, data: SearchData) -> S:
    """`strategy` itself unless its ``proxy`` is ``auto``; then a copy whose proxy the pilot chose."""
    options: Any = strategy.options
    if options.proxy != AUTO:
        return strategy
    from hpsearch.scoring.auto import choose_proxy

    config = pilot_config(strategy, data)
    size = len(config.depths) * len(config.widths) * len(config.activations)
    m = min(options.pilot_size, size)
    if m < 4:
        raise ConfigError(f"{strategy.name}: proxy auto needs a pilot of at least 4 architectures but the space "
                          f"holds {size}: name a proxy (e.g. proxy: naswot)")
    logger.info("%s: proxy auto: training a pilot of %d architectures on the training snapshots %s, validated on %s",
                strategy.name, m, list(data.split.train), list(data.split.validation))
    choice = choose_proxy(config, m=m, split=data.split)
    logger.info("%s: proxy auto chose %r: its scores rank the %d trained pilot architectures best by their "
                "validation errors (Kendall tau %+.3f; pilot training %.1f s)", strategy.name, choice.name,
                choice.m, choice.pilot_tau, choice.pilot_training_seconds)
    from hpsearch.scoring.proxy_report import calibration_table

    logger.info("%s: proxy auto pilot table (Kendall tau of score against validation error, most negative "
                "best):\n%s", strategy.name, calibration_table(choice.pilot))
    settled = options.model_copy(update={"proxy": choice.name})
    return type(strategy)(strategy.space, settled, strategy.context)

