"""Trial kinds: the registry (built-in training, strategies' and schedulers' kinds and wrappers), the
trainable's dispatch by ``_kind``, failure fields, the repeats wrapper and the NASWOT kinds on real data."""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hpsearch.config.experiment import ExperimentConfig, network_spec, parse_experiment, training_settings
from hpsearch.config.registry import load_scheduler, load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import LDOS_METRIC, METRIC, NASWOT_METRIC, STD_METRIC, Strategy, StrategyContext
from hpsearch.config.trials import TrialContext, TrialKind, TrialWrapper, Wrapped
from hpsearch.errors import ConfigError
from hpsearch.model import TrainingData
from hpsearch.physics import EnergyGrid
from hpsearch.tune import trainable
from hpsearch.tune.kinds import TRAINING, check_first_suggestion, collect_trial_kinds, repeated, train_once
from hpsearch.tune.trainable import TrialSettings, run_trial
from hpsearch.scoring.proxies import DEFAULT_PROXY
from hpsearch_searchers._naswot_trials import NASWOT_FIRST, SCORE_TRIALS, ProxyFirst, ProxyScoring

SPACE = SearchSpace.model_validate({"n_layers": [1, 2], "width": [8, 16]})


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the machine is shared; results do not depend on it


def _strategy(name: str = "naswot") -> Strategy:
    cls = load_strategy(name)
    return cls(SPACE, cls.Options(), StrategyContext())


def _pruner() -> Any:
    cls = load_scheduler("naswot-pruner")
    return cls(cls.Options(), StrategyContext())


def _fails(config: dict[str, Any], context: TrialContext) -> dict[str, Any]:
    raise RuntimeError("no data today")


def _failure_fields(config: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"what_failed": f"{config['_kind']}: {reason}"}


class _Declaring(Strategy):
    """A strategy that declares the kinds it is given and suggests `first`."""

    name = "declaring"
    description = "test strategy"

    def __init__(self, kinds: Mapping[str, TrialKind], first: dict[str, Any] | None = None,
                 wrappers: Sequence[TrialWrapper] = ()) -> None:
        super().__init__(SPACE, _Declaring.Options(), StrategyContext())
        self.kinds, self.first, self.wrappers = dict(kinds), first, tuple(wrappers)

    def make_searcher(self) -> Any:
        from ray.tune.search import Searcher

        first = self.first

        class _One(Searcher):
            def suggest(self, trial_id: str) -> dict[str, Any] | None:
                return dict(first or {})

            def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
                pass

        return _One(metric=METRIC, mode="min")

    def trial_kinds(self) -> Mapping[str, TrialKind]:
        return self.kinds

    def trial_wrappers(self) -> Sequence[TrialWrapper]:
        return self.wrappers


# -- the registry --------------------------------------------------------------------------------
def test_registry_collects_the_strategy_kinds_and_the_scheduler_wrappers() -> None:
    assert collect_trial_kinds(_strategy("grid")) == {"train": TRAINING}
    for name in ("naswot", "naswot-optimized", "naswot-halving"):
        kinds = collect_trial_kinds(_strategy(name))
        assert kinds == {"train": TRAINING, "score": SCORE_TRIALS}, name
    with_pruner = collect_trial_kinds(_strategy("tpe"), _pruner())
    assert set(with_pruner) == {"train"} and with_pruner["train"] is not TRAINING
    assert with_pruner["train"].run == Wrapped(NASWOT_FIRST.run, TRAINING.run)


def test_registry_refuses_a_name_declared_twice_and_a_wrapper_of_no_kind() -> None:
    with pytest.raises(ConfigError, match=r"'train' of strategy 'declaring' is already declared by hpsearch"):
        collect_trial_kinds(_Declaring({"train": SCORE_TRIALS}))

    class _Scoring(type(_pruner())):  # type: ignore[misc]
        def trial_kinds(self) -> Mapping[str, TrialKind]:
            return {"score": SCORE_TRIALS}

    scheduler = _Scoring(_pruner().options, StrategyContext())
    with pytest.raises(ConfigError, match=r"'score' of scheduler 'naswot-pruner' is already declared by strategy 'naswot'"):
        collect_trial_kinds(_strategy("naswot"), scheduler)
    with pytest.raises(ConfigError, match=r"wraps the trial kind 'nope'.*known: train"):
        collect_trial_kinds(_Declaring({}, wrappers=[TrialWrapper(NASWOT_FIRST.run, wraps="nope")]))


def test_first_suggestion_of_an_unknown_kind_is_refused_up_front() -> None:
    strategy = _Declaring({}, first={"_kind": "mystery", "n_layers": 1})
    with pytest.raises(ConfigError, match=r"trial kind 'mystery'.*known: train"):
        check_first_suggestion(strategy, collect_trial_kinds(strategy), {})
    declared = _Declaring({"mystery": SCORE_TRIALS}, first={"_kind": "mystery", "n_layers": 1})
    check_first_suggestion(declared, collect_trial_kinds(declared), {})
    naswot = _strategy("naswot")  # its first trial is a score trial
    check_first_suggestion(naswot, collect_trial_kinds(naswot), {})
    with pytest.raises(ConfigError, match=r"trial kind 'score'"):
        check_first_suggestion(naswot, {"train": TRAINING}, {})


