"""Trial kinds: the functions a trial can run, declared by the strategies and schedulers that need them.

A trial config names its kind in ``_kind`` (default ``"train"``, the built-in training). A
strategy that needs another kind of trial (NASWOT's chunked scoring) declares it in
:meth:`hpsearch.config.strategy.Strategy.trial_kinds`; a scheduler plug-in that needs something
done around a training (the NASWOT pruner's score-first) declares a :class:`TrialWrapper` in
``trial_wrappers``. The runner collects them into the study's trial settings; the core trainable
dispatches by name and knows no kind but training.

Kind functions must be module-level functions (or ``functools.partial`` of them): they travel
to the Ray workers pickled by reference.

Example, a kind that reports the number of hyperparameters of a config::

    def count(config: dict[str, Any], context: TrialContext) -> dict[str, Any]:
        return {"n_hyperparameters": len(context.parameters(config)), "status": "completed"}

    class Counting(Strategy):
        def trial_kinds(self) -> Mapping[str, TrialKind]:
            return {"count": TrialKind(count, description="count the hyperparameters")}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpsearch.config.experiment import NaswotConfig, TrainingConfig

#: The kind of a trial config without ``_kind``: train the configuration and report its error.
TRAIN_KIND = "train"

Report = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrialContext:
    """What a kind function gets besides the trial config: the node's data, the study's settings,
    and how to report. Built fresh in the worker for every trial (never pickled)."""

    #: training and validation snapshots of the node's shard actor (no test snapshot)
    data: Any
    #: values of every hyperparameter a trial config does not name
    defaults: Mapping[str, Any]
    training: TrainingConfig
    naswot: NaswotConfig
    #: trainings per configuration (averaged by the built-in training kind)
    repeats: int
    #: the experiment seed (trial seeds are ``seed + _seed + repeat``)
    seed: int
    #: torch device the trial trains on
    device: str
    #: send an intermediate result to Tune (e.g. one epoch)
    report: Report
    #: add fields to every later report of this trial, its final or failed result included
    keep: Report

    def parameters(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The full hyperparameters of a trial config: the defaults, overridden by its own values."""
        return trial_parameters(config, self.defaults)


def trial_parameters(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The full hyperparameters of a trial: defaults, overridden by the trial's own values."""
    return {**defaults, **{k: v for k, v in config.items() if not k.startswith("_")}}


#: Runs one trial of a kind and returns its final result (``status`` included).
TrialFunction = Callable[[dict[str, Any], TrialContext], dict[str, Any]]
#: The fields a kind adds to a failed result, from the config and the failure's reason.
FailureFields = Callable[[dict[str, Any], str], dict[str, Any]]
#: Runs a trial around the kind it wraps (the last argument).
WrapperFunction = Callable[[dict[str, Any], TrialContext, TrialFunction], dict[str, Any]]


def no_failure_fields(config: dict[str, Any], reason: str) -> dict[str, Any]:
    """A failed trial of this kind reports only ``status`` and ``reason``."""
    return {}


@dataclass(frozen=True)
class TrialKind:
    """A kind of trial: the function that runs it, and the fields its failed result carries
    (e.g. one NaN score per candidate, so a searcher reads a failed chunk like any other)."""

    run: TrialFunction
    failure: FailureFields = no_failure_fields
    description: str = ""


@dataclass(frozen=True)
class TrialWrapper:
    """Something done around every trial of the kind ``wraps`` (e.g. score before training)."""

    run: WrapperFunction
    wraps: str = TRAIN_KIND
    description: str = ""


@dataclass(frozen=True)
class Wrapped:
    """The trial function `outer` run around `inner`; both module-level functions (or Wrapped), so it
    pickles by reference and compares by value."""

    outer: WrapperFunction
    inner: TrialFunction

    def __call__(self, config: dict[str, Any], context: TrialContext) -> dict[str, Any]:
        return self.outer(config, context, self.inner)
