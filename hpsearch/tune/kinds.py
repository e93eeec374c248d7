"""The built-in training kind and the registry of a study's trial kinds.

Training is one function, :func:`train_once` (one network, one seed), wrapped by
:func:`repeated` for ``repeats`` (the mean over seeds ``seed + _seed + r``). Strategies and
scheduler plug-ins add their own kinds and wrappers (:mod:`hpsearch.config.trials`);
:func:`collect_trial_kinds` puts them together for the trainable, which dispatches by name.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Mapping
from typing import Any

from hpsearch.config.experiment import network_spec, training_settings
from hpsearch.config.strategy import LDOS_METRIC, METRIC, STD_METRIC, SchedulerPlugin, Strategy
from hpsearch.config.trials import TRAIN_KIND, Report, TrialContext, TrialFunction, TrialKind, Wrapped
from hpsearch.errors import ConfigError


#: Seconds of a training trial's parts, summed over its repeats: optimiser steps, per-epoch
#: validation, and the final evaluation on every validation point (LDOS loss and band energy).
TIMING_FIELDS = ("loop_seconds", "validation_seconds", "evaluation_seconds")


def train_once(config: dict[str, Any], context: TrialContext) -> dict[str, Any]:
    """Train the configuration once (seed ``seed + _seed``), reporting every epoch; the validation
    band-energy error and the best epoch's validation LDOS loss, both on every validation point,
    when it completes."""
    from hpsearch.model import count_parameters, evaluate, train

    data = context.data
    params = context.parameters(config)
    spec = network_spec(params, data.n_features, data.n_energies)
    seed = context.seed + int(config.get("_seed", 0))

    def on_epoch(epoch: int, train_loss: float, val_loss: float) -> bool:
        context.report({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        return False

    result = train(spec, training_settings(params, context.training, seed), data, on_epoch=on_epoch,
                   device=context.device)
    out: dict[str, Any] = {"status": "completed" if result.ok else result.status, "reason": result.reason or "",
                           "training_seconds": result.seconds, "epochs": result.epochs,
                           "n_parameters": count_parameters(result.model), "loop_seconds": result.loop_seconds,
                           "validation_seconds": result.validation_seconds,
                           "evaluation_seconds": result.final_validation_seconds}
    if not result.ok:
        return out
    started = time.perf_counter()
    error = evaluate(result.model, result.scalers, data.validation_snapshots).mean_band_energy_error_mev_per_atom
    out["evaluation_seconds"] += time.perf_counter() - started
    if not math.isfinite(error):
        return {**out, "status": "diverged",
                "reason": "the predicted DOS gives no finite band energy on a validation snapshot"}
    return {**out, METRIC: float(error), LDOS_METRIC: float(result.best_val_loss)}


def _epoch_of_repeat(report: Report, repeat: int, offset: int, metrics: dict[str, Any]) -> None:
    """An epoch report of one repeat, numbered after the epochs of the repeats before it."""
    if "epoch" in metrics:
        metrics = {"epoch": offset + metrics["epoch"], "repeat": repeat,
                   **{k: v for k, v in metrics.items() if k != "epoch"}}
    report(metrics)


def repeated(config: dict[str, Any], context: TrialContext, inner: TrialFunction) -> dict[str, Any]:
    """`inner` ``repeats`` times with seeds ``_seed + r``: the mean error and its sample std over the
    repeats; the first repeat that does not complete ends the trial with its status."""
    errors: list[float] = []
    losses: list[float] = []
    seconds, epochs = 0.0, 0
    parts = dict.fromkeys(TIMING_FIELDS, 0.0)
    last: dict[str, Any] = {}
    for repeat in range(context.repeats):
        report = functools.partial(_epoch_of_repeat, context.report, repeat, epochs)
        last = inner({**config, "_seed": int(config.get("_seed", 0)) + repeat},
                     dataclasses.replace(context, report=report))
        seconds += float(last.get("training_seconds", 0.0))
        epochs += int(last.get("epochs", 0))
        for key in parts:
            parts[key] += float(last.get(key, 0.0))
        if last.get("status") != "completed":
            break
        errors.append(float(last[METRIC]))
        losses.append(float(last[LDOS_METRIC]))
    final: dict[str, Any] = {**{k: v for k, v in last.items() if k not in (METRIC, LDOS_METRIC)},
                             "training_seconds": seconds, "epochs": epochs, "repeats_done": len(errors)}
    final.update({k: v for k, v in parts.items() if k in last})
    if final.get("status") == "completed":
        final[METRIC] = sum(errors) / len(errors)
        final[LDOS_METRIC] = sum(losses) / len(losses)
        final[STD_METRIC] = sample_std(errors)
    return final


def sample_std(values: list[float]) -> float:
    """Sample standard deviation (ddof=1); 0 for a single value."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