def _config(**extra: Any) -> ExperimentConfig:
    return parse_experiment({
        "name": "kinds", "dataset": {"store": "default"}, "search_space": {"n_layers": [1, 2], "width": [8, 16]},
        "fixed": {"max_epochs": 2, "patience": None, "batch_size": 512, "learning_rate": 1e-3,
                  "activation": "LeakyReLU"},
        "naswot": {"batch_size": 32, "n_init": 2}, "seed": 5, **extra,
    })


def test_settings_pickle_with_their_kinds_by_reference() -> None:
    config = _config(strategy={"name": "naswot"}, scheduler={"name": "naswot-pruner"})
    settings = TrialSettings.from_config(config, "/x.h5", None)
    assert set(settings.kinds) == {"train", "score"}
    back = pickle.loads(pickle.dumps(settings))
    assert back.kinds["score"].run == ProxyScoring(DEFAULT_PROXY)
    assert back.kinds["train"].run == Wrapped(NASWOT_FIRST.run, Wrapped(repeated, train_once))
    assert back == settings


# -- the trainable's dispatch ----------------------------------------------------------------
def _reports(monkeypatch: pytest.MonkeyPatch, data: Any = None) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(trainable, "_report", reports.append)
    monkeypatch.setattr(trainable, "match_threads_to_resources", lambda: 1)
    monkeypatch.setattr(trainable, "_device", lambda settings: "cpu")
    if isinstance(data, Exception):
        def raise_it(settings: Any) -> Any:
            raise data
        monkeypatch.setattr(trainable, "_training_data", raise_it)
    else:
        monkeypatch.setattr(trainable, "_training_data", lambda settings: data)
    return reports


def test_an_unknown_kind_fails_the_trial_naming_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    reports = _reports(monkeypatch)
    settings = TrialSettings.from_config(_config(strategy={"name": "naswot"}), "/x.h5", None)
    run_trial({"_kind": "mystery", "n_layers": 1}, settings)
    (final,) = reports
    assert final["status"] == "failed" and final["trial_seconds"] >= 0
    assert "unknown trial kind 'mystery'" in final["reason"] and "score, train" in final["reason"]


def test_a_failing_kind_reports_its_failure_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    reports = _reports(monkeypatch)
    kinds = {"train": TRAINING, "flaky": TrialKind(_fails, _failure_fields)}
    settings = TrialSettings.from_config(_config(), "/x.h5", None, kinds=kinds)
    run_trial({"_kind": "flaky"}, settings)
    assert reports[-1]["status"] == "failed" and reports[-1]["reason"] == "RuntimeError: no data today"
    assert reports[-1]["what_failed"] == "flaky: RuntimeError: no data today"
    # the NASWOT score kind: one NaN score and the reason per candidate, as before
    reports = _reports(monkeypatch, OSError("store gone"))
    settings = TrialSettings.from_config(_config(strategy={"name": "naswot"}), "/x.h5", None)
    run_trial({"_kind": "score", "_candidates": [{"n_layers": 1}, {"n_layers": 2}]}, settings)
    (final,) = reports
    assert final["status"] == "failed" and final["n_candidates"] == 2
    assert final["naswot_reasons"] == '["OSError: store gone", "OSError: store gone"]'
    assert final["naswot_scores"] == "[NaN, NaN]"


def test_repeats_wrapper_averages_and_stops_at_the_first_failure() -> None:
    seen: list[int] = []
    reports: list[dict[str, Any]] = []

    def once(config: dict[str, Any], context: TrialContext) -> dict[str, Any]:
        seed = int(config["_seed"])
        seen.append(seed)
        for epoch in (1, 2, 3):
            context.report({"epoch": epoch, "train_loss": 1.0, "val_loss": 1.0})
        if seed == 13:
            return {"status": "diverged", "reason": "boom", "training_seconds": 1.0, "epochs": 3, "n_parameters": 7}
        return {"status": "completed", "reason": "ok", "training_seconds": 1.0, "epochs": 3, "n_parameters": 7,
                METRIC: float(seed), LDOS_METRIC: seed / 10}

    context = TrialContext(data=None, defaults={}, training=None, naswot=None, repeats=3, seed=0,  # type: ignore[arg-type]
                           device="cpu", report=reports.append, keep=reports.append)
    final = repeated({"_seed": 10}, context, once)
    assert seen == [10, 11, 12]
    assert [r["epoch"] for r in reports] == list(range(1, 10)) and [r["repeat"] for r in reports[::3]] == [0, 1, 2]
    assert final[METRIC] == pytest.approx(11.0) and final[LDOS_METRIC] == pytest.approx(1.1)
    assert final[STD_METRIC] == pytest.approx(1.0) and final["repeats_done"] == 3
    assert final["training_seconds"] == 3.0 and final["epochs"] == 9 and final["reason"] == "ok"
    failed = repeated({"_seed": 12}, context, once)
    assert failed["status"] == "diverged" and failed["repeats_done"] == 1 and failed["epochs"] == 6
    assert METRIC not in failed and STD_METRIC not in failed and failed["n_parameters"] == 7


