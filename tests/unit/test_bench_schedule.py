"""The benchmark's study schedule: how many studies a cluster holds, and studies run at once in
threads (overlapping, results by key, the first error raised after the running ones end)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from hpsearch.bench.schedule import StudyJob, parallel_studies, run_jobs, studies_the_cluster_holds
from hpsearch.errors import ConfigError


def _experiment(cpus: float = 1.0, gpus: float = 0.0, max_concurrent: int = 2, name: str = "s",
                seconds: float = 0.0, fail: bool = False) -> Any:
    calls: list[dict[str, Any]] = []

    def run(address: str | None = None, callbacks: Any = (), tags: Any = None) -> Any:
        calls.append({"address": address, "tags": dict(tags or {}), "thread": threading.current_thread().name})
        time.sleep(seconds)
        if fail:
            raise RuntimeError(f"study {name} broke")
        return SimpleNamespace(name=name, final=None, core_seconds=1.0)

    config = SimpleNamespace(name=name, resources=SimpleNamespace(cpus=cpus, gpus=gpus),
                             budget=SimpleNamespace(max_concurrent=max_concurrent))
    return SimpleNamespace(config=config, run=run, calls=calls)


def test_the_cluster_holds_cpus_over_trial_cpus_times_concurrency() -> None:
    experiments = [_experiment(cpus=1, max_concurrent=2), _experiment(cpus=0.5, max_concurrent=2)]
    assert studies_the_cluster_holds({"CPU": 4.0}, experiments) == 2   # floor(4 / (1 x 2)) for the largest
    assert studies_the_cluster_holds({"CPU": 5.0}, experiments) == 2
    assert studies_the_cluster_holds({"CPU": 1.0}, experiments) == 1   # at least one
    gpu = [_experiment(cpus=1, gpus=1, max_concurrent=1)]
    assert studies_the_cluster_holds({"CPU": 16.0, "GPU": 2.0}, gpu) == 2  # the GPUs bound it


def test_local_default_is_one_and_requests_are_checked() -> None:
    experiments = [_experiment()]
    assert parallel_studies(experiments, address=None, requested=None) == 1
    assert parallel_studies(experiments, address="auto", requested=3) == 3
    with pytest.raises(ConfigError, match="--parallel-studies 0"):
        parallel_studies(experiments, address=None, requested=0)


def _jobs(n: int, seconds: float, fail_at: int | None = None) -> list[StudyJob]:
    return [StudyJob("tpe", r, _experiment(name=f"s{r}", seconds=seconds, fail=r == fail_at), f"study {r}",
                     {"strategy": "tpe"}) for r in range(n)]


def test_studies_run_at_once_and_come_back_by_key() -> None:
    jobs = _jobs(4, seconds=0.4)
    results, timeline = run_jobs(jobs, parallel=2, address="auto", progress=True)  # one display, four lines
    assert sorted(results) == [("tpe", r) for r in range(4)]
    assert [results[("tpe", r)].name for r in range(4)] == ["s0", "s1", "s2", "s3"]
    (a0, a1), (b0, b1) = timeline["s0"], timeline["s1"]
    assert max(a0, b0) < min(a1, b1)  # the first two overlap in time
    assert all(job.experiment.calls[0]["tags"] == {"strategy": "tpe"} for job in jobs)
    assert all(job.experiment.calls[0]["address"] == "auto" for job in jobs)


def test_one_at_a_time_runs_in_order_in_this_thread() -> None:
    jobs = _jobs(3, seconds=0.05)
    results, timeline = run_jobs(jobs, parallel=1, address=None, progress=False)
    assert len(results) == 3
    starts = [timeline[f"s{r}"][0] for r in range(3)]
    assert starts == sorted(starts) and timeline["s0"][1] <= timeline["s1"][0]
    assert {job.experiment.calls[0]["thread"] for job in jobs} == {threading.current_thread().name}


def test_the_first_error_stops_new_studies_and_is_raised() -> None:
    jobs = _jobs(6, seconds=0.2, fail_at=0)
    with pytest.raises(RuntimeError, match="study s0 broke"):
        run_jobs(jobs, parallel=2, address="auto", progress=False)
    started = [job for job in jobs if job.experiment.calls]
    assert len(started) < 6  # no study started after the error
