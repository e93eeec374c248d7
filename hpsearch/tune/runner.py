"""Run or resume a study from an ExperimentConfig: Ray, data shards, Tuner, results.

The study folder (``config.results_dir``, default ``./results/<name>``) holds
``experiment.json`` (the whole validated config, so ``resume`` needs only the name), ``tune/``
(Ray Tune's experiment state, searcher state and trial folders), ``result.json`` and
``trials.csv``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.config.experiment import ExperimentConfig, SplitConfig, validate_experiment
from hpsearch.config.strategy import SchedulerPlugin, SearchData, Strategy
from hpsearch.config.trials import TrialKind
from hpsearch.errors import ConfigError
from hpsearch.parallel import ensure_ray
from hpsearch.tune.results import RESULT_FILE, StudyResult, trials_frame
from hpsearch.tune.final import check_skill, retrain_winner, study_baselines
from hpsearch.tune.kinds import check_first_suggestion, collect_trial_kinds
from hpsearch.tune.study_tracking import StudyCallback, log_study_end, study_params, study_tracker
from hpsearch.tune.trainable import TrialSettings, run_trial
from hpsearch.tune.tuner import build_tuner, restore_tuner, sigterm_interrupts

if TYPE_CHECKING:
    from ray.tune import Callback, ResultGrid

    from hpsearch.data.splits import Split

logger = logging.getLogger(__name__)

CONFIG_FILE = "experiment.json"
TUNE_DIR = "tune"
DEFAULT_RESULTS_ROOT = Path("results")


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


def resolve_split(config: ExperimentConfig, store_path: Path) -> Any:
    """The Split of `dataset.split` (counts split by snapshot, or explicit names checked)."""
    return split_of(config.dataset.split, store_path)


def split_of(spec: SplitConfig, store_path: Path, key: str = "dataset.split") -> Any:
    """The Split of `spec` on the store at `store_path`; `key` names the setting in errors."""
    from hpsearch.data import Split, open_store, split_snapshots

    with open_store(store_path) as store:
        names = list(store.names)
    if isinstance(spec.train, int):
        return split_snapshots(names, spec.train, spec.validation, spec.test, seed=spec.seed)  # type: ignore[arg-type]
    missing = [n for n in (*spec.train, *spec.validation, *spec.test) if n not in names]  # type: ignore[misc]
    if missing:
        raise ConfigError(f"{key} names {missing} are not in {store_path}; it has {names}")
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


@dataclasses.dataclass(frozen=True)
class StudyData:
    """The search's trial settings (data without test snapshots) and the held-out test names."""

    settings: TrialSettings
    test_names: tuple[str, ...]


def search_split(split: Split) -> Split:
    """The split a search works on: training and validation snapshots only, never the test ones."""
    from hpsearch.data import Split

    return Split(train=split.train, validation=split.validation, test=())


def _split_shapes(store_path: Path, split: Split) -> tuple[int, int]:
    """(descriptor features, training points) of a split from the store's metadata, no array read."""
    from hpsearch.data import open_store

    with open_store(store_path) as store:
        shapes = [store.array_shapes(name)[0] for name in split.train]
    return int(shapes[0][-1]), int(sum(math.prod(shape[:-1]) for shape in shapes))


def data_key(config: ExperimentConfig) -> str:
    """The key of the data actors a study of `config` uses (its store file and search split)."""
    from hpsearch.data.generate import resolve_store
    from hpsearch.tune.shards import shard_key

    store_path = resolve_store(config.dataset.store, key="dataset.store")
    return shard_key(store_path, search_split(resolve_split(config, store_path)))


def prepare_trials(config: ExperimentConfig, kinds: Mapping[str, TrialKind] | None = None) -> StudyData:
    """Resolve data, load the search's snapshots into the shard actors once per node, check the config.

    The driver reads only metadata; the arrays go from the store to the actors. The actors hold
    training and validation snapshots only: no trial can read a test snapshot. `kinds`: the
    study's trial kinds (default: those its strategy and scheduler declare).
    """
    from hpsearch.data.generate import resolve_store
    from hpsearch.tune.shards import place_shards

    store_path = resolve_store(config.dataset.store, key="dataset.store")
    split = resolve_split(config, store_path)
    if not split.validation:
        raise ConfigError("dataset.split has no validation snapshot: the search selects on validation error, "
                          "give split.validation at least 1")
    searched = search_split(split)
    n_features, n_points = _split_shapes(store_path, searched)
    _check_naswot_batch(config, n_features, n_points)
    dataset = config.dataset
    placement = place_shards(store_path, searched, memory_budget_gb=dataset.memory_budget_gb,
                             chunk_points=dataset.chunk_points, prefetch=dataset.prefetch_chunks)
    logger.info("data: %s, %d features, %d training points; %d validation snapshots select, %d test snapshots "
                "are held out for the retrains", store_path, n_features, n_points, len(split.validation),
                len(split.test))
    settings = TrialSettings.from_config(config, str(store_path), searched, placement, kinds)
    return StudyData(settings, tuple(split.test))


