"""After the search: retrain the winning configuration with new seeds, as the paper does.

The paper trains every method's winner five times with different initialisations and reports
the mean and standard deviation of the band-energy error; the best of those networks is kept
(saved with its scalers) for MLflow.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.config.experiment import ExperimentConfig, network_spec, training_settings

logger = logging.getLogger(__name__)

FINAL_MODEL = "final_model.pt"


@dataclass
class FinalEvaluation:
    """The winner retrained `n` times: errors (meV/atom), their mean and std, the best model file."""

    values: list[float]
    mean: float
    std: float
    seeds: list[int]
    n_parameters: int
    architecture: dict[str, Any]
    model_path: Path | None = None
    training_seconds: float = 0.0
    statuses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": self.values, "mean": self.mean, "std": self.std, "seeds": self.seeds,
            "n_parameters": self.n_parameters, "architecture": self.architecture,
            "model_path": str(self.model_path) if self.model_path else None,
            "training_seconds": self.training_seconds, "statuses": self.statuses,
        }


def retrain_winner(
    config: ExperimentConfig, best_config: dict[str, Any], data: Any, folder: Path, n: int
) -> tuple[FinalEvaluation, Any]:
    """Train `best_config` with `n` fresh seeds on `data` (TrainingData).

    Returns the evaluation and the best TrainingResult (None when every training failed); the
    best model is also saved in `folder`.
    """
    import time

    from hpsearch.model import count_parameters, evaluate, train

    params = {**config.hyperparameter_defaults(), **best_config}
    spec = network_spec(params, data.n_features, data.n_energies)
    values: list[float] = []
    statuses: list[str] = []
    seeds = [config.seed + 10_000 + i for i in range(n)]  # never the seeds of the search's trials
    best_value, best_result = math.inf, None
    started = time.perf_counter()
    for seed in seeds:
        result = train(spec, training_settings(params, config.training, seed), data, device=config.training.device)
        statuses.append(result.status)
        value = evaluate(result.model, result.scalers, data.test).mean_band_energy_error_mev_per_atom if result.ok else math.nan
        values.append(float(value))
        logger.info("retrain %d/%d (seed %d): %s, %.4g meV/atom", len(values), n, seed, result.status, value)
        if math.isfinite(value) and value < best_value:
            best_value, best_result = value, result
    good = np.array([v for v in values if math.isfinite(v)])
    final = FinalEvaluation(
        values=values,
        mean=float(good.mean()) if good.size else math.nan,
        std=float(good.std(ddof=1)) if good.size > 1 else (0.0 if good.size else math.nan),
        seeds=seeds,
        n_parameters=count_parameters(best_result.model) if best_result is not None else 0,
        architecture={"n_in": spec.n_in, "widths": list(spec.widths), "activations": list(spec.hidden_activations),
                      "n_out": spec.n_out},
        training_seconds=time.perf_counter() - started,
        statuses=statuses,
    )
    if best_result is not None:
        final.model_path = best_result.save_model(folder / FINAL_MODEL)
    return final, best_result
