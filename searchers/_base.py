"""Shared machinery of the stateful searchers: a typed state saved as JSON, the trial protocol of
Ray Tune's Searcher (unknown ids, failed trials), reading a trial's objective, the best trial of
the history, and the discrete levels of a space.

A searcher keeps everything it needs to go on in ``self.state``, a dataclass of its own (typed
fields, enum phases, typed pending-trial records). :meth:`StateSearcher.save` writes it as JSON
with a format version, the searcher's class name and a fingerprint of the experiment, and
:meth:`StateSearcher.restore` reads it back, so ``hpsearch resume`` continues a study where it
stopped. Trials still pending at save time run again under their own ids after a restore and
complete into the restored state. Ray Tune's own experiment state (which pickles the searcher
object) stays Ray's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError
from ray.tune.search import Searcher

from hpsearch.config.space import SearchSpace, Value
from hpsearch.config.strategy import METRIC, MODE, StrategyOptions
from hpsearch.errors import ConfigError
from ._statefile import STATE_FORMAT, check_saved_by, fingerprint, read_state_file, write_state_file

__all__ = [
    "MAX_LEVELS", "STATE_FORMAT", "Best", "Record", "SearchState", "StateSearcher", "best_from_history",
    "check_saved_by", "discrete_levels", "fingerprint", "public", "read_state_file", "write_state_file",
]

logger = logging.getLogger(__name__)

#: The most levels one hyperparameter may have for the level-based strategies (direct, OAT).
MAX_LEVELS = 64


def discrete_levels(space: SearchSpace, strategy: str) -> dict[str, tuple[Value, ...]]:
    """The levels of every parameter, in space order; ConfigError naming a parameter that has none
    (a continuous float range without `levels`) or too many to try one by one."""
    levels: dict[str, tuple[Value, ...]] = {}
    for name in space.names:
        values = space.levels(name)  # ConfigError for a continuous float range without levels
        if len(values) > MAX_LEVELS:
            raise ConfigError(
                f"hyperparameter {name!r} has {len(values)} levels, more than the {MAX_LEVELS} the "
                f"{strategy} strategy tries one by one: give it `levels: [...]` (a few values)"
            )
        levels[name] = tuple(values)
    return levels


# -- the state ---------------------------------------------------------------------------------
@dataclass
class Record:
    """One finished trial: the phase it belonged to, its config, its objective (None: failed)."""

    phase: str
    config: dict[str, Any]
    value: float | None


@dataclass
class SearchState:
    """What every stateful searcher keeps; a strategy subclasses it with its own fields and
    redeclares ``pending`` with the type of its pending-trial records."""

    #: trial id -> what the searcher needs to know when that trial completes
    pending: dict[str, Any] = field(default_factory=dict)
    #: every finished trial, in completion order
    history: list[Record] = field(default_factory=list)
    finished: bool = False


@dataclass(frozen=True)
class Best:
    """The best trial (or group of repeats) of a history: public config and objective."""

    config: dict[str, Any]
    value: float


def public(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the protocol keys (``_kind``, ``_phase``, ``_seed``, ...)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def best_from_history(
    history: Iterable[Record],
    sort_key: Callable[[float | None], float],
    *,
    tiers: Sequence[Callable[[Record], bool]] = (),
    average_repeats: bool = False,
) -> Best | None:
    """The best successful record (smallest `sort_key`, the first on ties) of the first of `tiers`
    that holds one (no tiers: all records); None when nothing succeeded. With `average_repeats`,
    records of one public config are averaged first (repeats of a candidate)."""
    done = [(r, r.value) for r in history if r.value is not None]
    for keep in tiers or (lambda r: True,):
        chosen = [(r, value) for r, value in done if keep(r)]
        if not chosen:
            continue
        if not average_repeats:
            record, value = min(chosen, key=lambda item: sort_key(item[1]))
            return Best(public(record.config), value)
        groups: dict[str, tuple[dict[str, Any], list[float]]] = {}
        for record, value in chosen:
            config = public(record.config)
            groups.setdefault(json.dumps(config, sort_keys=True, default=repr), (config, []))[1].append(value)
        means = [(config, sum(values) / len(values)) for config, values in groups.values()]
        config, mean = min(means, key=lambda item: sort_key(item[1]))
        return Best(config, mean)
    return None


OptionsT = TypeVar("OptionsT", bound=StrategyOptions)
StateT = TypeVar("StateT", bound=SearchState)


class StateSearcher(Searcher, Generic[OptionsT, StateT]):
    """A Ray Tune Searcher whose whole state is the dataclass ``self.state``.

    Call order (Ray Tune's): ``set_search_properties`` once; then ``suggest(trial_id)`` whenever
    a slot is free (a config, None to wait, or ``Searcher.FINISHED``); ``on_trial_complete`` for
    every trial suggested; ``save``/``restore`` at any point in between. Subclasses implement
    ``_initial_state``, ``suggest`` (registering each trial with ``_register``) and ``_complete``;
    this base handles unknown trial ids, failed trials, JSON save and restore, and the best trial.
    """

    def __init__(
        self,
        space: SearchSpace,
        options: OptionsT,
        *,
        seed: int = 0,
        metric: str = METRIC,
        mode: str = MODE,
    ) -> None:
        # metric=None keeps Tune's strict metric check off the per-epoch reports (PITFALLS.md)
        super().__init__(metric=None, mode=None)
        self._space = space
        self._options: OptionsT = options
        self._seed = seed
        self._objective_metric = metric
        self._objective_mode = mode
        self.state: StateT = self._initial_state()

    # -- to implement --------------------------------------------------------------------------
    def _initial_state(self) -> StateT:
        """The state of a study that has not started."""
        raise NotImplementedError

    def _complete(self, info: Any, value: float | None, result: dict[str, Any] | None) -> None:
        """A trial registered with `info` finished with objective `value` (None: failed) and its
        last `result` (None when the trial errored)."""
        raise NotImplementedError

    def best(self) -> Best | None:
        """The best trial so far (default: the best successful trial of the history)."""
        return best_from_history(self.state.history, self.sort_key)

    # -- Tune API ------------------------------------------------------------------------------
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if metric:
            self._objective_metric = metric
        if mode:
            self._objective_mode = mode
        return True

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        pending = self.state.pending
        if trial_id not in pending:
            logger.warning("%s: ignoring the completion of unknown trial %s", type(self).__name__, trial_id)
            return
        info = pending.pop(trial_id)
        value = self.objective_value(result, error)
        self._complete(info, value, None if error else result)

    def save(self, checkpoint_path: str) -> None:
        write_state_file(checkpoint_path, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(read_state_file(checkpoint_path))

    def get_state(self) -> dict[str, Any]:
        """The JSON-ready payload: format, searcher class, fingerprint and the state."""
        self._before_save()
        return {
            "format": STATE_FORMAT,
            "searcher": type(self).__name__,
            "fingerprint": self._fingerprint(),
            "state": TypeAdapter(type(self.state)).dump_python(self.state, mode="python"),
        }

    def set_state(self, payload: dict[str, Any]) -> None:
        check_saved_by(payload, type(self).__name__)
        if payload.get("fingerprint") != self._fingerprint():
            raise ConfigError(
                f"{type(self).__name__}: the search space, options or seed changed since the study "
                "was saved; resume with the original experiment file or start a new study"
            )
        try:
            state = TypeAdapter(type(self.state)).validate_python(payload["state"])
        except (KeyError, ValidationError) as exc:
            raise ConfigError(f"{type(self).__name__}: the saved searcher state is damaged: {exc}") from None
        self.state = state
        self._after_restore()

    def _before_save(self) -> None:
        """Put what lives outside the state into it (default: nothing)."""

    def _after_restore(self) -> None:
        """Rebuild what is derived from the state (default: nothing)."""

    # -- helpers -------------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        return fingerprint(
            type(self).__name__, self._space.model_dump(mode="json"),
            self._options.model_dump(mode="json"), self._seed,
        )

    def objective_value(self, result: dict[str, Any] | None, error: bool = False) -> float | None:
        """The trial's objective, or None for a failed trial (error, no result, status 'failed',
        missing or non-finite metric)."""
        if error or not result or result.get("status") == "failed":
            return None
        raw = result.get(self._objective_metric)
        if raw is None or isinstance(raw, bool):
            return None
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    def sort_key(self, value: float | None) -> float:
        """Smaller is better: the objective oriented by the mode; failed trials last."""
        if value is None:
            return math.inf
        return value if self._objective_mode == "min" else -value

    def _register(self, trial_id: str, info: Any) -> None:
        self.state.pending[trial_id] = info

    def _record(self, phase: str, config: dict[str, Any], value: float | None) -> None:
        self.state.history.append(Record(phase, dict(config), value))

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every finished trial: {"phase", "config", "value"} (value None: failed), in order."""
        return [dataclasses.asdict(r) for r in self.state.history]

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def best_config(self) -> dict[str, Any] | None:
        """The hyperparameters of :meth:`best` (None when nothing succeeded)."""
        best = self.best()
        return None if best is None else dict(best.config)

    @property
    def best_value(self) -> float | None:
        """The objective of :attr:`best_config`'s trial."""
        best = self.best()
        return None if best is None else best.value
