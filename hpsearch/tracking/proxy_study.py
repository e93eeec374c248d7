"""A proxy study in MLflow: one parent run (config and training settings, calibration per proxy
against the validation LDOS RMSE with the band-energy tau beside it, the table and the figure) with
one child run per architecture (its widths, activation, parameter count, every proxy score, epochs,
validation LDOS RMSE and band-energy error).

Example::

    study = run_proxy_study(config)
    files = write_study(study, "results/proxy_study")
    run_id = log_proxy_study(study, "results/proxy_study", files)
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

from hpsearch.scoring.proxy_study import ProxyStudy

__all__ = ["log_proxy_study"]

logger = logging.getLogger(__name__)


def _metric_key(name: str) -> str:
    """MLflow metric names allow letters, digits and _-./ and spaces: ensembles use + and ()."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)


def log_proxy_study(study: ProxyStudy, folder: str | Path, files: dict[str, Path] | None = None) -> str | None:
    """Log ``study`` to ``config.tracking_uri`` (or the default store); the parent run's id."""
    from hpsearch.tracking.journal import RUN_MAP
    from hpsearch.tracking.tracker import StudyTracker, TrialRecord, default_tracking_uri

    config = study.config
    uri = config.tracking_uri or default_tracking_uri()
    tracker = StudyTracker(uri, config.experiment, f"proxy-study n={len(study.rows)} seed={config.seed}", folder)
    best = study.best(1)
    tracker.start(
        params={"store": study.store, "architectures": config.architectures, "n_architectures": len(study.rows),
                "n_init": config.n_init, "batch_size": config.batch_size, "seed": config.seed,
                "max_epochs": config.max_epochs, "patience": config.patience, "learning_rate": config.learning_rate,
                "train_batch_size": config.train_batch_size, "proxies": ",".join(config.proxy_names()),
                "error": "validation LDOS RMSE", "second_error": "validation band-energy error (meV/atom)",
                "validation_snapshots": ",".join(study.split.get("validation", [])),
                "held_out_snapshots": ",".join(study.held_out), "config": config.model_dump_json()},
        tags={"hpsearch.kind": "proxy-study", "hpsearch.best_proxy": best[0].name if best else ""})
    for index, row in enumerate(study.rows):
        metrics = {f"proxy.{_metric_key(k)}": v for k, v in row.scores.items() if v > -1e29}
        metrics.update(epochs=row.epochs, best_epoch=row.best_epoch, n_params=row.n_params)
        tracker.log_trial(TrialRecord(
            trial_id=f"{index:03d}", params={"widths": "x".join(map(str, row.widths)), "activation": row.activation,
                                             "label": row.label},
            status=row.train_status if math.isfinite(row.val_ldos_rmse) else "failed",
            reason="; ".join(f"{k}: {v}" for k, v in row.reasons.items())[:4000],
            training_seconds=row.train_seconds, phase="proxy-study",
            extra_metrics={"val_ldos_rmse": row.val_ldos_rmse, "val_error_mev_per_atom": row.val_error_mev_per_atom,
                           **metrics}))
    summary: dict[str, float] = {"training_seconds": study.training_seconds, "n_capped": study.n_capped()}
    for c in study.calibration:
        key = _metric_key(c.name)
        summary.update({f"tau.{key}": c.tau, f"tau_ci_low.{key}": c.tau_ci[0], f"tau_ci_high.{key}": c.tau_ci[1],
                        f"rho.{key}": c.rho, f"regret_top5.{key}": c.regret.get("5", math.nan),
                        f"top1_rank.{key}": c.top1_rank, f"top5_rank.{key}": c.top5_rank,
                        f"top1_regret.{key}": c.top1_regret, f"tau_band_energy.{key}": c.tau_second,
                        f"beats_params.{key}": float(study.beats_params(c))})
    for path in (files or {}).values():
        tracker.log_artifact(path)
    left = tracker.finish({k: v for k, v in summary.items() if math.isfinite(v)})
    if left:
        logger.warning("%d MLflow operations are buffered in %s", left, tracker.folder)
    run_map = tracker.folder / RUN_MAP
    run_id = json.loads(run_map.read_text()).get(tracker.study_key) if run_map.exists() else None
    logger.info("logged the proxy study to %s (run %s)", uri, run_id)
    return run_id
