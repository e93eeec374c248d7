"""The epoch-based schedulers by name (asha, hyperband, median): registration, option checks, and
their decisions through the chained wrapper on scripted per-epoch losses (Ray's own schedulers)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler, MedianStoppingRule, TrialScheduler

from hpsearch.config.experiment import parse_experiment, validate_experiment
from hpsearch.config.registry import describe_all, load_scheduler
from hpsearch.config.strategy import METRIC, NASWOT_METRIC, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch_searchers._chain import ChainedScheduler

STOP, CONTINUE = TrialScheduler.STOP, TrialScheduler.CONTINUE


def _plugin(name: str, fixed: dict[str, Any] | None = None, **options: Any):
    cls = load_scheduler(name)
    return cls(cls.Options(**options), StrategyContext(fixed=fixed if fixed is not None else {"max_epochs": 9}))


class _Trial:
    """What Ray's schedulers read of a trial: its id and status (hashable by identity, like Trial)."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id, self.status = trial_id, "RUNNING"


def _trial(trial_id: str) -> Any:
    return _Trial(trial_id)


#: What the median rule asks of Tune when samples are missing: the live trials (none waiting here)
NO_WAITING = SimpleNamespace(get_live_trials=lambda: [])


def _experiment(scheduler: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"name": "s", "search_space": {"width": [8, 16]}, "strategy": {"name": "grid"},
            "scheduler": scheduler, "fixed": {"max_epochs": 9}, **changes}


def test_registered_and_listed() -> None:
    rows = {(kind, name): text for kind, name, text in describe_all()}
    for name in ("asha", "hyperband", "median"):
        assert ("scheduler", name) in rows and "broken" not in rows[("scheduler", name)]
    assert ("strategy", "random") in rows and ("strategy", "naswot-halving") in rows


@pytest.mark.parametrize(("name", "ray_class"), [("asha", ASHAScheduler), ("hyperband", HyperBandScheduler),
                                                 ("median", MedianStoppingRule)])
def test_each_builds_its_ray_scheduler_on_the_epoch_loss(name: str, ray_class: type) -> None:
    scheduler = _plugin(name).make_scheduler()
    assert isinstance(scheduler, ChainedScheduler)
    (inner, keys), = scheduler.children
    assert isinstance(inner, ray_class) and keys == ("epoch", "val_loss")
    assert inner.metric == "val_loss" and inner._time_attr == "epoch"
    # Tune hands the final metric to the wrapper; the child keeps judging the epoch loss
    assert scheduler.set_search_properties(METRIC, "min") is True and inner.metric == "val_loss"


def test_max_t_defaults_to_the_fixed_max_epochs() -> None:
    assert _plugin("asha", fixed={"max_epochs": 12}).make_scheduler().children[0][0]._max_t == 12
    assert _plugin("asha", fixed={"max_epochs": 12}, max_t=4).make_scheduler().children[0][0]._max_t == 4
    with pytest.raises(ConfigError, match="needs max_t.*fixed.max_epochs"):
        _plugin("hyperband", fixed={}).validate()


def test_options_are_checked_with_the_value_and_a_hint() -> None:
    with pytest.raises(ConfigError, match="grace_periodd"):
        parse_experiment(_experiment({"name": "asha", "options": {"grace_periodd": 2}}))
    with pytest.raises(ConfigError, match="reduction_factor"):
        parse_experiment(_experiment({"name": "asha", "options": {"reduction_factor": 1}}))
    config = parse_experiment(_experiment({"name": "asha", "options": {"grace_period": 12}}))
    with pytest.raises(ConfigError, match="grace_period 12 epochs exceeds max_t 9"):
        validate_experiment(config)
    with pytest.raises(ConfigError, match="unknown scheduler 'ashaa'.*asha"):
        parse_experiment(_experiment({"name": "ashaa"}))


def test_pruner_then_option_is_validated() -> None:
    base = {"name": "naswot-pruner", "options": {"then": {"name": "asha", "options": {"max_t": 0}}}}
    with pytest.raises(ConfigError, match="max_t"):
        parse_experiment(_experiment(base))
    with pytest.raises(ConfigError, match="cannot follow itself"):
        parse_experiment(_experiment({"name": "naswot-pruner", "options": {"then": {"name": "naswot-pruner"}}}))
    with pytest.raises(ConfigError, match="unknown scheduler 'nope'"):
        parse_experiment(_experiment({"name": "naswot-pruner", "options": {"then": {"name": "nope"}}}))


