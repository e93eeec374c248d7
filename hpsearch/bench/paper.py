"""Run every strategy of the paper's table 1 into one MLflow experiment and compare them.

The experiments are the YAML files in ``experiments/`` (``experiments/quick/`` for the short
version that ``hpsearch demo`` runs): one file per strategy, all over the same search space.
Each study lands in ``<out>/studies/<name>``; the comparison (table, figures 3, 5 and 6, the
verdict and the target check) in ``<out>`` and in a "comparison" run of the same MLflow experiment.
``store``/``split`` run every strategy on any store (:mod:`hpsearch.bench.dataset`); on a cluster
several studies run at once (:mod:`hpsearch.bench.schedule`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.api import Experiment
from hpsearch.bench.strategies import LABELS, PAPER_STRATEGIES, QUICK_STRATEGIES
from hpsearch.errors import ConfigError

if TYPE_CHECKING:
    from hpsearch.bench.dataset import BenchmarkData
    from hpsearch.bench.report import BenchmarkReport
    from hpsearch.bench.schedule import StudyJob
    from hpsearch.tracking.server import TrackingServer
    from hpsearch.tune.results import StudyResult

logger = logging.getLogger(__name__)

REFERENCE = "tpe"
SERVER_FILE = "server.json"
#: Repeats of each strategy (different search seeds) when not given: full (6: the fewest with which an
#: exact paired test can reach p <= 0.05) and quick (2: an anecdote, labelled so) benchmark.
DEFAULT_REPEATS = 6
DEFAULT_QUICK_REPEATS = 2


@dataclass(frozen=True)
class BenchmarkSettings:
    """What to run and where the results go.

    `overrides` are merged into every experiment (nested mappings key by key), e.g.
    ``{"dataset": {"store": "small"}, "fixed": {"max_epochs": 2}}`` for a test;
    `strategy_overrides` into one strategy's only. Each strategy runs `repeats` times, repeat r
    with the experiment's seed + r (study ``<name>-r<r>``); None: 5, or 3 with `quick`.
    """

    out: Path = Path("results/paper")
    quick: bool = False
    strategies: tuple[str, ...] | None = None
    experiments_dir: Path | None = None
    mlflow_experiment: str | None = None
    address: str | None = None
    tracking_uri: str | None = None
    overwrite: bool = False
    #: keep the studies an earlier run of this benchmark finished (same settings) and run the rest
    resume: bool = False
    keep_server: bool = False
    progress: bool = True
    overrides: Mapping[str, Any] = field(default_factory=dict)
    #: per strategy (file stem), merged after `overrides`, e.g. ``{"direct": {"strategy": {...}}}``
    strategy_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    repeats: int | None = None
    #: the strategies (labels) every other is compared with, repeat by repeat
    references: tuple[str, ...] = ("tpe", "tpe + asha")
    #: any store instead of the experiment files' (e.g. imported MALA/QE data), for every strategy
    store: Path | None = None
    #: "TRAIN:VALIDATION:TEST" counts or names; None: the default division of `store`'s snapshots
    #: (or the experiment files' split when no store is given)
    split: str | None = None
    #: studies at once; None: 1 on a local machine, what the cluster holds with `address`
    parallel_studies: int | None = None

    @property
    def n_repeats(self) -> int:
        count = self.repeats if self.repeats is not None else (DEFAULT_QUICK_REPEATS if self.quick else DEFAULT_REPEATS)
        if count < 1:
            raise ConfigError(f"repeats={count}: give at least 1 (5 or more for a comparison worth its p-values)")
        return count

    @property
    def names(self) -> tuple[str, ...]:
        chosen = self.strategies or (QUICK_STRATEGIES if self.quick else PAPER_STRATEGIES)
        unknown = [s for s in chosen if s not in LABELS]
        if unknown:
            raise ConfigError(f"unknown benchmark strategies {unknown}: choose among {', '.join(LABELS)}")
        return tuple(chosen)


def default_experiments_dir(quick: bool) -> Path:
    """``./experiments`` (or the checkout's, beside the package), ``quick/`` inside for the short run."""
    for root in (Path.cwd() / "experiments", Path(__file__).resolve().parents[2] / "experiments"):
        if root.is_dir():
            return root / "quick" if quick else root
    raise ConfigError("no experiments/ folder here or beside the hpsearch package: pass --experiments DIR")


def experiment_files(quick: bool = False, experiments_dir: Path | None = None,
                     strategies: tuple[str, ...] | None = None) -> dict[str, Path]:
    """The experiment file of each strategy (stem -> path); ConfigError for a missing one."""
    folder = Path(experiments_dir) if experiments_dir else default_experiments_dir(quick)
    names = strategies or (QUICK_STRATEGIES if quick else PAPER_STRATEGIES)
    files = {name: folder / f"{name}.yaml" for name in names}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ConfigError(f"benchmark experiment files missing: {missing}; expected one per strategy in {folder}")
    return files


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def resolve_data(settings: BenchmarkSettings) -> BenchmarkData:
    """The store and split every study runs on (see :mod:`hpsearch.bench.dataset`); the first
    experiment file (with `overrides`) names the store when `settings.store` does not."""
    from hpsearch.bench.dataset import benchmark_data

    files = experiment_files(settings.quick, settings.experiments_dir, settings.names)
    first = Experiment.from_yaml(next(iter(files.values()))).config
    config = Experiment.from_dict(_merged(first.model_dump(mode="json"), settings.overrides)).config
    return benchmark_data(settings.store, settings.split, config)


def load_benchmark_experiments(settings: BenchmarkSettings, tracking_uri: str,
                               data: BenchmarkData | None = None) -> dict[str, list[Experiment]]:
    """Each strategy's experiment per repeat (seed + r, study ``<name>-r<r>``), pointed at
    ``<out>/studies/<name>-r<r>`` and the shared MLflow experiment; `data` (``--store``/``--split``)
    replaces every experiment's store and split."""
    files = experiment_files(settings.quick, settings.experiments_dir, settings.names)
    experiments: dict[str, list[Experiment]] = {}
    for stem, path in files.items():
        config = Experiment.from_yaml(path).config
        raw = _merged(config.model_dump(mode="json"), settings.overrides)
        raw = _merged(raw, data.overrides() if data is not None else {})
        raw = _merged(raw, settings.strategy_overrides.get(stem, {}))
        # the studies share their data: loaded once, released when the benchmark ends
        raw["dataset"] = {**raw["dataset"], "keep_loaded": True}
        base_name, base_seed = raw["name"], int(raw.get("seed", 0))
        raw["tracking"] = {
            "enabled": True, "uri": tracking_uri,
            "experiment": settings.mlflow_experiment or (config.tracking.experiment or "paper"),
        }
        experiments[stem] = []
        for repeat in range(settings.n_repeats):
            name = f"{base_name}-r{repeat}"
            one = {**raw, "name": name, "seed": base_seed + repeat,
                   "storage_path": str((Path(settings.out) / "studies" / name).resolve())}
            experiments[stem].append(Experiment.from_dict(one))
    if len({e[0].config.tracking.experiment for e in experiments.values()}) != 1:
        raise ConfigError("the benchmark's experiment files name different tracking.experiment values: "
                          "give them one, or pass --mlflow-experiment")
    return experiments


def _fresh_folder(experiment: Experiment, overwrite: bool, resume: bool = False) -> StudyResult | None:
    """Make room for the study; with `resume`, its earlier result when it ran to the end with the
    same settings (None: run it; an unfinished earlier run is removed)."""
    folder = experiment.config.results_dir
    if not folder.exists():
        return None
    if resume and not overwrite:
        earlier = _finished_study(experiment)
        if earlier is not None:
            return earlier
        logger.info("study %s did not finish in the earlier run: it runs again", experiment.config.name)
    elif not overwrite:
        raise ConfigError(f"{folder} holds an earlier run of study {experiment.config.name!r}: pass --resume to "
                          "keep the finished studies, --overwrite to replace them, or choose another --out")
    shutil.rmtree(folder)
    return None


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    """A study's settings without where it ran and logged (a resumed benchmark has a new server)."""
    return {k: v for k, v in config.items() if k not in ("storage_path", "tracking")}


def _finished_study(experiment: Experiment) -> StudyResult | None:
    """The saved result of the study if it ran to its end (retrains included); ConfigError when
    the folder holds a study with other settings."""
    import json

    from hpsearch.tune.results import RESULT_FILE, StudyResult
    from hpsearch.tune.runner import CONFIG_FILE

    folder = experiment.config.results_dir
    saved = folder / CONFIG_FILE
    if not saved.is_file() or not (folder / RESULT_FILE).is_file():
        return None
    if _comparable(json.loads(saved.read_text())) != _comparable(experiment.config.model_dump(mode="json")):
        raise ConfigError(f"{folder} holds study {experiment.config.name!r} with other settings than this "
                          "benchmark's: pass --overwrite to replace it or choose another --out")
    result = StudyResult.load(folder)
    finished = result.final is not None or not experiment.config.retrains
    return result if finished else None


def tracking_server(settings: BenchmarkSettings) -> tuple[str, TrackingServer | None]:
    """The tracking URI: given, ``MLFLOW_TRACKING_URI``, a server still running from an earlier
    run in ``<out>/mlflow``, or a new local server there (returned so the caller can stop it)."""
    uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    import json

    folder = (Path(settings.out) / "mlflow").resolve()
    saved = folder / SERVER_FILE
    if saved.is_file():
        from hpsearch.tracking.server import answers_as_mlflow

        earlier = json.loads(saved.read_text())
        if answers_as_mlflow(str(earlier["url"])):
            logger.info("using the MLflow server still running at %s", earlier["url"])
            return str(earlier["url"]), None
    from hpsearch.tracking.server import start_server

    server = start_server(folder)
    saved.write_text(json.dumps({"url": server.url, "pid": server.process.pid}) + "\n")
    return server.url, server


def _release_data(experiments: Mapping[str, list[Experiment]]) -> None:
    """Free the data actors the benchmark's studies kept on a cluster it joined (not its own Ray)."""
    from hpsearch.parallel import import_ray
    from hpsearch.tune.runner import data_key
    from hpsearch.tune.shards import release_shards

    if not import_ray().is_initialized():
        return
    for key in {data_key(e.config) for repeats in experiments.values() for e in repeats}:
        release_shards(key)


def _jobs(experiments: Mapping[str, list[Experiment]], kept: Mapping[str, StudyResult], n_repeats: int,
          benchmark: str) -> list[StudyJob]:
    """The studies to run, repeat by repeat with the strategies interleaved (a repeat shares the
    machine's state), numbered among all studies, the kept ones left out."""
    from hpsearch.bench.mlflow_runs import study_tags
    from hpsearch.bench.schedule import StudyJob

    total, index, jobs = sum(len(r) for r in experiments.values()), 0, []
    for repeat in range(n_repeats):
        for stem, repeats in experiments.items():
            index += 1
            experiment = repeats[repeat]
            if experiment.config.name in kept:
                continue
            title = (f"study {index}/{total}: {LABELS[stem]}, repeat {repeat + 1}/{n_repeats} "
                     f"({experiment.config.name})")
            jobs.append(StudyJob(stem, repeat, experiment, title, study_tags(LABELS[stem], repeat, benchmark)))
    return jobs


def _prepare(experiments: Mapping[str, list[Experiment]], settings: BenchmarkSettings) -> dict[str, StudyResult]:
    """Validate every study and make room for it; the studies an earlier run finished (``resume``)."""
    kept: dict[str, StudyResult] = {}
    for repeats in experiments.values():
        for experiment in repeats:
            experiment.validate()
            earlier = _fresh_folder(experiment, settings.overwrite, settings.resume)
            if earlier is not None:
                kept[experiment.config.name] = earlier
    if kept:
        logger.info("keeping %d studies the earlier run finished: %s", len(kept), ", ".join(sorted(kept)))
    return kept


def run_paper_benchmark(settings: BenchmarkSettings) -> BenchmarkReport:
    """Run the strategies (one study after the other, or several at once on a cluster with room),
    then write and log the comparison.

    The MLflow server this call starts is stopped at the end unless `keep_server`
    (``report.server_pid`` then says which process to end).
    """
    from hpsearch.bench.mlflow_runs import annotate_studies, log_comparison
    from hpsearch.bench.report import build_report, mlflow_experiment_of
    from hpsearch.bench.schedule import parallel_studies, run_jobs
    from hpsearch.parallel import ensure_ray, stop_ray

    out = Path(settings.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = resolve_data(settings)
    logger.info("%s", data.describe())
    uri, server = tracking_server(settings)
    started_ray = False
    experiments: dict[str, list[Experiment]] = {}
    try:
        experiments = load_benchmark_experiments(settings, uri, data)
        kept = _prepare(experiments, settings)
        started_ray = ensure_ray(settings.address)
        parallel = parallel_studies([r[0] for r in experiments.values()], settings.address, settings.parallel_studies)
        started = time.perf_counter()
        done, timeline = run_jobs(_jobs(experiments, kept, settings.n_repeats, str(out)), parallel,
                                  settings.address, settings.progress)
        results = {stem: [kept[e.config.name] if e.config.name in kept else done[(stem, r)]
                          for r, e in enumerate(repeats)] for stem, repeats in experiments.items()}
        logger.info("all %d studies done in %.0f s (%d at a time)", sum(len(r) for r in results.values()),
                    time.perf_counter() - started, parallel)
        report = build_report(results, experiments, uri, out, time.perf_counter() - started,
                              references=settings.references, data={**data.to_dict(), "parallel_studies": parallel},
                              timeline=timeline)
        log_comparison(report, uri, mlflow_experiment_of(experiments))
        annotate_studies(report, experiments, uri, LABELS)
    finally:
        if started_ray:
            stop_ray()
        elif experiments:
            _release_data(experiments)
        if server is not None and not settings.keep_server:
            server.stop()
            (out / "mlflow" / SERVER_FILE).unlink(missing_ok=True)
            server = None
    report.server_url = uri
    report.server_pid = server.process.pid if server is not None else None
    return report
