"""The outcome of a study: best configuration, trial table, compute and wall time; saved beside it.

Files in the study folder: ``result.json`` (everything but the table) and ``trials.csv``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hpsearch.config.strategy import LDOS_METRIC, METRIC, NASWOT_METRIC, STD_METRIC, finite_or_none
from hpsearch.errors import ConfigError

if TYPE_CHECKING:
    from ray.tune import Result, ResultGrid

    from hpsearch.model.baselines import BaselineReport

RESULT_FILE = "result.json"
TRIALS_FILE = "trials.csv"
COLUMNS = (
    "order", "trial_id", "kind", "phase", "status", "reason", METRIC, STD_METRIC, LDOS_METRIC,
    NASWOT_METRIC, "naswot_reason", "n_candidates", "training_seconds", "trial_seconds", "epochs", "n_parameters",
)


def trial_status(metrics: dict[str, Any], errored: bool) -> tuple[str, str]:
    """(status, reason) of a finished trial from its last result.

    A training trial whose last result has a NASWOT score, no error and no epoch was stopped by
    the pruner before training: ``pruned``; one stopped after some epochs (e.g. by ASHA): ``stopped``.
    """
    if errored:
        return "failed", "the trial raised; see its error file in the Tune folder"
    if not metrics:
        return "not run", ""
    if "status" in metrics:
        return str(metrics["status"]), str(metrics.get("reason") or "")
    if NASWOT_METRIC in metrics and METRIC not in metrics and "epoch" not in metrics:
        degenerate = metrics.get("naswot_reason")
        return "pruned", f"degenerate NASWOT score: {degenerate}" if degenerate else "NASWOT score below the threshold"
    return "stopped", "stopped before it finished"


_TRIAL_DIR = re.compile(r"_([0-9a-f]{8}(?:_\d{5})?)_(\d+)_")


def _id_and_order(result: Result) -> tuple[str | None, int]:
    """Tune's trial id and creation counter, read from the trial folder's name."""
    match = _TRIAL_DIR.search(Path(str(result.path)).name)
    return (match.group(1), int(match.group(2))) if match else (None, 10**9)


def _row(result: Result) -> dict[str, Any]:
    metrics = dict(result.metrics or {})
    config = dict(result.config or {})
    folder_id, order = _id_and_order(result)
    trial_id = str(metrics.get("trial_id") or folder_id)
    status, reason = trial_status(metrics, result.error is not None)
    if result.error is not None:
        reason = f"{type(result.error).__name__}: {result.error}"[:500]
    row: dict[str, Any] = {
        "order": order,
        "trial_id": trial_id,
        "kind": config.get("_kind", "train"),
        "phase": config.get("_phase", ""),
        "status": status,
        "reason": reason,
        METRIC: finite_or_none(metrics.get(METRIC)),
        STD_METRIC: finite_or_none(metrics.get(STD_METRIC)),
        LDOS_METRIC: finite_or_none(metrics.get(LDOS_METRIC)),
        NASWOT_METRIC: finite_or_none(metrics.get(NASWOT_METRIC)),
        "naswot_reason": metrics.get("naswot_reason") or "",
        "n_candidates": len(config.get("_candidates", [])) or None,
        "training_seconds": finite_or_none(metrics.get("training_seconds")),
        "trial_seconds": finite_or_none(metrics.get("time_total_s")),
        "epochs": metrics.get("epochs"),
        "n_parameters": metrics.get("n_parameters"),
    }
    row.update({k: v for k, v in config.items() if not k.startswith("_")})
    return row


def trials_frame(grid: ResultGrid) -> pd.DataFrame:
    """One row per trial, in the order Tune created them: ids, status, error, score, times, hyperparameters."""
    rows = sorted((_row(r) for r in grid), key=lambda r: r["order"])
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    hyper = [c for c in frame.columns if c not in COLUMNS]
    return frame[[*COLUMNS, *hyper]].reset_index(drop=True)


@dataclasses.dataclass
class StudyResult:
    """What ``Experiment.run()`` returns (errors in meV/atom, times in seconds).

    The search selects on validation: ``best_val_error_mev_per_atom`` is the winning trial's
    mean band-energy error over the validation snapshots. The test snapshots are read once, by
    the winner's retrains (``retrains`` > 0): ``test_error_mev_per_atom`` is their mean,
    ``test_error_std_mev_per_atom`` the sample std over retrain seeds, ``test_errors_mev_per_atom``
    one value per seed (NaN for a retrain that failed). ``test_ldos_rmse`` (mean),
    ``test_ldos_rmse_std`` and ``test_ldos_rmses`` (per seed) are the same for the LDOS RMSE (the
    store's LDOS units), the low-noise metric. ``baselines``: ridge and constant-mean LDOS
    predictors fitted on the study's own split after the search; ``skill`` = ridge's test LDOS RMSE
    over the winner's (> 1: the winner beats ridge). Compute is counted apart for the search
    (``core_seconds``/``gpu_seconds``: trial time x per-trial resources) and the retrains.
    """

    name: str
    best_config: dict[str, Any] | None
    best_val_error_mev_per_atom: float | None
    trials: pd.DataFrame
    core_seconds: float
    gpu_seconds: float
    wall_seconds: float
    results_dir: Path
    best_trial_id: str | None = None
    #: the winner retrained with new seeds (``retrains`` > 0), else None
    final: Any = None
    test_error_mev_per_atom: float | None = None
    test_error_std_mev_per_atom: float | None = None
    test_errors_mev_per_atom: list[float] = dataclasses.field(default_factory=list)
    retrain_core_seconds: float = 0.0
    retrain_gpu_seconds: float = 0.0
    #: what selected: the Tune metric of the experiment's ``objective``
    objective_metric: str = METRIC
    #: wall seconds per phase of the last run (ray_start_s, data_placement_s, setup_s, search_s,
    #: results_s, retrains_s, baselines_s, tracking_end_s)
    phases: dict[str, float] = dataclasses.field(default_factory=dict)
    test_ldos_rmse: float | None = None
    test_ldos_rmse_std: float | None = None
    test_ldos_rmses: list[float] = dataclasses.field(default_factory=list)
    #: ridge and constant-mean baselines of the study's split (None: not computed)
    baselines: BaselineReport | None = None

    @property
    def ridge_test_ldos_rmse(self) -> float | None:
        return self._baseline("ridge_test_ldos_rmse")

    @property
    def constant_test_ldos_rmse(self) -> float | None:
        return self._baseline("constant_test_ldos_rmse")

    @property
    def skill(self) -> float | None:
        """Ridge's test LDOS RMSE over the retrained winner's: > 1 means the winner beats ridge
        (None without baselines or retrains)."""
        if self.baselines is None:
            return None
        return finite_or_none(self.baselines.skill(self.test_ldos_rmse))

    def _baseline(self, key: str) -> float | None:
        return None if self.baselines is None else finite_or_none(self.baselines.metrics()[key])

    @property
    def best_error_mev_per_atom(self) -> float | None:
        """The winning trial's validation error (alias of ``best_val_error_mev_per_atom``)."""
        return self.best_val_error_mev_per_atom

    @property
    def search_core_s(self) -> float:
        return self.core_seconds

    @property
    def retrain_core_s(self) -> float:
        return self.retrain_core_seconds

    @classmethod
    def from_frame(
        cls, name: str, trials: pd.DataFrame, defaults: dict[str, Any], resources: dict[str, float],
        wall_seconds: float, results_dir: Path, objective_metric: str = METRIC,
    ) -> StudyResult:
        """Best = lowest objective (validation) among completed training trials; compute = trial time x resources."""
        done = trials[(trials["kind"] == "train") & (trials["status"] == "completed")]
        done = done[done[objective_metric].notna() & done[METRIC].notna()] if not done.empty else done
        done = _highest_rung(done)
        best_config, best_error, best_id = None, None, None
        if not done.empty:
            best = done.loc[done[objective_metric].idxmin()]
            hyper = [c for c in trials.columns if c not in COLUMNS]
            values = {k: _plain(best[k]) for k in hyper if not _missing(best[k])}
            best_config, best_error, best_id = {**defaults, **values}, float(best[METRIC]), str(best["trial_id"])
        seconds = float(trials["trial_seconds"].fillna(0.0).sum()) if not trials.empty else 0.0
        return cls(
            name=name, best_config=best_config, best_val_error_mev_per_atom=best_error, trials=trials,
            core_seconds=seconds * float(resources.get("cpu", 1.0)),
            gpu_seconds=seconds * float(resources.get("gpu", 0.0)),
            wall_seconds=wall_seconds, results_dir=results_dir, best_trial_id=best_id,
            objective_metric=objective_metric,
        )

    def set_final(self, final: Any) -> None:
        """Take the winner's retrains (a :class:`~hpsearch.tune.final.FinalEvaluation`): test errors, compute."""
        self.final = final
        self.test_errors_mev_per_atom = [float(v) for v in final.test_errors]
        self.test_error_mev_per_atom = finite_or_none(final.test_mean)
        self.test_error_std_mev_per_atom = finite_or_none(final.test_std)
        self.retrain_core_seconds = float(final.core_seconds)
        self.retrain_gpu_seconds = float(final.gpu_seconds)
        self.test_ldos_rmses = [float(v) for v in getattr(final, "test_ldos_rmses", [])]
        self.test_ldos_rmse = finite_or_none(getattr(final, "test_ldos_rmse", None))
        self.test_ldos_rmse_std = finite_or_none(getattr(final, "test_ldos_rmse_std", None))

    def counts(self) -> dict[str, int]:
        """Trials per status."""
        return {str(k): int(v) for k, v in self.trials["status"].value_counts().items()} if not self.trials.empty else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "best_config": self.best_config, "best_trial_id": self.best_trial_id,
            "objective_metric": self.objective_metric,
            "best_val_error_mev_per_atom": self.best_val_error_mev_per_atom, "n_trials": len(self.trials),
            "test_error_mev_per_atom": self.test_error_mev_per_atom,
            "test_error_std_mev_per_atom": self.test_error_std_mev_per_atom,
            "test_errors_mev_per_atom": self.test_errors_mev_per_atom,
            "test_ldos_rmse": self.test_ldos_rmse, "test_ldos_rmse_std": self.test_ldos_rmse_std,
            "test_ldos_rmses": self.test_ldos_rmses, "ridge_test_ldos_rmse": self.ridge_test_ldos_rmse,
            "constant_test_ldos_rmse": self.constant_test_ldos_rmse, "skill": self.skill,
            "baselines": self.baselines.to_dict() if self.baselines is not None else None,
            "status_counts": self.counts(), "search_core_s": self.core_seconds, "search_gpu_s": self.gpu_seconds,
            "retrain_core_s": self.retrain_core_seconds, "retrain_gpu_s": self.retrain_gpu_seconds,
            "wall_seconds": self.wall_seconds, "phases": self.phases, "results_dir": str(self.results_dir),
            "final": self.final.to_dict() if self.final is not None and hasattr(self.final, "to_dict") else self.final,
        }

    def save(self) -> Path:
        """Write result.json and trials.csv into the study folder; returns the folder."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.trials.to_csv(self.results_dir / TRIALS_FILE, index=False)
        (self.results_dir / RESULT_FILE).write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return self.results_dir

    @classmethod
    def load(cls, results_dir: str | Path) -> StudyResult:
        """The result saved in a study folder; ConfigError when the study has not finished a run."""
        folder = Path(results_dir)
        if not (folder / RESULT_FILE).is_file():
            raise ConfigError(f"no {RESULT_FILE} in {folder}: the study has not finished a run (try `hpsearch resume`)")
        data = json.loads((folder / RESULT_FILE).read_text())
        trials = pd.read_csv(folder / TRIALS_FILE) if (folder / TRIALS_FILE).is_file() else pd.DataFrame()
        return cls(
            name=data["name"], best_config=data["best_config"],
            best_val_error_mev_per_atom=data["best_val_error_mev_per_atom"],
            trials=trials, core_seconds=data["search_core_s"], gpu_seconds=data["search_gpu_s"],
            wall_seconds=data["wall_seconds"], results_dir=folder, best_trial_id=data.get("best_trial_id"),
            final=data.get("final"), test_error_mev_per_atom=data.get("test_error_mev_per_atom"),
            test_error_std_mev_per_atom=data.get("test_error_std_mev_per_atom"),
            test_errors_mev_per_atom=list(data.get("test_errors_mev_per_atom") or []),
            retrain_core_seconds=float(data.get("retrain_core_s") or 0.0),
            retrain_gpu_seconds=float(data.get("retrain_gpu_s") or 0.0),
            objective_metric=data.get("objective_metric", METRIC), phases=dict(data.get("phases") or {}),
            test_ldos_rmse=data.get("test_ldos_rmse"), test_ldos_rmse_std=data.get("test_ldos_rmse_std"),
            test_ldos_rmses=list(data.get("test_ldos_rmses") or []), baselines=_baselines(data.get("baselines")),
        )

    def summary(self) -> str:
        error = "none" if self.best_val_error_mev_per_atom is None else f"{self.best_val_error_mev_per_atom:.4g} meV/atom"
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items()) or "no trials"
        text = (
            f"study {self.name}: {len(self.trials)} trials ({counts}); best validation error {error}; "
            f"wall {self.wall_seconds:.1f} s, search {self.core_seconds:.1f} core-s, {self.gpu_seconds:.1f} GPU-s"
        )
        if self.test_error_mev_per_atom is not None:
            text += (f"; test error of the retrained winner {self.test_error_mev_per_atom:.4g} ± "
                     f"{self.test_error_std_mev_per_atom or 0.0:.2g} meV/atom over {len(self.test_errors_mev_per_atom)} "
                     f"seeds ({self.retrain_core_seconds:.1f} core-s)")
        if self.test_ldos_rmse is not None:
            text += f"; test LDOS RMSE {self.test_ldos_rmse:.4g} ± {self.test_ldos_rmse_std or 0.0:.2g}"
        if self.baselines is not None:
            text += (f"; baselines' test LDOS RMSE: ridge {_text(self.ridge_test_ldos_rmse)}, constant "
                     f"{_text(self.constant_test_ldos_rmse)}; skill (ridge / winner) {_text(self.skill, '.3g')}")
        return text


def _text(value: float | None, fmt: str = ".4g") -> str:
    return "n/a" if value is None else f"{value:{fmt}}"


def _baselines(data: dict[str, Any] | None) -> BaselineReport | None:
    if not data:
        return None
    from hpsearch.model.baselines import BaselineReport

    return BaselineReport.from_dict(data)


def _highest_rung(done: pd.DataFrame) -> pd.DataFrame:
    """Multi-fidelity strategies label their trainings ``rung-<n>`` (``_phase``): only trainings of
    the highest rung that finished one compete, so a short low-rung training never wins."""
    if done.empty or "phase" not in done:
        return done
    rungs = pd.to_numeric(done["phase"].astype(str).str.extract(r"^rung-(\d+)$")[0], errors="coerce")
    if rungs.notna().any():
        return done[rungs == rungs.max()]
    return done


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
