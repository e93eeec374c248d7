"""Shared machinery of the stateful searchers (direct, OAT, NASWOT): plain-data state,
save/restore, reading a trial's objective, and the discrete levels of a space.

A searcher keeps everything it needs to go on in ``self._state`` (plain Python data:
dicts, lists, tuples, numbers, strings, bytes), which :meth:`StateSearcher.save` pickles
and :meth:`StateSearcher.restore` loads, so ``hpsearch resume`` continues a study where it
stopped. Trials still pending at save time run again under their own ids after a restore and
complete into the restored state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import tempfile
from typing import Any

from ray.tune.search import Searcher

from hpsearch.config.space import SearchSpace, Value
from hpsearch.config.strategy import METRIC, MODE, StrategyOptions
from hpsearch.errors import ConfigError

logger = logging.getLogger(__name__)

#: The most levels one hyperparameter may have for the level-based strategies (direct, OAT).
MAX_LEVELS = 64
_FORMAT = 1


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


def fingerprint(*parts: Any) -> str:
    """A short stable hash of the study's definition (space, options, seed), kept with the state
    so that a restore into a changed experiment is refused instead of going on with garbage."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StateSearcher(Searcher):
    """A Ray Tune Searcher whose whole state is the plain-data dict ``self._state``.

    Subclasses set the initial state in ``_initial_state()`` and implement ``suggest`` and
    ``_complete``; this base handles unknown trial ids, failed trials, save and restore.
    """

    def __init__(
        self,
        space: SearchSpace,
        options: StrategyOptions,
        *,
        seed: int = 0,
        metric: str = METRIC,
        mode: str = MODE,
    ) -> None:
        # metric=None keeps Tune's strict metric check off the per-epoch reports (PITFALLS.md)
        super().__init__(metric=None, mode=None)
        self._space = space
        self._options = options
        self._seed = seed
        self._objective_metric = metric
        self._objective_mode = mode
        self._state: dict[str, Any] = self._initial_state()
        self._state["fingerprint"] = self._fingerprint()

    # -- to implement --------------------------------------------------------------------------
    def _initial_state(self) -> dict[str, Any]:
        """The state of a study that has not started; must hold a "pending" dict."""
        return {"pending": {}, "history": []}

    def _complete(self, info: Any, value: float | None, result: dict[str, Any] | None) -> None:
        """A trial registered with `info` finished with objective `value` (None: failed) and its
        last `result` (None when the trial errored)."""
        raise NotImplementedError

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
        pending = self._state["pending"]
        if trial_id not in pending:
            logger.warning("%s: ignoring the completion of unknown trial %s", type(self).__name__, trial_id)
            return
        info = pending.pop(trial_id)
        value = self.objective_value(result, error)
        self._complete(info, value, None if error else result)

    def save(self, checkpoint_path: str) -> None:
        self._before_save()
        payload = {"format": _FORMAT, "searcher": type(self).__name__, "state": self._state}
        directory = os.path.dirname(os.path.abspath(checkpoint_path))
        handle, tmp = tempfile.mkstemp(prefix=".searcher-", dir=directory)
        try:
            with os.fdopen(handle, "wb") as stream:
                pickle.dump(payload, stream, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, checkpoint_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as stream:
            payload = pickle.load(stream)
        self.set_state(payload["state"], saved_by=payload.get("searcher"))

    def get_state(self) -> dict[str, Any]:
        self._before_save()
        return pickle.loads(pickle.dumps(self._state))

    def set_state(self, state: dict[str, Any], saved_by: str | None = None) -> None:
        if saved_by is not None and saved_by != type(self).__name__:
            raise ConfigError(
                f"the saved searcher state belongs to {saved_by}, not {type(self).__name__}: "
                "the experiment's strategy changed since the study was saved; start a new study"
            )
        if state.get("fingerprint") != self._fingerprint():
            raise ConfigError(
                f"{type(self).__name__}: the search space, options or seed changed since the study "
                "was saved; resume with the original experiment file or start a new study"
            )
        self._state = pickle.loads(pickle.dumps(state))
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
        self._state["pending"][trial_id] = info

    def _record(self, phase: str, config: dict[str, Any], value: float | None) -> None:
        self._state["history"].append({"phase": phase, "config": dict(config), "value": value})

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every finished trial: {"phase", "config", "value"} (value None: failed), in order."""
        return [dict(r) for r in self._state["history"]]

    @property
    def finished(self) -> bool:
        return bool(self._state.get("finished", False))