#: The built-in kind: train ``repeats`` times and report the mean validation error.
TRAINING = TrialKind(Wrapped(repeated, train_once),
                     description="train the configuration `repeats` times; mean validation error")


def builtin_kinds() -> dict[str, TrialKind]:
    """The kinds every study knows (training)."""
    return {TRAIN_KIND: TRAINING}


def collect_trial_kinds(strategy: Strategy | None, scheduler: SchedulerPlugin | None = None) -> dict[str, TrialKind]:
    """The study's kinds: the built-in training, the strategy's and the scheduler's kinds, then their
    wrappers around the kinds they name; ConfigError for a name declared twice or a wrapper of no kind."""
    kinds = builtin_kinds()
    owners = dict.fromkeys(kinds, "hpsearch (built in)")
    plugins = [(f"strategy {p.name!r}" if isinstance(p, Strategy) else f"scheduler {p.name!r}", p)
               for p in (strategy, scheduler) if p is not None]
    for owner, plugin in plugins:
        for name, kind in plugin.trial_kinds().items():
            if name in kinds:
                raise ConfigError(f"trial kind {name!r} of {owner} is already declared by {owners[name]}: "
                                  "rename one of them")
            kinds[name], owners[name] = kind, owner
    for owner, plugin in plugins:
        for wrapper in plugin.trial_wrappers():
            inner = kinds.get(wrapper.wraps)
            if inner is None:
                raise ConfigError(f"{owner} wraps the trial kind {wrapper.wraps!r}, which no one declares; "
                                  f"known: {', '.join(sorted(kinds))}")
            kinds[wrapper.wraps] = TrialKind(Wrapped(wrapper.run, inner.run),
                                             inner.failure, inner.description)
    return kinds


def check_kind(config: Mapping[str, Any], kinds: Mapping[str, TrialKind], where: str) -> None:
    """ConfigError when `config` names a trial kind that `kinds` lacks."""
    name = str(config.get("_kind", TRAIN_KIND))
    if name not in kinds:
        raise ConfigError(f"{where} asks for the trial kind {name!r}, which this study does not know; "
                          f"known: {', '.join(sorted(kinds))} (a strategy declares its kinds in trial_kinds())")


def check_first_suggestion(strategy: Strategy, kinds: Mapping[str, TrialKind], flags: Mapping[str, Any]) -> None:
    """ConfigError when the first config a fresh searcher of `strategy` suggests names a trial kind
    the study does not know; a searcher that cannot suggest outside Tune is left to the study."""
    import logging

    try:
        searcher = strategy.make_searcher()
        searcher.set_search_properties(strategy.context.metric, strategy.context.mode, dict(flags))
        first = searcher.suggest("kind-check")
    except Exception as exc:  # noqa: BLE001 - only a probe: the study itself reports a searcher's errors
        logging.getLogger(__name__).debug("strategy %s: first suggestion not checked (%s)", strategy.name, exc)
        return
    if isinstance(first, Mapping):
        check_kind(first, kinds, f"the first trial of strategy {strategy.name!r}")
