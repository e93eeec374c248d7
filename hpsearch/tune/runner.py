"""Run or resume a study from an ExperimentConfig: Ray, data shards, Tuner, results.

The study folder (``config.results_dir``, default ``./results/<name>``) holds
``experiment.json`` (the whole validated config, so ``resume`` needs only the name), ``tune/``
(Ray Tune's experiment state, searcher state and trial folders), ``result.json`` and
``trials.csv``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.config.experiment import ExperimentConfig, validate_experiment
from hpsearch.errors import ConfigError
from hpsearch.tune.results import RESULT_FILE, StudyResult, trials_frame
from hpsearch.tune.final import retrain_winner
from hpsearch.tune.study_tracking import StudyCallback, log_study_end, study_params, study_tracker
from hpsearch.tune.trainable import TrialSettings, run_trial
from hpsearch.tune.tuner import build_tuner, restore_tuner, sigterm_interrupts

if TYPE_CHECKING:
    from ray.tune import Callback, ResultGrid

logger = logging.getLogger(__name__)

CONFIG_FILE = "experiment.json"
TUNE_DIR = "tune"
DEFAULT_RESULTS_ROOT = Path("results")


def ensure_ray(address: str | None = None) -> bool:
    """Connect to Ray unless already connected; returns True when this call started it.

    ``None``: a local Ray on this machine (token auth off, temp dir under /tmp: socket paths
    must stay short); ``"auto"``: the running cluster; ``"ray://host:10001"``: Ray Client.
    """
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        ray.init(include_dashboard=False, _temp_dir=tempfile.mkdtemp(prefix="hps_", dir="/tmp"),
                 configure_logging=False)
    else:
        ray.init(address=address, configure_logging=False)
    logger.info("Ray resources: %s", ray.cluster_resources())
    return True


def check_resources(config: ExperimentConfig, local: bool) -> None:
    """A trial asking for more CPUs/GPUs than the cluster has would wait forever: say so now."""
    import ray

    total = ray.cluster_resources()
    for key, wanted in (("CPU", config.resources.cpus), ("GPU", config.resources.gpus)):
        have = float(total.get(key, 0.0))
        if wanted > have:
            message = (f"resources.{key.lower()}s={wanted} per trial but the Ray cluster has {have:g} {key}s: "
                       f"lower resources.{key.lower()}s or connect to a larger cluster (--address)")
            if local:
                raise ConfigError(message)
            logger.warning("%s (waiting for the autoscaler, if any)", message)


def resolve_store(store: str) -> Path:
    """The store file of `dataset.store`: a path, or 'default' / 'small' (generated once, reused)."""
    from hpsearch.data.generate import resolve_store as find_store

    return find_store(store, key="dataset.store")


def resolve_split(config: ExperimentConfig, store_path: Path) -> Any:
    """The Split of `dataset.split` (counts split by snapshot, or explicit names checked)."""
    from hpsearch.data import Split, open_store, split_snapshots

    spec = config.dataset.split
    with open_store(store_path) as store:
        names = list(store.names)
    if isinstance(spec.train, int):
        return split_snapshots(names, spec.train, spec.validation, spec.test, seed=spec.seed)  # type: ignore[arg-type]
    missing = [n for n in (*spec.train, *spec.validation, *spec.test) if n not in names]  # type: ignore[misc]
    if missing:
        raise ConfigError(f"dataset.split names {missing} are not in {store_path}; it has {names}")
    return Split(train=tuple(spec.train), validation=tuple(spec.validation), test=tuple(spec.test))  # type: ignore[arg-type]


def _check_naswot_batch(config: ExperimentConfig, n_features: int, n_points: int) -> None:
    batch = config.naswot.batch_size
    if batch > n_features:
        raise ConfigError(
            f"naswot.batch_size={batch} exceeds the {n_features} descriptor features: the NASWOT "
            f"correlation matrix then has {batch - n_features} zero eigenvalues that swamp the score; "
            f"use naswot.batch_size <= {n_features}"
        )
    if batch > n_points:
        raise ConfigError(f"naswot.batch_size={batch} exceeds the {n_points} training points")


def prepare_trials(config: ExperimentConfig) -> TrialSettings:
    """Resolve data, load it into the shard actors once per node, and check it against the config."""
    from hpsearch.tune.shards import get_training_data, place_shards

    store_path = resolve_store(config.dataset.store)
    split = resolve_split(config, store_path)
    dataset = config.dataset
    placement = place_shards(store_path, split, memory_budget_gb=dataset.memory_budget_gb,
                             chunk_points=dataset.chunk_points, prefetch=dataset.prefetch_chunks)
    data = get_training_data(store_path, split, placement, device="cpu")
    _check_naswot_batch(config, data.n_features, data.n_train_points)
    logger.info("data: %s, %d features, %d energies, %d training points", store_path, data.n_features,
                data.n_energies, data.n_train_points)
    return TrialSettings.from_config(config, str(store_path), split, placement)


def _trainable(settings: TrialSettings) -> Any:
    from ray import tune

    return tune.with_parameters(run_trial, settings=settings)


def _finish(config: ExperimentConfig, grid: ResultGrid, wall_seconds: float, settings: TrialSettings) -> StudyResult:
    """Save the result, retrain the winner (``retrains``), close the study in MLflow."""
    result = StudyResult.from_frame(
        config.name, trials_frame(grid), config.hyperparameter_defaults(), config.resources.as_tune(),
        wall_seconds, config.results_dir,
    )
    result.save()
    logger.info("%s", result.summary())
    final, best_training = None, None
    if config.retrains and result.best_config is not None:
        from hpsearch.model import TrainingData

        logger.info("retraining the winner %d times with new seeds", config.retrains)
        data = TrainingData.from_store(settings.store_path, settings.split)
        final, best_training = retrain_winner(config, result.best_config, data, config.results_dir, config.retrains)
        result.final = final
        result.save()
        logger.info("winner retrained: %.4g ± %.2g meV/atom over %d seeds", final.mean, final.std, config.retrains)
    tracker = study_tracker(config, config.results_dir)
    if tracker is not None:
        left = log_study_end(tracker, result, final, best_training)
        if left:
            logger.warning("%d MLflow operations are waiting in %s: `hpsearch tracking sync` them later",
                           left, tracker.folder)
    return result


def _tracking_callbacks(config: ExperimentConfig, settings: TrialSettings) -> list[Callback]:
    tracker = study_tracker(config, config.results_dir)
    if tracker is None:
        return []
    from hpsearch.data import open_store

    with open_store(settings.store_path) as store:
        store_hash = store.content_hash()
    params = study_params(config, settings.store_path, store_hash)
    artifacts = [str(config.results_dir / CONFIG_FILE)]
    logger.info("tracking in MLflow at %s (experiment %r)", tracker.tracking_uri, tracker.experiment_name)
    return [StudyCallback(tracker, params, artifacts)]


def run_study(
    config: ExperimentConfig,
    *,
    address: str | None = None,
    callbacks: Sequence[Callback] = (),
    interrupt_after_trials: int | None = None,
) -> StudyResult:
    """Validate, start and run a study to the end; the result is also saved in its folder.

    `callbacks` are extra Ray Tune callbacks (e.g. tracking); `interrupt_after_trials` stops the
    study as Ctrl+C would after that many finished trials (for tests of resume).
    """
    strategy, scheduler = validate_experiment(config)
    folder = config.results_dir
    if (folder / TUNE_DIR).exists():
        raise ConfigError(
            f"a study named {config.name!r} already exists in {folder}: resume it with "
            f"`hpsearch resume {config.name}`, choose another --name, or delete the folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(config.model_dump_json(indent=2) + "\n")
    ensure_ray(address)
    check_resources(config, local=address is None)
    started = time.perf_counter()
    settings = prepare_trials(config)
    tuner = build_tuner(
        _trainable(settings), strategy, name=TUNE_DIR, storage_path=folder, scheduler=scheduler,
        max_trials=config.budget.max_trials, max_concurrent=config.budget.max_concurrent,
        resources=config.resources.as_tune(), callbacks=[*callbacks, *_tracking_callbacks(config, settings)],
        max_failures=config.budget.max_failures,
        time_budget_s=config.budget.time_budget_s, interrupt_after_trials=interrupt_after_trials,
    )
    grid = _fit(tuner, settings)
    return _finish(config, grid, time.perf_counter() - started, settings)


def _fit(tuner: Any, settings: TrialSettings) -> ResultGrid:
    """Run the Tuner; the data actors are released afterwards (they are detached)."""
    from hpsearch.tune.shards import release_shards

    try:
        with sigterm_interrupts():
            return tuner.fit()
    finally:
        if settings.placement is not None:
            release_shards(settings.placement.key)


def find_study(name: str, results_root: str | Path = DEFAULT_RESULTS_ROOT) -> Path:
    """The folder of the study `name` (or a folder path itself) holding its experiment.json."""
    for folder in (Path(name), Path(results_root) / name):
        if (folder / CONFIG_FILE).is_file():
            return folder.resolve()
    root = Path(results_root)
    known = sorted(p.parent.name for p in root.glob(f"*/{CONFIG_FILE}")) if root.is_dir() else []
    raise ConfigError(
        f"no study {name!r} under {root.resolve()}: known studies: {', '.join(known) or 'none'} "
        "(use --results to point at another results folder)"
    )


def load_study_config(folder: Path) -> ExperimentConfig:
    """The config saved with a study, pointed at the folder where it was found."""
    config = ExperimentConfig.model_validate_json((folder / CONFIG_FILE).read_text())
    return config.model_copy(update={"storage_path": folder})


def resume_study(
    name: str,
    *,
    results_root: str | Path = DEFAULT_RESULTS_ROOT,
    address: str | None = None,
) -> StudyResult:
    """Go on with an interrupted study: finished trials are kept, none runs twice.

    Tune restores the run's callbacks with the study; wall time adds to the earlier runs'.
    """
    folder = find_study(name, results_root)
    config = load_study_config(folder)
    if not (folder / TUNE_DIR).is_dir():
        raise ConfigError(f"study {config.name!r} in {folder} never started: run it with `hpsearch run`")
    validate_experiment(config)
    ensure_ray(address)
    check_resources(config, local=address is None)
    earlier = StudyResult.load(folder).wall_seconds if (folder / RESULT_FILE).is_file() else 0.0
    started = time.perf_counter()
    settings = prepare_trials(config)
    tuner = restore_tuner(folder / TUNE_DIR, _trainable(settings), resources=config.resources.as_tune())
    grid = _fit(tuner, settings)
    return _finish(config, grid, earlier + time.perf_counter() - started, settings)
