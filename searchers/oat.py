"""Orthogonal array tuning (OAT): the rows of a strength-2 orthogonal array, then range analysis.

Every hyperparameter is a factor with its discrete levels (mixed levels allowed). All rows of
the array run as trials at once (the parallelism is the number of rows, paper table 1); the
range analysis then takes, per factor, the mean objective of the rows at each level: the best
mean gives the factor's optimum level, the range R = max - min of the level means its
importance. The combination of optimum levels is trained as one more trial
(``_phase: "optimum"``), then the searcher says FINISHED. When no array of the smallest
possible size exists, a larger one is used (see :mod:`searchers._oa`).

Example YAML::

    strategy: {name: oat}
    search_space:
      n_layers: [1, 2, 3]
      width: [32, 64, 128]
      activation: [ReLU, LeakyReLU, Sigmoid]
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, levels: [1.0e-4, 1.0e-3, 1.0e-2]}
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field
from ray.tune.search import Searcher

from hpsearch.config.strategy import Strategy, StrategyOptions
from hpsearch.errors import ConfigError
from ._base import Best, SearchState, StateSearcher, best_from_history, discrete_levels
from ._oa import OrthogonalArray, orthogonal_array

logger = logging.getLogger(__name__)


class OATOptions(StrategyOptions):
    """Options of orthogonal array tuning."""

    #: seconds oapackage may search for an array smaller than the linear construction
    search_seconds: float = Field(default=2.0, gt=0.0, le=120.0)


def range_analysis(
    rows: Sequence[Sequence[int]],
    n_levels: Sequence[int],
    values: Sequence[float | None],
    mode: str = "min",
) -> dict[str, Any]:
    """Level means, optimum level and range R per factor from the rows' objectives.

    Failed rows (value None) are left out; a level without any successful row has mean None and
    is never the optimum. Returns plain data: ``level_means`` (per factor, per level),
    ``best_level`` (per factor, level index or None), ``ranges`` (per factor, R = max - min of
    the level means) and ``importance`` (factor indices, largest R first).
    """
    sign = 1.0 if mode == "min" else -1.0
    level_means: list[list[float | None]] = []
    best_level: list[int | None] = []
    ranges: list[float] = []
    for factor, count in enumerate(n_levels):
        sums, hits = [0.0] * count, [0] * count
        for row, value in zip(rows, values):
            if value is not None:
                sums[row[factor]] += value
                hits[row[factor]] += 1
        means = [sums[i] / hits[i] if hits[i] else None for i in range(count)]
        known = [(sign * m, i) for i, m in enumerate(means) if m is not None]
        level_means.append(means)
        best_level.append(min(known)[1] if known else None)
        finite = [m for m in means if m is not None]
        ranges.append(max(finite) - min(finite) if finite else math.nan)
    importance = sorted(
        range(len(n_levels)), key=lambda f: (-(ranges[f] if math.isfinite(ranges[f]) else -1.0), f)
    )
    return {"level_means": level_means, "best_level": best_level, "ranges": ranges, "importance": importance}


class OATPhase(str, Enum):
    """Where an OAT study stands."""

    ROWS = "rows"  # the rows of the array run
    OPTIMUM = "optimum"  # analysed; the optimum is next
    OPTIMUM_RUNNING = "optimum-running"
    DONE = "done"


@dataclass
class RowTrial:
    """A pending trial of one row of the array."""

    row: int
    kind: Literal["row"] = "row"


@dataclass
class OptimumTrial:
    """The pending trial of the optimum's combination of levels."""

    kind: Literal["optimum"] = "optimum"


OATTrial = Annotated[RowTrial | OptimumTrial, Field(discriminator="kind")]


@dataclass
class Analysis:
    """The range analysis by factor index (see :func:`range_analysis`)."""

    level_means: list[list[float | None]]
    best_level: list[int | None]
    ranges: list[float]
    importance: list[int]


@dataclass
class OATState(SearchState):
    """The array's rows, the rows still to suggest, each row's objective, the analysis."""

    pending: dict[str, OATTrial] = field(default_factory=dict)
    phase: OATPhase = OATPhase.ROWS
    rows: list[list[int]] | None = None
    method: str | None = None
    queue: list[int] = field(default_factory=list)
    values: dict[int, float | None] = field(default_factory=dict)
    analysis: Analysis | None = None
    optimum: list[int] | None = None
    optimum_value: float | None = None


