"""Run the benchmark's studies: one after another, or several at once on a cluster with room.

Each study runs its trials within its own resources (``resources`` per trial,
``budget.max_concurrent`` trials at a time). With ``parallel`` > 1, that many studies run at once,
each in a thread of the driver (its own Tune controller, its own trainable name, its own MLflow
run); the progress lines share one display. By default a local machine runs one study at a time
(today's behaviour) and a cluster as many as its CPUs (and GPUs) hold:
floor(cluster CPUs / (CPUs per trial x max_concurrent)) for the largest study, at least 1.

Example::

    n = parallel_studies(experiments, address="auto", requested=None)
    results, timeline = run_jobs(jobs, n, address="auto", progress=True)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from hpsearch.bench.progress import ProgressBoard, StudyProgress
from hpsearch.errors import ConfigError

if TYPE_CHECKING:
    from hpsearch.api import Experiment
    from hpsearch.tune.results import StudyResult

__all__ = ["StudyJob", "parallel_studies", "run_jobs", "studies_the_cluster_holds"]

logger = logging.getLogger(__name__)

#: (stem, repeat) of a study
JobKey = tuple[str, int]
#: how often the driver looks up from waiting (Ctrl+C reaches it in between)
_POLL_S = 0.5


@dataclasses.dataclass(frozen=True)
class StudyJob:
    """One study of the benchmark: its strategy (file stem), repeat, experiment, progress title and
    the tags of its MLflow run."""

    stem: str
    repeat: int
    experiment: Experiment
    title: str
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> JobKey:
        return self.stem, self.repeat


def studies_the_cluster_holds(cluster: Mapping[str, float], experiments: Iterable[Experiment]) -> int:
    """How many studies fit on `cluster` (Ray's resources) at once, each running max_concurrent
    trials of its resources: the smallest count over CPUs and GPUs for the largest study, at least 1."""
    fits = []
    for experiment in experiments:
        config = experiment.config
        for key, per_trial in (("CPU", config.resources.cpus), ("GPU", config.resources.gpus)):
            if per_trial > 0:
                fits.append(math.floor(float(cluster.get(key, 0.0)) / (per_trial * config.budget.max_concurrent)))
    return max(1, min(fits)) if fits else 1


def parallel_studies(experiments: Iterable[Experiment], address: str | None, requested: int | None) -> int:
    """Studies to run at once: `requested`, else 1 on a local machine (``address`` None), else what
    the connected cluster holds (Ray must be connected)."""
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--parallel-studies {requested}: give 1 or more studies at once")
        return requested
    if address is None:
        return 1
    from hpsearch.parallel import import_ray

    return studies_the_cluster_holds(import_ray().cluster_resources(), experiments)


def _run_one(job: StudyJob, address: str | None, progress: bool, board: ProgressBoard | None,
             ) -> tuple[StudyResult, tuple[float, float]]:
    started = time.time()
    objective = getattr(job.experiment.config, "objective", "ldos_mse")  # stand-in configs may lack it
    with StudyProgress(job.title, enabled=progress, board=board, objective=objective) as line:
        result = job.experiment.run(address=address, callbacks=[line.callback()], tags=job.tags)
        line.done(result)
    return result, (started, time.time())


def run_jobs(jobs: Sequence[StudyJob], parallel: int, address: str | None, progress: bool = True,
             ) -> tuple[dict[JobKey, StudyResult], dict[str, tuple[float, float]]]:
    """Run `jobs` (in order; `parallel` at a time); returns each job's result and each study's
    (start, end) in Unix seconds. The first error stops handing out studies; it is raised once the
    running ones end."""
    results: dict[JobKey, StudyResult] = {}
    timeline: dict[str, tuple[float, float]] = {}
    if parallel <= 1 or len(jobs) <= 1:
        for job in jobs:
            results[job.key], timeline[job.experiment.config.name] = _run_one(job, address, progress, None)
        return results, timeline
    with ProgressBoard(enabled=progress) as board:
        _run_in_threads(jobs, min(parallel, len(jobs)), address, progress, board, results, timeline)
    return results, timeline


def _run_in_threads(jobs: Sequence[StudyJob], n_threads: int, address: str | None, progress: bool,
                    board: ProgressBoard, results: dict[JobKey, StudyResult],
                    timeline: dict[str, tuple[float, float]]) -> None:
    """Worker threads take the jobs in order; daemon threads, so Ctrl+C ends the driver (an
    unfinished study runs again with ``--resume``)."""
    todo: queue.Queue[StudyJob] = queue.Queue()
    for job in jobs:
        todo.put(job)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        while not errors:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                result, interval = _run_one(job, address, progress, board)
            except BaseException as exc:  # noqa: BLE001 - handed to the driver thread, raised there
                logger.error("study %s failed: %s", job.experiment.config.name, exc)
                with lock:
                    errors.append(exc)
                return
            with lock:
                results[job.key], timeline[job.experiment.config.name] = result, interval

    from hpsearch.tune.registry import thread_safe_tune_registry

    thread_safe_tune_registry()
    threads = [threading.Thread(target=work, name=f"study-{i}", daemon=True) for i in range(n_threads)]
    logger.info("running %d studies at a time (%d in all)", n_threads, len(jobs))
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(_POLL_S)
    except KeyboardInterrupt:
        errors.append(KeyboardInterrupt())  # no new study starts
        logger.warning("interrupted: the studies still running are abandoned; `--resume` runs them again")
        raise
    if errors:
        raise errors[0]
