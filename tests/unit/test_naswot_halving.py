"""naswot-halving: the conformance suite (fixed and TPE settings, resume included), the rung plan,
survivor selection and promotion on scripted scores and errors, spent epochs, config errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, NASWOT_METRIC, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherConformance, SearcherDriver, canonical
from hpsearch_searchers.naswot_halving import rung_plan

SMALL = {"n_layers": [1, 2], "width": [8, 16], "activation": ["ReLU", "Tanh"]}


class TestNaswotHalvingConformance(SearcherConformance):
    strategy_name = "naswot-halving"
    space = SMALL
    options = {"chunk_size": 3, "top_k": 4, "min_epochs": 1, "reduction_factor": 2}
    fixed = {"max_epochs": 4, "learning_rate": 1e-3}
    max_concurrent = 2
    expected_trials = 3 + 4 + 2 + 1  # 8 architectures in chunks of 3, then rungs of 4, 2, 1

    def check_config(self, config: dict[str, Any]) -> None:
        if config.get("_kind") == "train":
            rung = int(config["_phase"].removeprefix("rung-"))
            assert config["max_epochs"] == (1, 2, 4)[rung]
            assert "learning_rate" not in config  # fixed settings come from `fixed`


class TestNaswotHalvingTPEConformance(TestNaswotHalvingConformance):
    space = {**SMALL, "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    options = {**TestNaswotHalvingConformance.options, "optimisation": "tpe", "n_startup_trials": 2}
    fixed = {"max_epochs": 4}

    def check_config(self, config: dict[str, Any]) -> None:
        if config.get("_kind") == "train":
            assert 1e-4 <= config["learning_rate"] <= 1e-2


SPACE = {"n_layers": [1, 2, 3], "width": [16, 32, 64, 128], "activation": ["ReLU", "Tanh"]}


def score(arch: dict[str, Any]) -> float:
    """A scripted NASWOT score: wider is better, Tanh better than ReLU."""
    return math.log2(arch["width"]) + (arch["activation"] == "Tanh") + 0.1 * arch["n_layers"]


def error(config: dict[str, Any]) -> float:
    """A scripted error that disagrees with the score: 2 layers of 32 are best; more epochs help."""
    arch_error = abs(config["n_layers"] - 2) + abs(math.log2(config["width"]) - 5) + (config["activation"] == "ReLU")
    return 1.0 + arch_error + 4.0 / config["max_epochs"]


def reports(config: dict[str, Any]) -> list[dict[str, Any]]:
    if config["_kind"] == "score":
        scores = [score(c) for c in config["_candidates"]]
        return [{"naswot_scores": scores, "naswot_reasons": [""] * len(scores), NASWOT_METRIC: max(scores),
                 "trial_seconds": 0.5}]
    return [{"epoch": 1, "val_loss": 1.0},
            {METRIC: error(config), "status": "completed", "epochs": config["max_epochs"], "trial_seconds": 2.0}]


def make(space: dict[str, Any] | None = None, max_trials: int | None = None, fixed: dict[str, Any] | None = None,
         **options: Any):
    cls = load_strategy("naswot-halving")
    context = StrategyContext(fixed=fixed if fixed is not None else {"max_epochs": 27}, max_trials=max_trials)
    strategy = cls(SearchSpace.model_validate(space or SPACE), cls.Options(**options), context)
    strategy.validate()
    return strategy


def test_rung_plan() -> None:
    assert rung_plan(9, 3, 27, 3) == [(9, 3), (3, 9), (1, 27)]
    assert rung_plan(8, 1, 4, 2) == [(8, 1), (4, 2), (2, 4)]
    assert rung_plan(4, 5, 10, 3) == [(4, 5), (1, 10)]  # one survivor left: straight to max_epochs
    assert rung_plan(3, 30, 20, 3) == [(3, 20)]


def test_top_k_by_score_then_halving_by_error() -> None:
    strategy = make(top_k=9, chunk_size=10)
    searcher = strategy.make_searcher()
    log = SearcherDriver(searcher, max_concurrent=3, reports=reports).run()
    assert log.finished
    train = [c for c in log.configs if c["_kind"] == "train"]
    arch = ("n_layers", "width", "activation")
    candidates = [{k: c[k] for k in arch} for c in train if c["_phase"] == "rung-0"]
    every = [{"n_layers": n, "width": w, "activation": a} for n in SPACE["n_layers"] for w in SPACE["width"]
             for a in SPACE["activation"]]
    expected = sorted(every, key=lambda a: -score(a))[:9]  # the 9 best scores, independently
    assert sorted(map(canonical, candidates)) == sorted(map(canonical, expected))
    rung1 = [c for c in train if c["_phase"] == "rung-1"]
    rung2 = [c for c in train if c["_phase"] == "rung-2"]
    assert [len(candidates), len(rung1), len(rung2)] == [9, 3, 1]
    best3 = sorted(candidates, key=lambda a: error({**a, "max_epochs": 3}))[:3]
    assert sorted(canonical({k: c[k] for k in arch}) for c in rung1) == sorted(map(canonical, best3))
    assert {c["max_epochs"] for c in rung1} == {9} and rung2[0]["max_epochs"] == 27
    winner = min(rung1, key=error)
    assert {k: rung2[0][k] for k in arch} == {k: winner[k] for k in arch}
    assert searcher.best_config == {k: v for k, v in rung2[0].items() if not k.startswith("_")}
    assert searcher.best_value == pytest.approx(error(rung2[0]))
    spent = searcher.spent
    assert spent["epochs"] == 9 * 3 + 3 * 9 + 27 and spent["trainings"] == 13
    assert spent["score_trials"] == math.ceil(24 / 10)
    assert spent["trial_seconds"] == pytest.approx(0.5 * 3 + 2.0 * 13)
    assert [r["epochs"] for r in searcher.rungs] == [3, 9, 27]


def test_top_fraction_and_failed_trainings_are_not_promoted() -> None:
    strategy = make(top_fraction=0.25, chunk_size=24, reduction_factor=2, min_epochs=2, fixed={"max_epochs": 8})
    searcher = strategy.make_searcher()
    first = [searcher.suggest("score")]
    searcher.on_trial_complete("score", reports(first[0])[-1])
    rung0 = {f"t{i}": searcher.suggest(f"t{i}") for i in range(6)}
    assert all(c["_phase"] == "rung-0" for c in rung0.values())  # ceil(0.25 * 24) = 6 survivors
    assert searcher.suggest("wait") is None
    ranked = sorted(rung0, key=lambda t: error(rung0[t]))
    searcher.on_trial_complete(ranked[0], None, error=True)  # the best one crashes
    for trial_id in ranked[1:]:
        searcher.on_trial_complete(trial_id, reports(rung0[trial_id])[-1])
    rung1 = [searcher.suggest("u0"), searcher.suggest("u1"), searcher.suggest("u2")]
    assert [c["_phase"] for c in rung1] == ["rung-1"] * 3 and searcher.suggest("u3") is None
    assert sorted(canonical(c) for c in rung1) == sorted(canonical({**rung0[t], "max_epochs": 4, "_phase": "rung-1"})
                                                         for t in ranked[1:4])


def test_restore_mid_halving_goes_on(tmp_path: Path) -> None:
    full = SearcherDriver(make(top_k=9, chunk_size=8).make_searcher(), max_concurrent=2, reports=reports).run()
    first = SearcherDriver(make(top_k=9, chunk_size=8).make_searcher(), max_concurrent=2, reports=reports)
    first.run(stop_after=8)  # 3 score trials + 5 of rung 0
    first.searcher.save(str(tmp_path / "halving.pkl"))
    restored = make(top_k=9, chunk_size=8).make_searcher()
    restored.restore(str(tmp_path / "halving.pkl"))
    log = first.handover(restored).run()
    assert [canonical(c) for c in log.configs] == [canonical(c) for c in full.configs]
    assert restored.spent["epochs"] == 9 * 3 + 3 * 9 + 27


def test_config_errors() -> None:
    cls = load_strategy("naswot-halving")
    with pytest.raises(Exception, match="proxy 'not-a-proxy' is not available; known: naswot, .*synflow"):
        cls.Options(proxy="not-a-proxy")
    with pytest.raises(Exception, match="top_k.*or top_fraction"):
        cls.Options(top_k=3, top_fraction=0.5)
    with pytest.raises(ConfigError, match="sets max_epochs itself"):
        make({**SPACE, "max_epochs": [5, 10]})
    with pytest.raises(ConfigError, match="min_epochs 30 exceeds max_epochs 27"):
        make(min_epochs=30)
    with pytest.raises(ConfigError, match="optimisation: tpe needs optimisation hyperparameters"):
        make(optimisation="tpe")
    with pytest.raises(ConfigError, match=r"needs 16 trials \(3 score trials \+ 13 trainings"):
        make(max_trials=15, chunk_size=10)
    with pytest.raises(ConfigError, match="fixed.max_epochs"):
        make(fixed={})