def study_kinds(strategy: Strategy, scheduler: SchedulerPlugin | None) -> dict[str, TrialKind]:
    """The trial kinds of a study, checked before anything starts: no name declared twice, and the
    strategy's first suggestion names a kind the study knows (ConfigError otherwise)."""
    kinds = collect_trial_kinds(strategy, scheduler)
    check_first_suggestion(strategy, kinds, scheduler.trial_flags if scheduler is not None else {})
    return kinds


def settle_strategy(config: ExperimentConfig, strategy: Strategy, scheduler: SchedulerPlugin | None,
                    data: StudyData) -> tuple[Strategy, StudyData]:
    """The strategy with what it settles on the search's data (``Strategy.prepared``), and the
    trial settings with its kinds. The data actors are released when that fails (they are detached)."""
    from hpsearch.tune.shards import release_shards

    settings = data.settings
    try:
        settled = strategy.prepared(SearchData(settings.store_path, settings.split, config.naswot))
    except BaseException:
        if settings.placement is not None and not config.dataset.keep_loaded:
            release_shards(settings.placement.key)
        raise
    if settled is strategy:
        return strategy, data
    settings = dataclasses.replace(settings, kinds=collect_trial_kinds(settled, scheduler))
    return settled, dataclasses.replace(data, settings=settings)


#: the name of the trainable in studies started before each study had its own (resume keeps it)
LEGACY_TRAINABLE_NAME = "run_trial"


def trainable_name(config: ExperimentConfig) -> str:
    """The name Tune registers the study's trainable under, its own per study name: Tune's registry
    holds one trainable per name and driver, so studies run at the same time from one driver
    (``hpsearch benchmark paper --parallel-studies``) would otherwise start each other's trials."""
    digest = hashlib.sha256(config.name.encode()).hexdigest()[:10]
    return f"{LEGACY_TRAINABLE_NAME}_{digest}"


def _trainable(settings: TrialSettings, name: str) -> Any:
    from ray import tune

    trainable = tune.with_parameters(run_trial, settings=settings)
    trainable.__name__ = name
    return trainable


def _finish(config: ExperimentConfig, grid: ResultGrid, wall_seconds: float, data: StudyData,
            phases: Phases) -> StudyResult:
    """Save the result, retrain the winner (``retrains``) as Ray tasks, close the study in MLflow."""
    started = time.perf_counter()
    with phases("results_s"):
        result = StudyResult.from_frame(
            config.name, trials_frame(grid), config.hyperparameter_defaults(), config.resources.as_tune(),
            wall_seconds, config.results_dir, objective_metric=config.context().metric,
        )
        result.save()
    logger.info("%s", result.summary())
    final, kept = None, None
    if config.retrains and result.best_config is not None:
        if not data.test_names:
            logger.warning("retrains=%d but dataset.split has no test snapshot: the winner is not retrained",
                           config.retrains)
        else:
            logger.info("retraining the winner %d times with new seeds as Ray tasks; each is tested once on %s",
                        config.retrains, ", ".join(data.test_names))
            with phases("retrains_s"):
                final, kept = retrain_winner(config, result.best_config, data.settings, list(data.test_names),
                                             config.results_dir, config.retrains)
            result.set_final(final)
            logger.info("winner retrained: test error %.4g ± %.2g meV/atom, test LDOS RMSE %.4g ± %.2g over %d "
                        "seeds (%.1f core-s)", final.test_mean, final.test_std, final.test_ldos_rmse,
                        final.test_ldos_rmse_std, config.retrains, final.core_seconds)
    with phases("baselines_s"):
        searched = data.settings.split
        whole = dataclasses.replace(searched, test=tuple(data.test_names))
        result.baselines = study_baselines(config, data.settings.store_path, whole)
    check_skill(result)
    tracker = study_tracker(config, config.results_dir)
    if tracker is not None:
        with phases("tracking_end_s"):
            left = log_study_end(tracker, result, final, kept)
        if left:
            logger.warning("%d MLflow operations are waiting in %s: `hpsearch tracking sync` them later",
                           left, tracker.folder)
    result.wall_seconds += time.perf_counter() - started
    result.phases = dict(phases.seconds)
    result.save()
    return result


