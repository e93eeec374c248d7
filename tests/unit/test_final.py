"""Seeds of the winner's retrains: never a trial's, and independent between repeated studies."""

from __future__ import annotations

from hpsearch.config.experiment import ExperimentConfig
from hpsearch.tune.final import retrain_seeds


def _config(seed: int, retrains: int = 5) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"name": "s", "search_space": {"width": [8, 16]}, "seed": seed,
                                            "retrains": retrains})


def test_retrain_seeds_differ_between_repeats_and_from_trials() -> None:
    seeds = {s: retrain_seeds(_config(s), 5) for s in range(6)}
    flat = [x for values in seeds.values() for x in values]
    assert len(set(flat)) == len(flat)  # the repeats of a benchmark never share a retrain seed
    trial_seeds = {s + k + r for s in range(6) for k in range(1000) for r in range(4)}  # seed + _seed + repeat
    assert not trial_seeds & set(flat)
    assert retrain_seeds(_config(3), 5) == retrain_seeds(_config(3), 5)  # reproducible
