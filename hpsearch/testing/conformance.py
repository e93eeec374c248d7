"""A conformance suite every search strategy's tests subclass (built-ins and plug-ins alike).

A subclass names the strategy and a small search space; the mixin checks that the strategy
is registered, validates, suggests configs inside the space, finishes, saves and restores (a
restored searcher goes on where the saved one stopped), and (tests marked ``ray``, which need
the ``ray_local`` fixture of ``tests/conftest.py``) that it runs and resumes in real Ray Tune
with a synthetic trainable that follows the trial protocol but does not train.

What a subclass provides (class attributes; only ``strategy_name`` and ``space`` are required)::

    from hpsearch.testing import SearcherConformance

    class TestGridConformance(SearcherConformance):
        strategy_name = "grid"                 # the entry-point name
        space = {"width": [8, 16], "n_layers": [1, 2]}   # YAML-like mapping -> SearchSpace
        options = {}                           # the strategy's options (validated by its Options)
        fixed = {"learning_rate": 1e-3}        # StrategyContext.fixed
        max_trials = None                      # budget (None: the strategy decides)
        max_concurrent = 1                     # trials running at once in the driver and in Tune
        expected_trials = 4                    # exact number of trials, or None to skip that check
        deterministic = True                   # same seed and results -> same configs (and resume)
        exhaustive = True                      # never suggests the same training config twice
        scheduler_name = None                  # e.g. "naswot-pruner" to test with a scheduler
        scheduler_options = {}
        tune_tests = True                      # False: skip the real-Tune tests (covered elsewhere)

Override :meth:`make_strategy` for anything the attributes cannot say, and
:meth:`check_config` to add strategy-specific checks of each suggested config. Budgets follow
the runner: Tune asks for ``num_samples()`` trials, capped by ``max_trials`` (-1 with no cap:
until the searcher returns FINISHED), and a 'score' trial counts as one trial.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hpsearch.config.registry import load_scheduler, load_strategy
from hpsearch.config.space import Categorical, FloatRange, IntRange, SearchSpace
from hpsearch.config.strategy import (
    METRIC,
    RESERVED_KEYS,
    SchedulerPlugin,
    Strategy,
    StrategyContext,
)
from hpsearch.testing.driver import (
    DriveLog,
    SearcherDriver,
    canonical,
    synthetic_trainable,
)
from hpsearch.tune.tuner import effective_num_samples


class SearcherConformance:
    """Mixin of pytest tests for one strategy; see the module docstring for what to provide."""

    strategy_name: ClassVar[str]
    space: ClassVar[dict[str, Any]]
    options: ClassVar[dict[str, Any]] = {}
    fixed: ClassVar[dict[str, Any]] = {}
    seed: ClassVar[int] = 0
    max_trials: ClassVar[int | None] = None
    max_concurrent: ClassVar[int] = 1
    expected_trials: ClassVar[int | None] = None
    deterministic: ClassVar[bool] = True
    exhaustive: ClassVar[bool] = True
    scheduler_name: ClassVar[str | None] = None
    scheduler_options: ClassVar[dict[str, Any]] = {}
    tune_tests: ClassVar[bool] = True

    # -- hooks ---------------------------------------------------------------------------------
    def search_space(self) -> SearchSpace:
        return SearchSpace.model_validate(self.space)

    def context(self) -> StrategyContext:
        return StrategyContext(
            seed=self.seed,
            fixed=dict(self.fixed),
            max_trials=self.max_trials,
            max_concurrent=self.max_concurrent,
        )

    def make_strategy(self) -> Strategy:
        cls = load_strategy(self.strategy_name)
        return cls(self.search_space(), cls.Options.model_validate(self.options), self.context())

    def make_scheduler(self) -> SchedulerPlugin | None:
        if self.scheduler_name is None:
            return None
        cls = load_scheduler(self.scheduler_name)
        return cls(cls.Options.model_validate(self.scheduler_options), self.context())

    def check_config(self, config: dict[str, Any]) -> None:
        """Strategy-specific checks of one suggested config (default: none)."""

    # -- helpers -------------------------------------------------------------------------------
    def flags(self) -> dict[str, Any]:
        plugin = self.make_scheduler()
        return dict(plugin.trial_flags) if plugin is not None else {}

    def limit(self, strategy: Strategy) -> int | None:
        n = effective_num_samples(strategy.num_samples(), self.max_trials)
        return None if n < 0 else n

    def new_searcher(self) -> tuple[Strategy, Any]:
        strategy = self.make_strategy()
        strategy.validate()
        searcher = strategy.make_searcher()
        searcher.set_search_properties(METRIC, "min", dict(self.flags()))
        return strategy, searcher

    def driver(self) -> SearcherDriver:
        strategy, searcher = self.new_searcher()
        return SearcherDriver(
            searcher, max_concurrent=self.max_concurrent, limit=self.limit(strategy), flags=self.flags()
        )

    def full_run(self) -> DriveLog:
        return self.driver().run()

    def training_configs(self, log: DriveLog) -> list[dict[str, Any]]:
        return [c for c in log.configs if c.get("_kind", "train") == "train"]

    def assert_in_space(self, name: str, value: Any, where: str) -> None:
        space = self.search_space()
        if name not in space.parameters:
            return
        parameter = space.parameters[name]
        if isinstance(parameter, Categorical):
            assert value in parameter.values, f"{where}: {name}={value!r} not in {parameter.values}"
        elif isinstance(parameter, IntRange):
            assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {name}={value!r} not int"
            assert parameter.low <= value <= parameter.high, f"{where}: {name}={value} outside range"
        elif isinstance(parameter, FloatRange):
            tol = 1e-9 * max(abs(parameter.low), abs(parameter.high), 1.0)
            assert parameter.low - tol <= float(value) <= parameter.high + tol, (
                f"{where}: {name}={value} outside [{parameter.low}, {parameter.high}]"
            )

    # -- tests without Ray ---------------------------------------------------------------------
    def test_registered_with_description(self) -> None:
        cls = load_strategy(self.strategy_name)
        assert cls.name == self.strategy_name
        assert cls.description.strip(), "a strategy needs a one-line description"
        with pytest.raises(Exception, match="not_an_option"):
            cls.Options.model_validate({**self.options, "not_an_option": 1})

    def test_constructor_does_no_work(self) -> None:
        strategy = self.make_strategy()
        assert strategy.space == self.search_space()
        assert strategy.context == self.context()

    def test_suggested_configs_lie_in_the_space(self) -> None:
        log = self.full_run()
        assert log.configs, "the strategy suggested no trial"
        space = self.search_space()
        allowed = set(space.names) | set(self.fixed) | set(RESERVED_KEYS) | set(self.flags())
        kinds = {"train", *self.make_strategy().trial_kinds()}
        for config in log.configs:
            unknown = set(config) - allowed
            assert not unknown, f"config {config} has keys outside the space/fixed/reserved: {unknown}"
            kind = config.get("_kind", "train")
            assert kind in kinds, f"_kind {kind!r} is not declared in the strategy's trial_kinds(): {sorted(kinds)}"
            if kind == "score":
                assert config.get("_candidates"), f"a score trial needs _candidates: {config}"
                for candidate in config["_candidates"]:
                    for name, value in candidate.items():
                        self.assert_in_space(name, value, "candidate")
            else:
                for name, value in config.items():
                    if not name.startswith("_"):
                        self.assert_in_space(name, value, "config")
            self.check_config(config)

    def test_finishes_within_budget(self) -> None:
        strategy, searcher = self.new_searcher()
        limit = self.limit(strategy)
        log = SearcherDriver(searcher, max_concurrent=self.max_concurrent, limit=limit, flags=self.flags()).run()
        if limit is None:
            assert log.finished, "with num_samples -1 and no budget the searcher must return FINISHED"
        else:
            assert len(log.configs) <= limit
        if self.expected_trials is not None:
            assert len(log.configs) == self.expected_trials
        if self.exhaustive:
            texts = [canonical(c) for c in self.training_configs(log)]
            assert len(texts) == len(set(texts)), "a training config was suggested twice"

    def test_same_seed_same_suggestions(self) -> None:
        if not self.deterministic:
            pytest.skip("strategy declared non-deterministic")
        first = [canonical(c) for c in self.full_run().configs]
        second = [canonical(c) for c in self.full_run().configs]
        assert first == second

    def test_searcher_pickles(self) -> None:
        """Tuner pickles the searcher with the experiment; an unpickled one must still work."""
        import cloudpickle

        _, searcher = self.new_searcher()
        clone = pickle.loads(cloudpickle.dumps(searcher))
        log = SearcherDriver(clone, max_concurrent=self.max_concurrent, limit=2, flags=self.flags()).run()
        assert log.configs

    def test_save_restore_goes_on_where_it_stopped(self, tmp_path: Path) -> None:
        full = self.full_run()
        stop_after = max(1, len(full.configs) // 2)
        first = self.driver()
        first.run(stop_after=stop_after)
        state = tmp_path / "searcher-state.pkl"
        first.searcher.save(str(state))
        assert state.exists(), "save() must write the file it is given"
        _, restored = self.new_searcher()
        restored.restore(str(state))
        resumed = first.handover(restored).run()
        combined = [canonical(c) for c in resumed.configs]
        if self.deterministic:
            assert combined == [canonical(c) for c in full.configs], (
                "the restored searcher did not continue the saved study"
            )
        if self.exhaustive:
            train = [canonical(c) for c in self.training_configs(resumed)]
            assert len(train) == len(set(train)), "a config was run again after restore"
        if self.expected_trials is not None:
            assert len(combined) == self.expected_trials

    def test_saved_state_is_json(self, tmp_path: Path) -> None:
        """hpsearch's state files are JSON (readable, no pickle), here saved mid-study."""
        driver = self.driver()
        driver.run(stop_after=max(1, len(self.full_run().configs) // 2))
        driver.searcher.save(str(tmp_path / "state"))
        assert "format" in json.loads((tmp_path / "state").read_text(encoding="utf-8"))

    # -- tests in real Ray Tune ----------------------------------------------------------------
    def _tuner(self, storage: Path, name: str, stop_after: int | None = None) -> Any:
        from hpsearch.tune.tuner import build_tuner

        if not self.tune_tests:
            pytest.skip("real-Tune tests switched off for this class (tune_tests = False)")
        return build_tuner(
            synthetic_trainable,
            self.make_strategy(),
            scheduler=self.make_scheduler(),
            name=name,
            storage_path=storage,
            max_trials=self.max_trials,
            max_concurrent=self.max_concurrent,
            resources={"cpu": 0.5},
            interrupt_after_trials=stop_after,
        )

    def _expected_tune_trials(self) -> int:
        return self.expected_trials if self.expected_trials is not None else len(self.full_run().configs)

    @pytest.mark.ray
    def test_runs_in_tune(self, ray_local: Any, tmp_path: Path) -> None:
        grid = self._tuner(tmp_path, "conformance").fit()
        assert not grid.errors, f"trials errored: {grid.errors}"
        frame = grid.get_dataframe()
        assert len(frame) == self._expected_tune_trials()

    @pytest.mark.ray
    @pytest.mark.slow
    def test_resumes_in_tune(self, ray_local: Any, tmp_path: Path) -> None:
        """Interrupted after half the trials and restored: every trial once, finished ones kept."""
        from hpsearch.tune.tuner import restore_tuner

        expected = self._expected_tune_trials()
        stop_after = max(1, expected // 2)
        self._tuner(tmp_path, "conformance", stop_after=stop_after).fit()
        grid = restore_tuner(tmp_path / "conformance", synthetic_trainable).fit()
        frame = grid.get_dataframe()
        assert len(frame) == expected
        assert frame["trial_id"].is_unique
        starts = trial_starts(tmp_path / "conformance")
        restarted = [t for t, n in starts.items() if n > 1]
        # only trials still running at the interruption may start again, each once
        assert max(starts.values()) <= 2 and len(restarted) <= self.max_concurrent, starts
        if self.exhaustive:
            configs = [canonical({k: v for k, v in r.config.items()}) for r in grid if r.config]
            train = [c for c in configs if '"_kind": "score"' not in c]
            assert len(train) == len(set(train)), "a trial ran twice across the resume"


def trial_starts(tune_dir: Path) -> dict[str, int]:
    """Trial id -> how often it started (first reports in its result.json, over every run)."""
    counts: dict[str, int] = {}
    for result in tune_dir.glob("*/result.json"):
        for line in result.read_text().splitlines():
            record = json.loads(line)
            if record.get("training_iteration") == 1:
                counts[record["trial_id"]] = counts.get(record["trial_id"], 0) + 1
    return counts