class OATSearcher(StateSearcher[OATOptions, OATState]):
    """Suggests every row of the array, then None until all finished, then the optimum, then
    FINISHED. ``analysis`` holds the range analysis once the rows are done."""

    @functools.cached_property
    def _levels(self) -> dict[str, tuple[Any, ...]]:
        return discrete_levels(self._space, "oat")

    def _initial_state(self) -> OATState:
        return OATState()

    def _build(self) -> None:
        array: OrthogonalArray = orthogonal_array(
            tuple(len(v) for v in self._levels.values()), self._seed, self._options.search_seconds
        )
        self.state.rows = [list(r) for r in array.rows]
        self.state.method = array.method
        self.state.queue = list(range(array.n_rows))
        logger.info("OAT: %d factors, levels %s -> %d rows (%s)", len(self._levels),
                    array.levels, array.n_rows, array.method)

    def _config(self, row: Sequence[int], phase: str) -> dict[str, Any]:
        config: dict[str, Any] = {name: values[row[i]] for i, (name, values) in enumerate(self._levels.items())}
        config.update(_kind="train", _phase=phase)
        return config

    def _row(self, index: int) -> list[int]:
        assert self.state.rows is not None, "rows are built at the first suggest"
        return self.state.rows[index]

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if state.finished:
            return Searcher.FINISHED
        if state.rows is None:
            self._build()
        if state.queue:
            row = state.queue.pop(0)
            self._register(trial_id, RowTrial(row))
            return self._config(self._row(row), "oa")
        if state.pending:
            return None
        if state.phase is OATPhase.ROWS:
            self._analyse()
        if state.phase is OATPhase.OPTIMUM and state.optimum is not None:
            state.phase = OATPhase.OPTIMUM_RUNNING
            self._register(trial_id, OptimumTrial())
            return self._config(state.optimum, "optimum")
        state.finished = True
        return Searcher.FINISHED

    def _analyse(self) -> None:
        state = self.state
        rows = state.rows or []
        values = [state.values.get(i) for i in range(len(rows))]
        analysis = Analysis(**range_analysis(rows, [len(v) for v in self._levels.values()], values,
                                             self._objective_mode))
        state.analysis = analysis
        state.phase = OATPhase.OPTIMUM
        best_level = [b for b in analysis.best_level if b is not None]
        if len(best_level) < len(analysis.best_level):
            logger.error("OAT: every row failed for some level; no optimum to train")
            state.optimum = None
            return
        state.optimum = best_level
        names = list(self._levels)
        logger.info("OAT optimum %s; importance %s", self._config(state.optimum, "optimum"),
                    [names[f] for f in analysis.importance])

    def _complete(self, info: OATTrial, value: float | None, result: dict[str, Any] | None) -> None:
        state = self.state
        if isinstance(info, OptimumTrial):
            assert state.optimum is not None, "the optimum trial runs only once the optimum is known"
            state.optimum_value = value
            state.phase = OATPhase.DONE
            self._record("optimum", self._config(state.optimum, "optimum"), value)
            return
        state.values[info.row] = value
        self._record("oa", self._config(self._row(info.row), "oa"), value)

    # -- results -------------------------------------------------------------------------------
    @property
    def rows(self) -> list[dict[str, Any]] | None:
        """The array's rows as hyperparameter dicts (None before the first suggest)."""
        if self.state.rows is None:
            return None
        return [self._config(r, "oa") for r in self.state.rows]

    @property
    def analysis(self) -> dict[str, Any] | None:
        """The range analysis by factor name: level_means, best_level (a value), ranges,
        importance (names, most important first); None before every row finished."""
        raw = self.state.analysis
        if raw is None:
            return None
        names, levels = list(self._levels), list(self._levels.values())
        return {
            "level_means": {n: list(m) for n, m in zip(names, raw.level_means)},
            "best_level": {
                n: (None if b is None else levels[i][b]) for i, (n, b) in enumerate(zip(names, raw.best_level))
            },
            "ranges": dict(zip(names, raw.ranges)),
            "importance": [names[f] for f in raw.importance],
        }

    def best(self) -> Best | None:
        """The trained optimum when it succeeded, else the best row; None if nothing succeeded."""
        return best_from_history(self.state.history, self.sort_key,
                                 tiers=(lambda r: r.phase == "optimum", lambda r: True))


class OATStrategy(Strategy):
    """Orthogonal array tuning with range analysis (paper: OAT)."""

    name = "oat"
    description = "Orthogonal array tuning: all rows of a strength-2 array, range analysis, train the optimum."
    Options = OATOptions
    options: OATOptions

    def validate(self) -> None:
        levels = discrete_levels(self.space, self.name)  # ConfigError names a continuous parameter
        array = orthogonal_array(tuple(len(v) for v in levels.values()), self.context.seed,
                                 self.options.search_seconds)
        needed = array.n_rows + 1
        budget = self.context.max_trials
        if budget is not None and budget < needed:
            raise ConfigError(
                f"OAT needs {needed} trials ({array.n_rows} rows of the orthogonal array for levels "
                f"{array.levels} plus the optimum) but budget.max_trials is {budget}: raise "
                "max_trials or use fewer factors/levels"
            )

    def make_searcher(self) -> OATSearcher:
        return OATSearcher(self.space, self.options, seed=self.context.seed,
                           metric=self.context.metric, mode=self.context.mode)

    def num_samples(self) -> int:
        return -1
