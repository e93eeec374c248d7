"""The guard rails on a training-free pick: the concerns, the score table, and the NASWOT searchers'
WARNING when the pick is the smallest network of the space or a narrow saturating one."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from hpsearch.config.experiment import network_spec
from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, StrategyContext
from hpsearch.model import NetworkSpec, build_network, count_parameters
from hpsearch.scoring.guard_rails import Network, network_of, pick_concerns, score_table
from hpsearch.scoring.proxies import DEFAULT_PROXY
from hpsearch.testing import SearcherDriver

SPACE = {"n_layers": [1, 2, 3], "width": [8, 16, 32, 64], "activation": ["ReLU", "Sigmoid"]}
N_IN, N_OUT = 91, 11


def _network(widths: tuple[int, ...], activation: str) -> Network:
    return network_of(NetworkSpec(n_in=N_IN, n_out=N_OUT, widths=widths, activations=activation))


@pytest.mark.parametrize("widths", [(), (8,), (16, 32), (64, 64, 64)])
def test_network_of_counts_the_parameters_of_the_built_network(widths: tuple[int, ...]) -> None:
    spec = NetworkSpec(n_in=N_IN, n_out=N_OUT, widths=widths, activations="Tanh")
    assert network_of(spec).n_params == count_parameters(build_network(spec, seed=0))
    assert network_of(spec).widths == widths and set(network_of(spec).activations) <= {"Tanh"}


def test_concerns_by_hand() -> None:
    nets = [_network((8,), "ReLU"), _network((64,), "ReLU"), _network((64, 64), "ReLU"), _network((16,), "Sigmoid"),
            _network((64,), "Tanh")]
    scores: list[float | None] = [5.0, 4.0, 3.0, 2.0, 1.0]
    smallest = pick_concerns(nets, scores, 0)
    assert len(smallest) == 1 and "is the smallest of the 5 scored candidates (0 have fewer" in smallest[0]
    assert pick_concerns(nets, scores, 2) == []  # the widest ReLU: nothing to say
    assert pick_concerns(nets, scores, 4) == []  # saturating, but no wider candidate
    narrow = pick_concerns(nets, scores, 3)  # 1x16 Sigmoid: 1 of 5 smaller (20 %), narrower than 64
    assert len(narrow) == 1 and "saturating activation (Sigmoid)" in narrow[0] and "widths up to 64" in narrow[0]
    # unscored candidates do not count: alone among the scored ones, the 8-wide pick is no longer "smallest"
    assert pick_concerns(nets, [5.0, None, None, None, None], 0) == []
    table = score_table(nets, scores, 3, top=2, widest=1)
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["rank", "score"] and "8 ReLU" in lines[1] and "64 ReLU" in lines[2]
    assert "widest" in lines[3] and "64x64 ReLU" in lines[4]
    assert "<- pick" not in table  # the pick (rank 4) is neither in the top 2 nor the widest
    assert "<- pick" in score_table(nets, scores, 0)


def _run(scores_of: Any, caplog: pytest.LogCaptureFixture, name: str = "naswot") -> list[str]:
    """Drive a NASWOT strategy whose score trials report `scores_of(network)` for each candidate."""
    cls = load_strategy(name)
    space = SearchSpace.model_validate(SPACE)
    options = cls.Options(chunk_size=7, **({"top_k": 2, "min_epochs": 1} if name == "naswot-halving" else {}))
    strategy = cls(space, options, StrategyContext(fixed={"max_epochs": 2}))

    def reports(trial: dict[str, Any]) -> list[dict[str, Any]]:
        if trial["_kind"] == "score":
            assert trial["_proxy"] == DEFAULT_PROXY
            specs = [network_spec({**c, "dropout": 0.0}, N_IN, N_OUT) for c in trial["_candidates"]]
            nets = [network_of(s) for s in specs]
            return [{"naswot_scores": json.dumps([scores_of(n) for n in nets]),
                     "naswot_reasons": json.dumps([""] * len(nets)), "proxy": trial["_proxy"],
                     "candidate_networks": json.dumps([n.to_dict() for n in nets]), "status": "completed"}]
        return [{METRIC: 1.0, "status": "completed", "epochs": 1}]

    with caplog.at_level(logging.WARNING, logger="hpsearch_searchers"):
        log = SearcherDriver(strategy.make_searcher(), max_concurrent=2, reports=reports).run()
    assert log.finished
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "before trusting" in r.getMessage()]


@pytest.mark.parametrize("name", ["naswot", "naswot-halving"])
def test_the_pick_of_the_smallest_network_is_warned_with_the_score_table(name: str,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    warnings = _run(lambda net: -float(net.n_params), caplog, name)  # a proxy that prefers small networks
    assert len(warnings) == 1, warnings
    message = warnings[0]
    assert "the pick 8 ReLU" in message and "is the smallest of the 24 scored candidates" in message
    assert "<- pick" in message and "the widest candidates" in message and "64x64x64" in message


def test_a_narrow_saturating_pick_is_warned_and_a_wide_relu_pick_is_not(caplog: pytest.LogCaptureFixture) -> None:
    def prefers_narrow_sigmoid(net: Network) -> float:
        return 100.0 if net.widths == (32,) and net.activations == ("Sigmoid",) else float(net.n_params) / 1e6

    warnings = _run(prefers_narrow_sigmoid, caplog)
    assert len(warnings) == 1 and "saturating activation (Sigmoid)" in warnings[0] and "smallest" not in warnings[0]
    caplog.clear()
    assert _run(lambda net: float(net.n_params) * (net.activations[0] == "ReLU"), caplog) == []