def test_asha_stops_the_worse_trial_at_the_rung_and_ignores_other_reports() -> None:
    scheduler = _plugin("asha", grace_period=1, reduction_factor=3, max_t=9).make_scheduler()
    scheduler.set_search_properties(METRIC, "min")
    good, bad = _trial("good"), _trial("bad")
    for trial in (good, bad):
        scheduler.on_trial_add(None, trial)
    # reports without an epoch loss (NASWOT before training, the final one) are not judged
    assert scheduler.on_trial_result(None, bad, {NASWOT_METRIC: 1.0}) == CONTINUE
    assert scheduler.on_trial_result(None, good, {"epoch": 1, "val_loss": 0.1}) == CONTINUE
    assert scheduler.on_trial_result(None, bad, {"epoch": 1, "val_loss": 0.5}) == STOP  # rung 1: worse
    assert scheduler.on_trial_result(None, good, {"epoch": 2, "val_loss": 0.09}) == CONTINUE  # no rung at 2
    assert scheduler.on_trial_result(None, good, {"epoch": 3, "val_loss": 0.08}) == CONTINUE
    # at max_t the trial goes on to its final report (Ray's stop there would lose the final error)
    assert scheduler.on_trial_result(None, good, {"epoch": 9, "val_loss": 0.07}) == CONTINUE
    scheduler.on_trial_complete(None, bad, {"epoch": 1, "val_loss": 0.5})
    scheduler.on_trial_complete(None, good, {METRIC: 2.0, "status": "completed"})  # last epoch result used
    assert scheduler.on_trial_result(None, good, {"epochs": 9}) == CONTINUE


def test_median_stops_a_trial_worse_than_the_median_after_the_grace_period() -> None:
    scheduler = _plugin("median", grace_period=2, min_samples_required=2).make_scheduler()
    scheduler.set_search_properties(METRIC, "min")
    trials = [_trial(f"t{i}") for i in range(3)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    for trial, loss in zip(trials[:2], (0.1, 0.2)):
        for epoch in (1, 2, 3):
            assert scheduler.on_trial_result(NO_WAITING, trial, {"epoch": epoch, "val_loss": loss}) == CONTINUE
        scheduler.on_trial_complete(NO_WAITING, trial, {METRIC: 1.0})  # final report: its last epoch is kept
    assert scheduler.on_trial_result(NO_WAITING, trials[2], {"epoch": 1, "val_loss": 0.9}) == CONTINUE  # grace
    assert scheduler.on_trial_result(NO_WAITING, trials[2], {"epoch": 2, "val_loss": 0.9}) == STOP


def test_pruner_then_asha_prunes_first_then_halves() -> None:
    plugin = _plugin("naswot-pruner", threshold=0.0, then={"name": "asha", "options": {"grace_period": 1}})
    plugin.validate()
    assert plugin.trial_flags == {"_naswot": True}
    scheduler = plugin.make_scheduler()
    assert isinstance(scheduler, ChainedScheduler) and len(scheduler.children) == 2
    scheduler.set_search_properties(METRIC, "min")
    low, a, b = _trial("low"), _trial("a"), _trial("b")
    for trial in (low, a, b):
        scheduler.on_trial_add(None, trial)
    assert scheduler.on_trial_result(None, low, {NASWOT_METRIC: -1.0, "naswot_reason": ""}) == STOP
    scheduler.on_trial_complete(None, low, {NASWOT_METRIC: -1.0})  # never reached an epoch: removed from ASHA
    for trial in (a, b):
        assert scheduler.on_trial_result(None, trial, {NASWOT_METRIC: 1.0, "naswot_reason": ""}) == CONTINUE
    assert scheduler.on_trial_result(None, a, {"epoch": 1, "val_loss": 0.2, NASWOT_METRIC: 1.0}) == CONTINUE
    assert scheduler.on_trial_result(None, b, {"epoch": 1, "val_loss": 0.7, NASWOT_METRIC: 1.0}) == STOP
    assert "NaswotPruner" in scheduler.debug_string()


@pytest.mark.parametrize("folder", ["", "quick"])
def test_multifidelity_experiment_files_validate_and_share_the_paper_space(folder: str) -> None:
    from pathlib import Path

    from hpsearch.config.experiment import load_experiment

    root = Path(__file__).resolve().parents[2] / "experiments" / folder
    tpe = load_experiment(root / "tpe.yaml")
    for stem, strategy, scheduler in (("tpe-asha", "tpe", "asha"), ("random-asha", "random", "asha"),
                                      ("naswot-halving", "naswot-halving", None)):
        config = load_experiment(root / f"{stem}.yaml")
        made, plugin = validate_experiment(config)
        assert made.name == strategy and (plugin.name if plugin else None) == scheduler
        assert config.search_space == tpe.search_space and config.fixed == tpe.fixed
        assert config.name != tpe.name and config.tracking == tpe.tracking
    halving = validate_experiment(load_experiment(root / "naswot-halving.yaml"))[0]
    # rungs: top_k x min_epochs, then / 3 trainings x 3 epochs, the last at the experiment's max_epochs
    assert halving.plan() == ([(6, 4), (2, 12), (1, 20)] if folder else [(9, 4), (3, 12), (1, 40)])
