"""The search space: named hyperparameters, each categorical, an integer or a float range.

YAML shorthand: a plain list is a categorical parameter::

    search_space:
      n_layers: {type: int, low: 1, high: 4}
      width: [32, 64, 128]
      activation: [ReLU, LeakyReLU, Sigmoid]
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true, levels: [1.0e-4, 1.0e-3, 1.0e-2]}
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hpsearch.errors import ConfigError

Value = Union[bool, int, float, str]

#: Hyperparameters that define the network (NASWOT can rank these without training).
ARCHITECTURE_PARAMETERS = ("n_layers", "width", "activation", "dropout")
#: Hyperparameters of the optimisation (need training to judge).
OPTIMISATION_PARAMETERS = (
    "learning_rate",
    "batch_size",
    "patience",
    "optimizer",
    "weight_decay",
    "min_delta",
    "max_epochs",
    "lr_schedule",
    "points_per_epoch",
    "validation_points",
)
_PER_LAYER = re.compile(r"^(width|activation)_(\d+)$")


def parameter_kind(name: str) -> Literal["architecture", "optimisation"]:
    """Which family a hyperparameter name belongs to; ConfigError for unknown names."""
    if name in ARCHITECTURE_PARAMETERS or _PER_LAYER.match(name):
        return "architecture"
    if name in OPTIMISATION_PARAMETERS:
        return "optimisation"
    known = ", ".join(ARCHITECTURE_PARAMETERS + OPTIMISATION_PARAMETERS)
    raise ConfigError(
        f"unknown hyperparameter {name!r}: use one of {known}, or width_<i> / activation_<i> "
        "for per-layer values (layer index from 1)"
    )


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Categorical(_Frozen):
    """A choice among listed values (also the levels used by grid and OAT)."""

    type: Literal["categorical"] = "categorical"
    values: tuple[Value, ...] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _unique(cls, values: tuple[Value, ...]) -> tuple[Value, ...]:
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"categorical values must be unique, got {list(values)}")
        return values

    def discrete_levels(self) -> tuple[Value, ...]:
        return self.values

    @property
    def is_discrete(self) -> bool:
        return True


class IntRange(_Frozen):
    """Integers low..high inclusive, optionally log-uniform; `levels` for grid/OAT subsets."""

    type: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)
    levels: tuple[int, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> IntRange:
        _check_range(self.low, self.high, self.log, self.levels)
        return self

    def discrete_levels(self) -> tuple[int, ...]:
        if self.levels is not None:
            return self.levels
        return tuple(range(self.low, self.high + 1, self.step))

    @property
    def is_discrete(self) -> bool:
        return True


class FloatRange(_Frozen):
    """Reals in [low, high], optionally log-uniform; discrete only through `levels`."""

    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False
    levels: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        _check_range(self.low, self.high, self.log, self.levels)
        return self

    @property
    def is_discrete(self) -> bool:
        return self.levels is not None


def _check_range(low: float, high: float, log: bool, levels: tuple[Any, ...] | None) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"range needs finite low <= high, got low={low}, high={high}")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got low={low}")
    if levels is not None:
        if not levels:
            raise ValueError("levels, when given, must not be empty")
        outside = [v for v in levels if not low <= v <= high]
        if outside:
            raise ValueError(f"levels {outside} lie outside [{low}, {high}]")
        if len(set(levels)) != len(levels):
            raise ValueError(f"levels must be unique, got {list(levels)}")


Parameter = Annotated[Union[Categorical, IntRange, FloatRange], Field(discriminator="type")]


def _shorthand(raw: Any) -> Any:
    if isinstance(raw, (list, tuple)):
        return {"type": "categorical", "values": list(raw)}
    return raw


class SearchSpace(_Frozen):
    """Named hyperparameters; insertion order is kept (it is the order of OAT's factors)."""

    parameters: dict[str, Parameter] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _accept_mapping(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping) and "parameters" not in raw:
            raw = {"parameters": dict(raw)}
        if isinstance(raw, Mapping) and isinstance(raw.get("parameters"), Mapping):
            raw = dict(raw)
            raw["parameters"] = {k: _shorthand(v) for k, v in raw["parameters"].items()}
        return raw

    @field_validator("parameters")
    @classmethod
    def _known_names(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        if not parameters:
            raise ValueError("the search space is empty: name at least one hyperparameter")
        for name in parameters:
            parameter_kind(name)
        return parameters

    @property
    def names(self) -> list[str]:
        return list(self.parameters)

    def subset(self, kind: Literal["architecture", "optimisation"]) -> SearchSpace | None:
        """The parameters of one family, or None when the space has none of them."""
        chosen = {k: v for k, v in self.parameters.items() if parameter_kind(k) == kind}
        return SearchSpace(parameters=chosen) if chosen else None

    def levels(self, name: str) -> tuple[Value, ...]:
        """Discrete values of one parameter; ConfigError for a continuous range without levels."""
        parameter = self.parameters[name]
        if isinstance(parameter, FloatRange):
            if parameter.levels is None:
                raise ConfigError(
                    f"hyperparameter {name!r} is a continuous float range [{parameter.low}, "
                    f"{parameter.high}] without levels: give `levels: [...]` for this strategy"
                )
            return parameter.levels
        return parameter.discrete_levels()

    def is_discrete(self) -> bool:
        return all(p.is_discrete for p in self.parameters.values())

    def grid(self) -> Iterator[dict[str, Value]]:
        """Every combination of the discrete levels, in a fixed order."""
        names = self.names
        for combo in itertools.product(*(self.levels(n) for n in names)):
            yield dict(zip(names, combo))

    def grid_size(self) -> int:
        return math.prod(len(self.levels(n)) for n in self.names)