# -- the kinds on real Be2 data ------------------------------------------------------------------
@pytest.fixture(scope="module")
def be2_data(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainingData:
    from hpsearch.data.mala import import_mala
    from hpsearch.data.splits import split_snapshots
    from hpsearch.data.store import open_store

    path = import_mala(be2_dir, tmp_path_factory.mktemp("be2") / "be2.h5", EnergyGrid(-5.0, 2.5, 11))
    with open_store(path) as store:
        split = split_snapshots(store.names, 2, 1, 1)
    return TrainingData.from_store(path, split)


def test_training_repeats_on_real_data_match_independent_trainings(monkeypatch: pytest.MonkeyPatch,
                                                                   be2_data: TrainingData) -> None:
    from hpsearch.model import evaluate, train

    config = _config(repeats=2)
    settings = TrialSettings.from_config(config, "/x.h5", None)
    reports = _reports(monkeypatch, be2_data)
    run_trial({"n_layers": 1, "width": 16, "_seed": 3}, settings)
    final = reports[-1]
    assert final["status"] == "completed" and final["repeats_done"] == 2 and final["epochs"] == 4
    assert [r["epoch"] for r in reports[:-1]] == [1, 2, 3, 4] and [r["repeat"] for r in reports[:-1]] == [0, 0, 1, 1]
    params = {**config.hyperparameter_defaults(), "n_layers": 1, "width": 16}
    spec = network_spec(params, be2_data.n_features, be2_data.n_energies)
    errors = []
    for seed in (5 + 3 + 0, 5 + 3 + 1):
        result = train(spec, training_settings(params, config.training, seed), be2_data)
        errors.append(evaluate(result.model, result.scalers, be2_data.validation_snapshots)
                      .mean_band_energy_error_mev_per_atom)
    assert final[METRIC] == pytest.approx(float(np.mean(errors)), rel=1e-9)
    assert final[STD_METRIC] == pytest.approx(float(np.std(errors, ddof=1)), rel=1e-6) and final[STD_METRIC] > 0
    assert NASWOT_METRIC not in final


@pytest.mark.parametrize(("proxy", "convention"), [("naswot-paper", "paper"), ("naswot-v1", "v1")])
def test_naswot_kinds_on_real_data_match_the_reference_scorer(monkeypatch: pytest.MonkeyPatch,
                                                             be2_data: TrainingData, proxy: str,
                                                             convention: str) -> None:
    from hpsearch.scoring import naswot_mean_score
    from hpsearch.scoring.experiment import naswot_batch

    config = _config(strategy={"name": "naswot", "options": {"proxy": proxy}},
                     scheduler={"name": "naswot-pruner", "options": {"proxy": proxy}})
    settings = TrialSettings.from_config(config, "/x.h5", None)
    assert settings.kinds["score"].run == ProxyScoring(proxy)
    assert settings.kinds["train"].run == Wrapped(ProxyFirst(proxy), Wrapped(repeated, train_once))
    defaults = config.hyperparameter_defaults()
    batch = naswot_batch(be2_data, training_settings(defaults, config.training, 5), 32, 5)
    candidates = [{"n_layers": 1, "width": 8}, {"n_layers": 2, "width": 16}]
    expected = [naswot_mean_score(network_spec({**defaults, **c}, be2_data.n_features, be2_data.n_energies),
                                  batch, n_init=2, seed=5, convention=convention).score  # type: ignore[arg-type]
                for c in candidates]
    reports = _reports(monkeypatch, be2_data)
    run_trial({"_kind": "score", "_candidates": candidates, "_phase": "score"}, settings)
    (final,) = reports
    scores = [float(s) for s in final["naswot_scores"].strip("[]").split(",")]
    assert scores == pytest.approx(expected, rel=1e-6) and scores[0] != pytest.approx(scores[1])
    assert final[NASWOT_METRIC] == pytest.approx(max(expected), rel=1e-6) and final["n_candidates"] == 2
    assert final["proxy"] == proxy
    # the pruner's wrapper: the score first, then kept in every report of the training
    reports = _reports(monkeypatch, be2_data)
    run_trial({**candidates[1], "_naswot": True}, settings)
    assert reports[0] == {NASWOT_METRIC: pytest.approx(expected[1], rel=1e-6), "naswot_reason": "", "phase": "naswot",
                          "proxy": proxy}
    assert all(r[NASWOT_METRIC] == reports[0][NASWOT_METRIC] for r in reports)
    assert reports[-1]["status"] == "completed" and math.isfinite(reports[-1][METRIC])
    reports = _reports(monkeypatch, be2_data)
    run_trial(dict(candidates[1]), settings)  # not flagged: no score
    assert all(NASWOT_METRIC not in r for r in reports)
