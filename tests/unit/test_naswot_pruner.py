"""The NASWOT pruner's threshold logic on scripted scores, and its decisions in real Tune."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

from hpsearch.config.registry import load_scheduler
from hpsearch.config.strategy import METRIC, NASWOT_METRIC, StrategyContext

STOP, CONTINUE = TrialScheduler.STOP, TrialScheduler.CONTINUE


def _pruner(**options: object):
    cls = load_scheduler("naswot-pruner")
    plugin = cls(cls.Options(**options), StrategyContext())
    plugin.validate()
    return plugin.make_scheduler()


def _feed(pruner, scores):
    return [
        pruner.on_trial_result(None, SimpleNamespace(trial_id=f"t{i}"), {NASWOT_METRIC: s, "training_iteration": 1})
        for i, s in enumerate(scores)
    ]


def test_plugin_flags_every_trial_for_a_naswot_report() -> None:
    assert load_scheduler("naswot-pruner").trial_flags == {"_naswot": True}


def test_fixed_threshold_prunes_exactly_the_scores_below_it() -> None:
    scores = [5.0, -1.0, 3.0, 2.0, 2.5, float("nan")]
    decisions = _feed(_pruner(threshold=2.5), scores)
    assert decisions == [CONTINUE, STOP, CONTINUE, STOP, CONTINUE, STOP]


def test_adaptive_threshold_waits_for_warmup_then_uses_the_quantile_of_earlier_scores() -> None:
    scores = [10.0, 1.0, 7.0, 3.0, 2.0, 4.0, 9.0, 0.5]
    decisions = _feed(_pruner(quantile=0.5, warmup_trials=3), scores)
    # Independent reference: trial i is judged against the median of scores[:i], once i >= 3.
    expected = []
    for i, score in enumerate(scores):
        threshold = float(np.median(scores[:i])) if i >= 3 else None
        expected.append(STOP if threshold is not None and score < threshold else CONTINUE)
    assert decisions == expected
    assert expected.count(STOP) >= 2  # the script does exercise pruning


def test_non_finite_scores_do_not_move_the_threshold() -> None:
    pruner = _pruner(quantile=0.25, warmup_trials=2)
    _feed(pruner, [1.0, float("-inf"), 3.0, float("nan"), 5.0])
    assert pruner.current_threshold() == pytest.approx(np.quantile([1.0, 3.0, 5.0], 0.25))
    assert [d.pruned for d in pruner.decisions.values()] == [False, True, False, True, False]


def test_degenerate_scores_are_pruned_and_never_move_the_threshold() -> None:
    """A finite sentinel score with a reason (e.g. dead ReLUs) must not drag the quantile down."""
    pruner = _pruner(quantile=0.5, warmup_trials=2)
    trial = lambda i: SimpleNamespace(trial_id=f"t{i}")  # noqa: E731
    reports = [{NASWOT_METRIC: 10.0}, {NASWOT_METRIC: -1e30, "naswot_reason": "all units dead"},
               {NASWOT_METRIC: 20.0}, {NASWOT_METRIC: 12.0}]
    decisions = [pruner.on_trial_result(None, trial(i), r) for i, r in enumerate(reports)]
    assert decisions == [CONTINUE, STOP, CONTINUE, STOP]  # 12 < median(10, 20) = 15
    assert pruner.current_threshold() == pytest.approx(12.0)  # median of 10, 20, 12


def test_only_the_first_naswot_report_is_judged() -> None:
    pruner = _pruner(threshold=0.0)
    trial = SimpleNamespace(trial_id="a")
    assert pruner.on_trial_result(None, trial, {NASWOT_METRIC: 1.0}) == CONTINUE
    assert pruner.on_trial_result(None, trial, {"epoch": 1, "val_loss": 0.3}) == CONTINUE
    assert pruner.on_trial_result(None, trial, {NASWOT_METRIC: -5.0}) == CONTINUE  # later report
    assert len(pruner.decisions) == 1


def test_state_survives_save_restore_and_trial_restore(tmp_path) -> None:
    pruner = _pruner(quantile=0.5, warmup_trials=2)
    _feed(pruner, [1.0, 2.0, 3.0])
    pruner.save(str(tmp_path / "p.pkl"))
    other = _pruner(quantile=0.5, warmup_trials=2)
    other.restore(str(tmp_path / "p.pkl"))
    assert other.current_threshold() == pruner.current_threshold() == 2.0
    # A resumed study hands the restored trials to on_trial_add: the scores come back.
    rebuilt = _pruner(quantile=0.5, warmup_trials=2)
    for i, s in enumerate([1.0, 2.0, 3.0]):
        rebuilt.on_trial_add(None, SimpleNamespace(trial_id=f"t{i}", last_result={NASWOT_METRIC: s, "status": "completed"}))
    assert rebuilt.current_threshold() == 2.0


def test_options_are_validated() -> None:
    cls = load_scheduler("naswot-pruner")
    for bad in ({"quantile": 1.5}, {"warmup_trials": 0}, {"threshold": math.inf}, {"typo": 1}):
        with pytest.raises(Exception):
            cls.Options(**bad)


@pytest.mark.ray
def test_pruned_trials_stop_before_training_in_tune(ray_local, tmp_path) -> None:
    """With a fixed threshold, exactly the trials scoring below it end after their first report."""
    from hpsearch.config.registry import load_strategy
    from hpsearch.config.space import SearchSpace
    from hpsearch.testing.driver import synthetic_naswot, synthetic_trainable
    from hpsearch.tune.tuner import build_tuner

    space = SearchSpace.model_validate({"width": [8, 16, 32], "activation": ["ReLU", "Tanh"]})
    scores = sorted(synthetic_naswot(c) for c in space.grid())
    threshold = (scores[2] + scores[3]) / 2  # three below, three above
    grid_cls, pruner_cls = load_strategy("grid"), load_scheduler("naswot-pruner")
    tuner = build_tuner(
        synthetic_trainable,
        grid_cls(space, grid_cls.Options(), StrategyContext()),
        scheduler=pruner_cls(pruner_cls.Options(threshold=threshold), StrategyContext()),
        name="pruned", storage_path=tmp_path, max_concurrent=2, resources={"cpu": 0.5},
    )
    frame = tuner.fit().get_dataframe()
    assert len(frame) == 6
    pruned = frame[frame[NASWOT_METRIC] < threshold]
    kept = frame[frame[NASWOT_METRIC] >= threshold]
    assert len(pruned) == 3 and (pruned["training_iteration"] == 1).all()
    assert pruned[METRIC].isna().all()
    assert kept[METRIC].notna().all()
