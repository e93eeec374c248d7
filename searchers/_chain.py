"""A Ray Tune scheduler made of several, asked in order: e.g. the NASWOT pruner, then ASHA.

Why a wrapper: Tune takes one scheduler, and hands it the study's *final* metric through
``set_search_properties``; a multi-fidelity scheduler (ASHA, Hyperband, median stopping) must
instead judge trials on a metric reported every epoch. Each child therefore comes with the keys
a result must hold for that child to see it (``("epoch", "val_loss")`` for the epoch-based
ones, ``()`` for the NASWOT pruner, which reads its own key). Reports without them (the NASWOT
report before training, the final report after it) are never shown to that child, so Ray's
schedulers never index a missing key.

Call order for every result: the children in order; the first that says STOP (or PAUSE) decides
and the rest are not asked for that result; every child hears of every completion, error and
removal. ``choose_trial_to_run`` is the last child's (Hyperband orders its paused trials).

Tune never calls a scheduler's ``save``/``restore`` (it pickles the scheduler once, when the
study starts): after ``hpsearch resume`` a child starts with empty records, and trials that had
finished before the interruption are not re-added to the epoch-based children.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

logger = logging.getLogger(__name__)

_FINISHED = (Trial.TERMINATED, Trial.ERROR)


class ChainedScheduler(TrialScheduler):
    """Children asked in order; each sees only the results holding its `keys`.

    Example::

        ChainedScheduler([(NaswotPruner(options), ()),
                          (ASHAScheduler(time_attr="epoch", metric="val_loss", mode="min"),
                           ("epoch", "val_loss"))])
    """

    def __init__(self, children: Sequence[tuple[TrialScheduler, tuple[str, ...]]]) -> None:
        super().__init__()
        if not children:
            raise ValueError("a ChainedScheduler needs at least one child scheduler")
        flat: list[tuple[TrialScheduler, tuple[str, ...]]] = []
        for child, keys in children:
            if isinstance(child, ChainedScheduler):
                flat.extend(child.children)
            else:
                flat.append((child, tuple(keys)))
        self.children = flat
        #: per child, per trial id: the last result that held the child's keys
        self._last_seen: list[dict[str, dict[str, Any]]] = [{} for _ in flat]

    # -- Tune API ------------------------------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """The study's final metric reaches only the children that judge on no metric of their own."""
        for child, _ in self.children:
            if not getattr(child, "_metric", None):
                child.set_search_properties(metric, mode, **spec)
        return True

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        for child, keys in self.children:
            if keys and trial.status in _FINISHED:
                continue  # a trial restored after it finished: nothing left for an epoch scheduler
            child.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        for index, (child, keys) in enumerate(self.children):
            if not all(key in result for key in keys):
                continue
            if keys:
                self._last_seen[index][trial.trial_id] = result
            decision = child.on_trial_result(tune_controller, trial, result)
            if decision != TrialScheduler.CONTINUE:
                logger.debug("%s: %s for trial %s", type(child).__name__, decision, trial.trial_id)
                return decision
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        for index, (child, keys) in enumerate(self.children):
            if not keys:
                child.on_trial_complete(tune_controller, trial, result)
                continue
            seen = self._last_seen[index].pop(trial.trial_id, None)
            if all(key in result for key in keys):
                seen = result
            if seen is None:
                child.on_trial_remove(tune_controller, trial)  # finished before its first epoch
            else:
                child.on_trial_complete(tune_controller, trial, seen)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        for index, (child, _) in enumerate(self.children):
            self._last_seen[index].pop(trial.trial_id, None)
            child.on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        for index, (child, _) in enumerate(self.children):
            self._last_seen[index].pop(trial.trial_id, None)
            child.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        return self.children[-1][0].choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return " | ".join(child.debug_string() for child, _ in self.children)

    def save(self, checkpoint_path: str) -> None:
        raise NotImplementedError("Tune does not save scheduler state; see the module docstring")

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError("Tune does not save scheduler state; see the module docstring")
