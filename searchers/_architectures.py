"""The architectures the NASWOT strategies score: the discrete levels of the architecture part of
the space, and the distinct networks among its points (all, or a seeded sample)."""

from __future__ import annotations

import functools
import logging
import math
import random
import re
from typing import Any

from hpsearch.config.space import SearchSpace, Value
from hpsearch.errors import ConfigError

logger = logging.getLogger(__name__)

_PER_LAYER = re.compile(r"^(?:width|activation)_(\d+)$")
_OVERSAMPLE = 4


def architecture_levels(space: SearchSpace, strategy: str) -> dict[str, tuple[Value, ...]]:
    """The discrete levels of the architecture hyperparameters; ConfigError when there are none
    or one is a continuous range without levels."""
    arch = space.subset("architecture")
    if arch is None:
        raise ConfigError(
            f"the {strategy} strategy scores architectures, but the search space {space.names} has "
            "no architecture hyperparameter (n_layers, width, activation, dropout, width_<i>, "
            "activation_<i>): add one, or use grid/tpe for optimisation hyperparameters"
        )
    return {name: tuple(arch.levels(name)) for name in arch.names}


def validate_architecture_space(space: SearchSpace, strategy: str) -> None:
    """ConfigError as :func:`architecture_levels`; a warning for levels NASWOT cannot tell apart."""
    levels = architecture_levels(space, strategy)
    if len(levels.get("dropout", ())) > 1:
        logger.warning(
            "%s: dropout does not change the NASWOT score (networks are scored in eval mode), so "
            "its first level %r wins every tie; put dropout in `fixed` instead", strategy, levels["dropout"][0]
        )


def _canonical(point: dict[str, Value]) -> dict[str, Value]:
    """The point without per-layer values of layers the network does not have."""
    n_layers = point.get("n_layers")
    if not isinstance(n_layers, int) or isinstance(n_layers, bool):
        return point
    kept = {}
    for name, value in point.items():
        match = _PER_LAYER.match(name)
        if match is None or int(match.group(1)) <= n_layers:
            kept[name] = value
    return kept


@functools.lru_cache(maxsize=16)
def _candidates_cached(levels_items: tuple[tuple[str, tuple[Value, ...]], ...], max_candidates: int,
                       seed: int) -> tuple[tuple[tuple[str, Value], ...], ...]:
    names = [n for n, _ in levels_items]
    levels = [v for _, v in levels_items]
    size = math.prod(len(v) for v in levels)
    if size <= max_candidates:
        indices: Any = range(size)
    else:
        indices = random.Random(seed).sample(range(size), min(size, _OVERSAMPLE * max_candidates))
    out: list[tuple[tuple[str, Value], ...]] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for index in indices:
        point: dict[str, Value] = {}
        for name, values in zip(reversed(names), reversed(levels)):  # the last name varies fastest
            index, digit = divmod(index, len(values))
            point[name] = values[digit]
        point = _canonical({name: point[name] for name in names})
        key = tuple((k, repr(v)) for k, v in point.items())
        if key not in seen:
            seen.add(key)
            out.append(tuple(point.items()))
            if len(out) >= max_candidates:
                break
    return tuple(out)


def architecture_candidates(space: SearchSpace, max_candidates: int, seed: int = 0) -> list[dict[str, Value]]:
    """The distinct architectures to score: all of them in grid order (the last parameter varies
    fastest) when at most `max_candidates`, else a seeded random sample of that many."""
    levels = architecture_levels(space, "naswot")
    found = _candidates_cached(tuple(levels.items()), max_candidates, seed)
    return [dict(point) for point in found]
