"""The tpe strategy: conformance, what TPE learns from each trial outcome, its errors."""

from __future__ import annotations

import optuna
import pytest

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherConformance, SearcherDriver

SPACE = {
    "n_layers": {"type": "int", "low": 1, "high": 3},
    "width": {"type": "int", "low": 8, "high": 64, "log": True},
    "activation": ["ReLU", "Tanh"],
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
}


class TestTPEConformance(SearcherConformance):
    strategy_name = "tpe"
    space = SPACE
    options = {"n_startup_trials": 3}
    max_trials = 6
    expected_trials = 6
    max_concurrent = 2
    exhaustive = False  # TPE may repeat a point of a discrete space
    tune_tests = False  # the subclass below runs TPE in Tune (with the pruner on top)


class TestTPEWithPrunerConformance(TestTPEConformance):
    scheduler_name = "naswot-pruner"
    tune_tests = True


def _tpe(max_trials: int | None = 6, **options: object):
    cls = load_strategy("tpe")
    return cls(SearchSpace.model_validate(SPACE), cls.Options(**options), StrategyContext(seed=3, max_trials=max_trials))


def test_needs_a_budget() -> None:
    with pytest.raises(ConfigError, match="max_trials"):
        _tpe(max_trials=None).validate()


def test_outcomes_teach_the_sampler_as_documented() -> None:
    """completed -> COMPLETE, pruned/diverged -> PRUNED, failed/non-finite/error -> FAIL."""
    searcher = _tpe(n_startup_trials=2).make_searcher()
    outcomes = [
        ({METRIC: 1.5, "status": "completed"}, False, optuna.trial.TrialState.COMPLETE),
        ({"naswot_score": -3.0}, False, optuna.trial.TrialState.PRUNED),
        ({METRIC: 1e9, "status": "diverged"}, False, optuna.trial.TrialState.PRUNED),
        ({"status": "failed", "reason": "boom"}, False, optuna.trial.TrialState.FAIL),
        ({METRIC: float("nan"), "status": "completed"}, False, optuna.trial.TrialState.FAIL),
        (None, True, optuna.trial.TrialState.FAIL),
    ]
    for i, (result, error, _) in enumerate(outcomes):
        assert isinstance(searcher.suggest(f"t{i}"), dict)
        searcher.on_trial_result(f"t{i}", {"epoch": 1, "val_loss": 0.1})  # no metric: ignored
        searcher.on_trial_complete(f"t{i}", result=result, error=error)
    trials = searcher._ot_study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [expected for *_, expected in outcomes]
    assert trials[0].value == pytest.approx(1.5)


def test_tpe_concentrates_on_the_good_region() -> None:
    """After its startup trials, TPE suggests small learning rates where the error is low."""
    space = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1.0, "log": True}}
    cls = load_strategy("tpe")
    strategy = cls(SearchSpace.model_validate(space), cls.Options(n_startup_trials=5), StrategyContext(seed=0, max_trials=30))

    def reports(config):
        import math

        return [{METRIC: abs(math.log10(config["learning_rate"]) + 4.0), "status": "completed"}]

    log = SearcherDriver(strategy.make_searcher(), limit=30, reports=reports).run()
    import math

    late = [abs(math.log10(c["learning_rate"]) + 4.0) for c in log.configs[15:]]
    early = [abs(math.log10(c["learning_rate"]) + 4.0) for c in log.configs[:5]]
    assert sum(late) / len(late) < 0.5 * sum(early) / len(early)