class Phases:
    """Wall seconds per phase of a study (Ray start, data placement, search, retrains, tracking ...).

    Example::

        phases = Phases()
        with phases("search_s"):
            tuner.fit()
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def _tracking_callbacks(config: ExperimentConfig, settings: TrialSettings, strategy: Strategy,
                        scheduler: SchedulerPlugin | None, tags: Mapping[str, str] | None = None) -> list[Callback]:
    tracker = study_tracker(config, config.results_dir)
    if tracker is None:
        return []
    from hpsearch.data import open_store

    with open_store(settings.store_path) as store:
        store_hash = store.content_hash()
    settled = {**(scheduler.tracking_params() if scheduler is not None else {}), **strategy.tracking_params()}
    params = study_params(config, settings.store_path, store_hash, settled)
    artifacts = [str(config.results_dir / CONFIG_FILE)]
    logger.info("tracking in MLflow at %s (experiment %r)", tracker.tracking_uri, tracker.experiment_name)
    return [StudyCallback(tracker, params, artifacts, tags)]


def _warm_up_tracking(config: ExperimentConfig) -> threading.Thread | None:
    """MLflow and matplotlib loading in a background thread (None: tracking is off); join it
    before the first logging call, also on an error (a new SQLite store is never left half-made)."""
    tracker = study_tracker(config, config.results_dir)
    return tracker.warm_up() if tracker is not None else None


def run_study(
    config: ExperimentConfig,
    *,
    address: str | None = None,
    callbacks: Sequence[Callback] = (),
    interrupt_after_trials: int | None = None,
    tags: Mapping[str, str] | None = None,
) -> StudyResult:
    """Validate, start and run a study to the end; the result is also saved in its folder.

    `callbacks` are extra Ray Tune callbacks (e.g. tracking); `interrupt_after_trials` stops the
    study as Ctrl+C would after that many finished trials (for tests of resume); `tags` go on the
    study's MLflow run when it opens (e.g. the benchmark's ``strategy`` label).
    """
    strategy, scheduler = validate_experiment(config)
    kinds = study_kinds(strategy, scheduler)
    folder = config.results_dir
    if (folder / TUNE_DIR).exists():
        raise ConfigError(
            f"a study named {config.name!r} already exists in {folder}: resume it with "
            f"`hpsearch resume {config.name}`, choose another --name, or delete the folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(config.model_dump_json(indent=2) + "\n")
    phases = Phases()
    with phases("ray_start_s"):
        ensure_ray(address)
        check_resources(config, local=address is None)
    started = time.perf_counter()
    warm_up = _warm_up_tracking(config)  # while the data actors load (the driver waits)
    try:
        with phases("data_placement_s"):
            data = prepare_trials(config, kinds)
        with phases("setup_s"):
            strategy, data = settle_strategy(config, strategy, scheduler, data)
    finally:
        with phases("setup_s"):
            if warm_up is not None:
                warm_up.join()
    settings = data.settings
    with phases("setup_s"):
        tuner = build_tuner(
        _trainable(settings, trainable_name(config)), strategy, name=TUNE_DIR, storage_path=folder,
        scheduler=scheduler, max_trials=config.budget.max_trials, max_concurrent=config.budget.max_concurrent,
        resources=config.resources.as_tune(),
        callbacks=[*callbacks, *_tracking_callbacks(config, settings, strategy, scheduler, tags)],
        max_failures=config.budget.max_failures,
        time_budget_s=config.budget.time_budget_s, interrupt_after_trials=interrupt_after_trials,
        )
    return _fit_and_finish(config, tuner, data, started, phases=phases)


def _fit_and_finish(config: ExperimentConfig, tuner: Any, data: StudyData, started: float,
                    earlier_seconds: float = 0.0, phases: Phases | None = None) -> StudyResult:
    """Run the Tuner, then the retrains; the data actors are released afterwards (they are detached)
    unless ``dataset.keep_loaded``."""
    from hpsearch.tune.shards import release_shards

    phases = phases if phases is not None else Phases()
    try:
        with sigterm_interrupts(), phases("search_s"):
            grid = tuner.fit()
        return _finish(config, grid, earlier_seconds + time.perf_counter() - started, data, phases)
    finally:
        if data.settings.placement is not None and not config.dataset.keep_loaded:
            release_shards(data.settings.placement.key)
        elif data.settings.placement is not None:
            logger.info("the data actors of %s stay loaded for the next study on it (`hpsearch data release` "
                        "frees them)", data.settings.store_path)


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
    strategy, scheduler = validate_experiment(config)
    kinds = collect_trial_kinds(strategy, scheduler)
    ensure_ray(address)
    check_resources(config, local=address is None)
    earlier = StudyResult.load(folder).wall_seconds if (folder / RESULT_FILE).is_file() else 0.0
    started = time.perf_counter()
    phases = Phases()
    with phases("data_placement_s"):
        data = prepare_trials(config, kinds)
    _, data = settle_strategy(config, strategy, scheduler, data)
    tuner = _restored_tuner(folder / TUNE_DIR, data.settings, config)
    return _fit_and_finish(config, tuner, data, started, earlier, phases)


def _restored_tuner(tune_dir: Path, settings: TrialSettings, config: ExperimentConfig) -> Any:
    """The Tuner of an interrupted study, under the trainable name it started with (the study's own,
    or ``run_trial`` for a study started by an older hpsearch)."""
    resources = config.resources.as_tune()
    try:
        return restore_tuner(tune_dir, _trainable(settings, trainable_name(config)), resources=resources)
    except ValueError as exc:
        if f"expected '{LEGACY_TRAINABLE_NAME}'" not in str(exc):
            raise
    return restore_tuner(tune_dir, _trainable(settings, LEGACY_TRAINABLE_NAME), resources=resources)
