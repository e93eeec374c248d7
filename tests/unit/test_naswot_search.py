"""NASWOT fixed: scores every architecture in chunks without training, trains the best once
with the fixed settings; failures, sampling of large spaces, save/restore, config errors."""

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
from hpsearch_searchers.naswot import architecture_candidates


class TestNaswotConformance(SearcherConformance):
    strategy_name = "naswot"
    space = {"n_layers": [1, 2], "width": [8, 16], "activation": ["ReLU", "Tanh"]}
    options = {"chunk_size": 3}
    fixed = {"learning_rate": 1e-3}
    expected_trials = 4  # 8 architectures in chunks of 3 -> 3 score trials, + 1 training

    def check_config(self, config: dict[str, Any]) -> None:
        if config.get("_kind") == "score":
            assert 1 <= len(config["_candidates"]) <= 3
        else:
            assert config["_phase"] == "train-best"
            assert "learning_rate" not in config  # the fixed settings come from `fixed`


SPACE = {"n_layers": [1, 2, 3], "width": [16, 32, 64, 128], "activation": ["ReLU", "Tanh"]}
BEST = {"n_layers": 2, "width": 64, "activation": "Tanh"}


def scripted_score(arch: dict[str, Any]) -> float:
    """A known score with its maximum 100 at BEST."""
    return 100.0 - (arch["n_layers"] - 2) ** 2 - abs(math.log2(arch["width"]) - 6) - (arch["activation"] != "Tanh")


def scripted_reports(config: dict[str, Any]) -> list[dict[str, Any]]:
    if config["_kind"] == "score":
        scores = [scripted_score(c) for c in config["_candidates"]]
        return [{"naswot_scores": scores, "naswot_reasons": [""] * len(scores), NASWOT_METRIC: max(scores)}]
    return [{METRIC: 2.5, "status": "completed"}]


def make(space: dict[str, Any] | None = None, max_trials: int | None = None, seed: int = 0, **options: Any):
    cls = load_strategy("naswot")
    strategy = cls(SearchSpace.model_validate(space or SPACE), cls.Options(**options),
                   StrategyContext(seed=seed, fixed={"learning_rate": 1e-3}, max_trials=max_trials))
    strategy.validate()
    return strategy.make_searcher()


def test_picks_the_best_scripted_score_and_trains_it_once() -> None:
    searcher = make(chunk_size=5)
    log = SearcherDriver(searcher, max_concurrent=4, reports=scripted_reports).run()
    assert log.finished
    score_trials = [c for c in log.configs if c["_kind"] == "score"]
    train_trials = [c for c in log.configs if c["_kind"] == "train"]
    assert len(score_trials) == math.ceil(24 / 5)
    assert train_trials == [{**BEST, "_kind": "train", "_phase": "train-best"}]
    assert log.configs[-1] is train_trials[0]
    assert searcher.best_architecture == BEST
    assert searcher.best_config == BEST and searcher.best_value == 2.5
    recorded = {canonical(arch): score for arch, score in searcher.scores}
    assert len(recorded) == 24
    assert all(recorded[canonical(arch)] == scripted_score(arch) for arch, _ in searcher.scores)


def test_chunks_cover_every_architecture_once_in_order() -> None:
    searcher = make(chunk_size=7)
    chunks = []
    while (config := searcher.suggest(f"t{len(chunks)}")) is not None:
        chunks.append(config["_candidates"])
    assert [len(c) for c in chunks] == [7, 7, 7, 3]
    flat = [canonical(a) for chunk in chunks for a in chunk]
    expected = [canonical(a) for a in architecture_candidates(SearchSpace.model_validate(SPACE), 5000)]
    assert flat == expected and len(set(flat)) == 24
    assert searcher.suggest("wait") is None  # nothing to train before every chunk is scored


def test_layers_beyond_n_layers_are_scored_once() -> None:
    space = SearchSpace.model_validate({"n_layers": [1, 2], "width_1": [8, 16], "width_2": [8, 16]})
    candidates = architecture_candidates(space, 100)
    assert len(candidates) == 2 + 4
    assert {"n_layers": 1, "width_1": 8} in candidates
    assert all(("width_2" in c) == (c["n_layers"] == 2) for c in candidates)


def test_large_spaces_are_sampled_reproducibly() -> None:
    space = SearchSpace.model_validate({"width_1": list(range(8, 72)), "width_2": list(range(8, 72)),
                                        "activation": ["ReLU", "Tanh", "Sigmoid"]})
    first = architecture_candidates(space, 50, seed=1)
    assert len(first) == 50 and len({canonical(c) for c in first}) == 50
    assert first == architecture_candidates(space, 50, seed=1)
    assert first != architecture_candidates(space, 50, seed=2)
    searcher = make({"width_1": list(range(8, 72)), "width_2": list(range(8, 72))}, max_candidates=30, chunk_size=10)
    log = SearcherDriver(searcher, max_concurrent=4, reports=scripted_reports_widths).run()
    assert sum(c["_kind"] == "score" for c in log.configs) == 3 and len(searcher.scores) == 30


def scripted_reports_widths(config: dict[str, Any]) -> list[dict[str, Any]]:
    if config["_kind"] == "score":
        scores = [float(c["width_1"] + c["width_2"]) for c in config["_candidates"]]
        return [{"naswot_scores": scores, "naswot_reasons": [""] * len(scores)}]
    return [{METRIC: 1.0, "status": "completed"}]


