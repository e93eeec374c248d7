"""The ``proxy`` option of the NASWOT strategies: which training-free score ranks the architectures.

Default: :data:`hpsearch.scoring.proxies.DEFAULT_PROXY` (one constant for every NASWOT strategy and
the naswot-pruner; evidence from ``hpsearch proxy-study`` sets it, see its docstring). Any name of
the proxy registry (:data:`hpsearch.scoring.proxies.PROXIES`, plug-ins and aliases included): the
paper's exact choice is ``naswot-paper`` (the same as ``naswot``, which keeps meaning the paper's
sign so that saved studies and experiment files rank as they did), its opposite sign ``naswot-v1``.
``auto``: before the search, a small pilot of ``pilot_size`` architectures of the search space is
trained on the search's training snapshots and evaluated on its validation snapshots (never a test
snapshot: the search split holds none), and the single proxy whose scores rank the pilot's
validation LDOS RMSE best (most negative Kendall tau, and better than ``params``:
:func:`hpsearch.scoring.auto.choose_proxy`) scores the candidates. Ensembles are not offered: score
trials rank chunk by chunk, and a rank average needs every candidate at once.

Every study logs the proxy and its sign once when the strategy is prepared (INFO), and records both
as MLflow params (``proxy``, ``proxy_sign``).
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


def check_proxy(proxy: str, auto: bool = True) -> str:
    """`proxy` when it is a registered proxy or alias (or ``auto`` when allowed); ConfigError listing
    the known names."""
    from hpsearch.scoring.proxies import PROXIES

    if proxy == AUTO and not auto:
        raise ConfigError("proxy auto is offered by the naswot strategies (a pilot before the search); the "
                          "naswot-pruner needs a named proxy, e.g. the one a naswot study's log chose")
    if proxy != AUTO and proxy not in PROXIES:
        raise ConfigError(f"proxy {proxy!r} is not available; known: "
                          f"{', '.join([*PROXIES.known(), *([AUTO] if auto else [])])}")
    return proxy


def proxy_params(proxy: str, prefix: str = "") -> dict[str, str]:
    """The MLflow params of a study's proxy: its name and, in words, its sign."""
    from hpsearch.scoring.proxies import proxy_sign

    sign = "chosen on a trained pilot before the search" if proxy == AUTO else proxy_sign(proxy)
    return {f"{prefix}proxy": proxy, f"{prefix}proxy_sign": sign}


def log_proxy(name: str, proxy: str) -> None:
    """The one INFO line of a study's preparation that says which proxy ranks and with which sign."""
    from hpsearch.scoring.proxies import DEFAULT_PROXY, proxy_sign

    default = " (the default, DEFAULT_PROXY)" if proxy == DEFAULT_PROXY else ""
    logger.info("%s: ranking architectures by proxy %r%s: %s; the paper's exact choice is proxy: naswot-paper",
                name, proxy, default, proxy_sign(proxy))


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
        log_proxy(strategy.name, options.proxy)
        return strategy
    from hpsearch.scoring.auto import choose_proxy

    config = pilot_config(strategy, data)
    size = len(config.depths) * len(config.widths) * len(config.activations)
    m = min(options.pilot_size, size)
    if m < 4:
        from hpsearch.scoring.proxies import DEFAULT_PROXY

        raise ConfigError(f"{strategy.name}: proxy auto needs a pilot of at least 4 architectures but the space "
                          f"holds {size}: name a proxy (e.g. proxy: {DEFAULT_PROXY})")
    logger.info("%s: proxy auto: training a pilot of %d architectures on the training snapshots %s, validated on %s",
                strategy.name, m, list(data.split.train), list(data.split.validation))
    choice = choose_proxy(config, m=m, split=data.split)
    logger.info("%s: proxy auto chose %r: its scores rank the %d trained pilot architectures best by their "
                "validation LDOS RMSE, and better than params (Kendall tau %+.3f; pilot training %.1f s)",
                strategy.name, choice.name, choice.m, choice.pilot_tau, choice.pilot_training_seconds)
    from hpsearch.scoring.proxy_report import calibration_table

    logger.info("%s: proxy auto pilot table (Kendall tau of score against validation LDOS RMSE, most negative "
                "best; params and both NASWOT signs always among them):\n%s", strategy.name,
                calibration_table(choice.pilot))
    log_proxy(strategy.name, choice.name)
    settled = options.model_copy(update={"proxy": choice.name})
    return type(strategy)(strategy.space, settled, strategy.context)

