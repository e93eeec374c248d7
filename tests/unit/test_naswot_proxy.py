"""The NASWOT strategies' `proxy` option: validation against the registry, score trials that compute
the named proxy on real Be2 data, a halving study that ranks by it, and `proxy: auto` chosen on a
trained pilot of training + validation snapshots only."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from hpsearch.config.experiment import ExperimentConfig, network_spec, parse_experiment, training_settings
from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, NASWOT_METRIC, SearchData, StrategyContext
from hpsearch.config.trials import TrialContext
from hpsearch.data.splits import Split
from hpsearch.errors import ConfigError
from hpsearch.model import TrainingData, build_network
from hpsearch.physics import EnergyGrid
from hpsearch.scoring import init_seeds
from hpsearch.scoring.proxies import DEFAULT_PROXY, proxy_score
from hpsearch.scoring.proxy_study import proxy_batch, run_proxy_study
from hpsearch.testing import SearcherDriver, canonical
from hpsearch_searchers._naswot_proxy import pilot_config
from hpsearch_searchers._naswot_trials import ProxyScoring, score_candidates

SPACE = {"n_layers": [1, 2], "width": [8, 16, 32], "activation": ["ReLU", "Tanh"]}
FIXED = {"max_epochs": 3, "patience": None, "batch_size": 512, "learning_rate": 1e-3}
STRATEGIES = ("naswot", "naswot-optimized", "naswot-halving")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the machine is shared; results do not depend on it


@pytest.fixture(scope="module")
def be2(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Split, TrainingData]:
    """The Be2 store; the search split (2 training, 1 validation snapshot; its test snapshot held out)."""
    from hpsearch.data.mala import import_mala
    from hpsearch.data.splits import split_snapshots
    from hpsearch.data.store import open_store

    path = import_mala(be2_dir, tmp_path_factory.mktemp("be2") / "be2.h5", EnergyGrid(-5.0, 2.5, 11))
    with open_store(path) as store:
        full = split_snapshots(store.names, 2, 1, 1)
    search = Split(train=full.train, validation=full.validation, test=())
    return path, search, TrainingData.from_store(path, search)


def _config(**strategy_options: Any) -> ExperimentConfig:
    return parse_experiment({
        "name": "proxy", "dataset": {"store": "default"}, "search_space": SPACE, "fixed": FIXED,
        "strategy": {"name": "naswot", "options": strategy_options}, "naswot": {"batch_size": 32, "n_init": 2},
        "seed": 3,
    })


def _context(config: ExperimentConfig, data: TrainingData) -> TrialContext:
    return TrialContext(data=data, defaults=config.hyperparameter_defaults(), training=config.training,
                        naswot=config.naswot, repeats=1, seed=config.seed, device="cpu",
                        report=lambda m: None, keep=lambda m: None)


def _every() -> list[dict[str, Any]]:
    return [{"n_layers": n, "width": w, "activation": a} for n in SPACE["n_layers"] for w in SPACE["width"]
            for a in SPACE["activation"]]


def _reference(proxy: str, config: ExperimentConfig, data: TrainingData, archs: list[dict[str, Any]]) -> list[float]:
    """The proxy of each architecture, one network per initialisation, averaged (the reference path)."""
    defaults = config.hyperparameter_defaults()
    x, y = proxy_batch(data, training_settings(defaults, config.training, config.seed), 32, config.seed)
    out = []
    for arch in archs:
        spec = network_spec({**defaults, **arch}, data.n_features, data.n_energies)
        out.append(float(np.mean([proxy_score(proxy, build_network(spec, s), x, y, config.seed)
                                  for s in init_seeds(config.seed, 2)])))
    return out


# -- the option ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", STRATEGIES)
def test_proxy_option_is_checked_against_the_registry(name: str) -> None:
    cls = load_strategy(name)
    assert cls.Options().proxy == DEFAULT_PROXY
    assert cls.Options(proxy="synflow").proxy == "synflow" and cls.Options(proxy="auto").proxy == "auto"
    assert cls.Options(proxy="naswot-paper").proxy == "naswot-paper"
    with pytest.raises(Exception, match=r"proxy 'nope' is not available; known: naswot, .*synflow.*naswot-paper, auto"):
        cls.Options(proxy="nope")
    with pytest.raises(ConfigError, match=r"proxy 'nope' is not available; known: .*zico"):
        _config(proxy="nope")
    strategy = cls(SearchSpace.model_validate(SPACE), cls.Options(proxy="zico"), StrategyContext(fixed=FIXED))
    assert strategy.trial_kinds()["score"].run == ProxyScoring("zico")
    assert strategy.prepared(SearchData("/x.h5", Split((), (), ()), _config().naswot)) is strategy


# -- score trials on real data ---------------------------------------------------------------
@pytest.mark.parametrize("proxy", ["synflow", "snip"])
def test_score_trials_compute_the_named_proxy(be2: tuple[Path, Split, TrainingData], proxy: str) -> None:
    config = _config(proxy=proxy)
    archs = _every()[:4]
    result = score_candidates({"_kind": "score", "_candidates": archs}, _context(config, be2[2]), proxy)
    scores = json.loads(result["naswot_scores"])
    expected = _reference(proxy, config, be2[2], archs)
    assert scores == pytest.approx(expected, rel=1e-6) and len(set(scores)) == 4
    assert result[NASWOT_METRIC] == pytest.approx(max(expected), rel=1e-6) and result["proxy"] == proxy
    naswot = json.loads(score_candidates({"_candidates": archs}, _context(config, be2[2]))["naswot_scores"])
    assert naswot != pytest.approx(scores)  # the default still scores NASWOT


def test_a_halving_study_with_synflow_ranks_by_synflow(be2: tuple[Path, Split, TrainingData]) -> None:
    config = _config(proxy="synflow")
    context = _context(config, be2[2])
    cls = load_strategy("naswot-halving")
    strategy = cls(SearchSpace.model_validate(SPACE), cls.Options(proxy="synflow", top_k=3, chunk_size=5,
                                                                  min_epochs=1, reduction_factor=3),
                   StrategyContext(fixed={"max_epochs": 3}, seed=config.seed))
    strategy.validate()
    kind = strategy.trial_kinds()["score"]

    def reports(trial: dict[str, Any]) -> list[dict[str, Any]]:
        if trial["_kind"] == "score":
            return [kind.run(dict(trial), context)]
        return [{METRIC: float(trial["width"]), "status": "completed", "epochs": trial["max_epochs"]}]

    log = SearcherDriver(strategy.make_searcher(), max_concurrent=2, reports=reports).run()
    assert log.finished
    rung0 = [{k: c[k] for k in SPACE} for c in log.configs if c.get("_phase") == "rung-0"]
    every = _every()
    synflow = _reference("synflow", config, be2[2], every)
    naswot = json.loads(score_candidates({"_candidates": every}, context)["naswot_scores"])
    by_synflow = [every[i] for i in np.argsort(synflow)[::-1][:3]]
    by_naswot = [every[i] for i in np.argsort(naswot)[::-1][:3]]
    assert sorted(map(canonical, rung0)) == sorted(map(canonical, by_synflow))
    assert sorted(map(canonical, by_synflow)) != sorted(map(canonical, by_naswot))  # the proxy made a difference


# -- proxy: auto ---------------------------------------------------------------------------------
def test_auto_chooses_on_a_pilot_of_training_and_validation_snapshots(be2: tuple[Path, Split, TrainingData],
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    path, search, _ = be2
    config = _config(proxy="auto", pilot_size=5)
    strategy = config.make_strategy()
    data = SearchData(str(path), search, config.naswot)
    with caplog.at_level(logging.INFO, logger="hpsearch_searchers._naswot_proxy"):
        settled = strategy.prepared(data)
    chosen = settled.options.proxy
    assert chosen != "auto" and settled.options.pilot_size == 5 and settled.space == strategy.space
    assert settled.trial_kinds()["score"].run == ProxyScoring(chosen)
    assert any(f"proxy auto chose {chosen!r}" in r.getMessage() and "Kendall tau" in r.getMessage()
               for r in caplog.records)
    # independently: the same pilot, every proxy's Kendall tau from its rows; the most negative wins
    pilot = pilot_config(strategy, data).model_copy(update={"n_architectures": 5})
    study = run_proxy_study(pilot, split=search)
    assert len(study.rows) == 5 and set(study.split["test"]) == set()
    assert {"params", "naswot", "naswot-v1"} <= set(study.rows[0].scores)  # always candidates
    errors = [r.val_ldos_rmse for r in study.rows]  # judged on the LDOS loss, not the band energy
    taus = {name: kendalltau([r.scores[name] for r in study.rows], errors).statistic for name in study.rows[0].scores}
    finite = {k: v for k, v in taus.items() if np.isfinite(v)}
    best = min(finite.values())
    if best < finite["params"] - 1e-9:
        assert chosen in {k for k, v in finite.items() if v == pytest.approx(best, abs=1e-9)}
    else:  # nothing beats the size baseline on this pilot: params itself
        assert chosen == "params"
    with pytest.raises(ConfigError, match="never reads test snapshots"):
        run_proxy_study(pilot, split=Split(search.train, search.validation, ("Be_snapshot3",)))


# -- end to end: the real runner, trainable and data on a local Ray -----------------------------
@pytest.mark.ray
@pytest.mark.slow
def test_end_to_end_auto_proxy_on_the_small_dataset(ray_local: Any, small_store: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from hpsearch.api import Experiment

    experiment = Experiment.from_dict({
        "name": "naswot-auto-e2e",
        "dataset": {"store": str(small_store)},
        "search_space": {"n_layers": [1, 2], "width": [8, 16]},
        "strategy": {"name": "naswot", "options": {"chunk_size": 2, "proxy": "auto", "pilot_size": 4}},
        "fixed": {"max_epochs": 3, "patience": 2, "batch_size": 64, "learning_rate": 1e-2},
        "naswot": {"batch_size": 32, "n_init": 2},
        "storage_path": str(tmp_path / "study"),
    })
    with caplog.at_level(logging.INFO, logger="hpsearch_searchers._naswot_proxy"):
        result = experiment.run()
    chosen = [r.getMessage() for r in caplog.records if "proxy auto chose" in r.getMessage()]
    assert len(chosen) == 1, chosen
    trials = result.trials
    assert list(trials["kind"]) == ["score", "score", "train"]
    assert set(trials[trials["kind"] == "score"]["status"]) == {"completed"}, trials[["status", "reason"]]



def test_pilot_table_lists_every_pilot_proxy_best_first() -> None:
    from hpsearch.scoring.calibration import REGRET_KS, ProxyCalibration
    from hpsearch.scoring.proxy_report import calibration_table

    def row(name: str, tau: float) -> ProxyCalibration:
        return ProxyCalibration(name=name, n=12, n_degenerate=0, tau=tau, tau_ci=(tau - 0.2, tau + 0.2),
                                tau_p_value=0.1, rho=tau, rho_ci=(tau - 0.3, tau + 0.3),
                                regret={k: 1.1 for k in REGRET_KS}, tau_by_activation={}, partial_tau_params=tau)

    lines = calibration_table([row("synflow", 0.2), row("naswot", -0.4), row("zico", float("nan"))]).splitlines()
    assert lines[0].startswith("| proxy | Kendall tau") and "regret" in lines[0]
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["naswot", "synflow", "zico"]
    assert "-0.400 [-0.60, -0.20]" in lines[2] and "1.10" in lines[2]


# -- the default proxy, the paper's name, the log and MLflow params ---------------------------------
@pytest.mark.parametrize("name", STRATEGIES)
def test_every_naswot_strategy_ranks_with_DEFAULT_PROXY_unless_told(name: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    from hpsearch.scoring.proxies import proxy_sign

    cls = load_strategy(name)
    strategy = cls(SearchSpace.model_validate(SPACE), cls.Options(), StrategyContext(fixed=FIXED))
    assert strategy.options.proxy == DEFAULT_PROXY
    assert strategy.trial_kinds()["score"].run == ProxyScoring(DEFAULT_PROXY)
    first = strategy.make_searcher().suggest("t0")
    assert first["_kind"] == "score" and first["_proxy"] == DEFAULT_PROXY  # a resumed study keeps its proxy
    with caplog.at_level(logging.INFO, logger="hpsearch_searchers._naswot_proxy"):
        assert strategy.prepared(SearchData("/x.h5", Split((), (), ()), _config().naswot)) is strategy
    lines = [r.getMessage() for r in caplog.records if "ranking architectures by proxy" in r.getMessage()]
    assert len(lines) == 1 and repr(DEFAULT_PROXY) in lines[0] and proxy_sign(DEFAULT_PROXY) in lines[0]
    assert strategy.tracking_params() == {"proxy": DEFAULT_PROXY, "proxy_sign": proxy_sign(DEFAULT_PROXY)}
    paper = cls(SearchSpace.model_validate(SPACE), cls.Options(proxy="naswot-paper"), StrategyContext(fixed=FIXED))
    assert "paper sign" in paper.tracking_params()["proxy_sign"] and "MALA" in paper.tracking_params()["proxy_sign"]


def test_the_pruner_judges_with_DEFAULT_PROXY_unless_told() -> None:
    from hpsearch.config.registry import load_scheduler
    from hpsearch_searchers._naswot_trials import ProxyFirst

    cls = load_scheduler("naswot-pruner")
    plugin = cls(cls.Options(), StrategyContext())
    assert plugin.options.proxy == DEFAULT_PROXY
    (wrapper,) = plugin.trial_wrappers()
    assert wrapper.run == ProxyFirst(DEFAULT_PROXY)
    assert plugin.tracking_params()["pruner_proxy"] == DEFAULT_PROXY
    (paper,) = cls(cls.Options(proxy="naswot-paper"), StrategyContext()).trial_wrappers()
    assert paper.run == ProxyFirst("naswot-paper")
    with pytest.raises(Exception, match="proxy auto is offered by the naswot strategies"):
        cls.Options(proxy="auto")


def test_naswot_paper_scores_the_paper_convention(be2: tuple[Path, Split, TrainingData]) -> None:
    from hpsearch.scoring import naswot_mean_score
    from hpsearch.scoring.experiment import naswot_batch

    config = _config()
    context = _context(config, be2[2])
    archs = _every()[:3]
    defaults = config.hyperparameter_defaults()
    batch = naswot_batch(be2[2], training_settings(defaults, config.training, config.seed), 32, config.seed)
    specs = [network_spec({**defaults, **a}, be2[2].n_features, be2[2].n_energies) for a in archs]

    def scores(proxy: str) -> list[float]:
        result = score_candidates({"_candidates": archs, "_proxy": proxy}, context, "synflow")  # _proxy wins
        assert result["proxy"] == proxy
        return json.loads(result["naswot_scores"])

    for proxy, convention in (("naswot-paper", "paper"), ("naswot", "paper"), ("naswot-v1", "v1")):
        expected = [naswot_mean_score(s, batch, n_init=2, seed=config.seed,
                                      convention=convention).score  # type: ignore[arg-type]
                    for s in specs]
        assert scores(proxy) == pytest.approx(expected, rel=1e-9), proxy


# -- proxy: auto refuses a proxy that does not beat params ------------------------------------------
def _calibration(name: str, tau: float) -> Any:
    from hpsearch.scoring.calibration import REGRET_KS, ProxyCalibration

    return ProxyCalibration(name=name, n=12, n_degenerate=0, tau=tau, tau_ci=(tau - 0.2, tau + 0.2), tau_p_value=0.1,
                            rho=tau, rho_ci=(tau - 0.3, tau + 0.3), regret={k: 1.1 for k in REGRET_KS},
                            tau_by_activation={}, partial_tau_params=tau)


def test_auto_refuses_a_proxy_that_does_not_beat_params(caplog: pytest.LogCaptureFixture) -> None:
    from hpsearch.scoring.auto import select_proxy

    beaten = [_calibration("naswot", 0.18), _calibration("naswot-v1", -0.17), _calibration("params", -0.18)]
    with caplog.at_level(logging.WARNING, logger="hpsearch.scoring.auto"):
        assert select_proxy(beaten).name == "params"  # params ranks best: nothing to refuse
        assert not caplog.records
        tied = [_calibration("naswot-v1", -0.3), _calibration("params", -0.3), _calibration("zico", 0.1)]
        assert select_proxy(tied).name == "params"  # naswot-v1 wins the tie-break by name, but only ties params
    refused = [r.getMessage() for r in caplog.records]
    assert len(refused) == 1 and "refuses naswot-v1" in refused[0] and "falling back to params" in refused[0]
    better = [_calibration("synflow", -0.44), _calibration("params", -0.18), _calibration("naswot", 0.18)]
    assert select_proxy(better).name == "synflow"