def test_failed_and_degenerate_scores_are_never_chosen() -> None:
    searcher = make(chunk_size=6)
    chunks = {}
    while (config := searcher.suggest(f"t{len(chunks)}")) is not None:
        chunks[f"t{len(chunks)}"] = config["_candidates"]
    best_chunk = next(t for t, c in chunks.items() if BEST in c)
    for trial_id, candidates in chunks.items():
        if trial_id == best_chunk:
            searcher.on_trial_complete(trial_id, None, error=True)  # the chunk holding BEST fails
            continue
        scores = [scripted_score(c) for c in candidates]
        reasons = [""] * len(scores)
        scores[0], reasons[0] = 1e9, "constant gradients"  # a degenerate network, however high
        searcher.on_trial_complete(trial_id, {"naswot_scores": scores, "naswot_reasons": reasons})
    final = searcher.suggest("final")
    scored = [(s, a) for a, s in searcher.scores if s is not None]
    assert len(scored) == 24 - 6 - 3
    assert final["_phase"] == "train-best"
    chosen = {k: v for k, v in final.items() if not k.startswith("_")}
    assert chosen == max(scored, key=lambda x: x[0])[1]
    assert chosen != BEST


def test_scores_reported_as_json_text_count_the_same() -> None:
    """Trials may report the lists as JSON text (Tune's TBX logger skips strings instead of warning)."""
    import json

    def as_json(config: dict[str, Any]) -> list[dict[str, Any]]:
        reports = scripted_reports(config)
        if config["_kind"] == "score":
            reports[0].update({k: json.dumps(reports[0][k]) for k in ("naswot_scores", "naswot_reasons")})
        return reports

    searcher = make(chunk_size=5)
    log = SearcherDriver(searcher, max_concurrent=4, reports=as_json).run()
    assert log.finished and searcher.best_architecture == BEST
    assert len([s for _, s in searcher.scores if s is not None]) == 24


def test_nothing_scored_means_nothing_trained() -> None:
    searcher = make(chunk_size=100)
    config = searcher.suggest("a")
    searcher.on_trial_complete("a", {"naswot_scores": [1.0]})  # wrong length: the chunk failed
    assert searcher.suggest("b") == "FINISHED"
    assert config["_kind"] == "score" and searcher.best_architecture is None


def test_restore_mid_scoring_goes_on(tmp_path) -> None:
    full = SearcherDriver(make(chunk_size=4), max_concurrent=2, reports=scripted_reports).run()
    first = SearcherDriver(make(chunk_size=4), max_concurrent=2, reports=scripted_reports)
    first.run(stop_after=3)
    first.searcher.save(str(tmp_path / "naswot.pkl"))
    restored = make(chunk_size=4)
    restored.restore(str(tmp_path / "naswot.pkl"))
    log = first.handover(restored).run()
    assert [canonical(c) for c in log.configs] == [canonical(c) for c in full.configs]
    assert len(restored.scores) == 24 and all(s is not None for _, s in restored.scores)


def test_config_errors() -> None:
    cls = load_strategy("naswot")
    only_optimisation = SearchSpace.model_validate({"learning_rate": [1e-3, 1e-2]})
    with pytest.raises(ConfigError, match="no architecture hyperparameter"):
        cls(only_optimisation, cls.Options(), StrategyContext()).validate()
    continuous = SearchSpace.model_validate({"width": [8, 16], "dropout": {"type": "float", "low": 0.0, "high": 0.5}})
    with pytest.raises(ConfigError, match="dropout.*levels"):
        cls(continuous, cls.Options(), StrategyContext()).validate()
    with pytest.raises(ConfigError, match="needs 6 trials.*max_trials is 3"):
        make(max_trials=3, chunk_size=5)
    with pytest.raises(Exception, match="chunk_size"):
        cls.Options(chunk_size=0)


# -- end to end: the real runner, trainable and data on a local Ray -----------------------------
@pytest.mark.ray
@pytest.mark.slow
def test_end_to_end_on_the_small_dataset(ray_local: Any, small_store: Path, tmp_path: Path) -> None:
    from hpsearch.api import Experiment

    experiment = Experiment.from_dict({
        "name": "naswot-e2e",
        "dataset": {"store": str(small_store)},
        "search_space": {"n_layers": [1, 2], "width": [8, 16]},
        "strategy": {"name": "naswot", "options": {"chunk_size": 2}},
        "fixed": {"max_epochs": 5, "patience": 3, "batch_size": 64, "learning_rate": 1e-2},
        "naswot": {"batch_size": 32, "n_init": 2},
        "budget": {"max_concurrent": 2},
        "storage_path": str(tmp_path / "study"),
    })
    result = experiment.run()
    trials = result.trials
    assert list(trials["kind"]) == ["score", "score", "train"]
    assert list(trials["n_candidates"][:2]) == [2, 2]
    scores = trials[trials["kind"] == "score"]
    assert set(scores["status"]) == {"completed"}, trials[["status", "reason"]]
    trained = trials.iloc[-1]
    assert trained["phase"] == "train-best"
    assert result.best_config is None or result.best_config["width"] == trained["width"]
