"""Fault tolerance on a real multi-node Ray: several raylets on this machine (``ray.cluster_utils``).

A head (no CPUs, where drivers attach) and two 1-CPU worker nodes run a 6-trial grid study
through a driver process (``hpsearch run``-style, tracked in a real MLflow server). The test
process watches the trials' own ``result.json`` files and injures the cluster at a known point:

- a worker node is killed mid-training: no finished trial is lost, the running one is retried
  (``budget.max_failures``) and completes; MLflow has one run per trial, the retried one tagged;
- the driver is SIGKILLed after some trials finished: ``hpsearch resume`` completes the study
  from the saved searcher state; no finished trial runs again, no MLflow run is duplicated;
- the data actors are frozen while trials wait on them, then killed: they come back, reload
  their shard, and the waiting trials go on (none fails).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpsearch.config.strategy import METRIC

pytestmark = [pytest.mark.ray, pytest.mark.mlflow, pytest.mark.slow]

WIDTHS = [8, 12, 16, 20, 24, 28]
MAX_EPOCHS = 300
STUDY_TIMEOUT_S = 240.0
VENV_BIN = Path(sys.executable).parent



# -- processes of the simulated nodes (read from /proc: no psutil in the stack) -------------------
def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    return int(fields[11]) + int(fields[12])  # utime + stime


def _raylet_pid(node: Any) -> int:
    from ray._private import ray_constants

    return int(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)


def _workers(node: Any, title: str) -> list[int]:
    """Ray worker processes of `node` whose process title contains `title`."""
    return [pid for pid in _children(_raylet_pid(node)) if title in _title(pid)]


# -- the study's own files ---------------------------------------------------------------------
def trial_reports(study: Path) -> dict[str, list[dict[str, Any]]]:
    """trial id -> every result Tune wrote for it (a restarted trial appends to the same file)."""
    reports: dict[str, list[dict[str, Any]]] = {}
    for path in (study / "tune").glob("*/result.json"):
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line being written
        if rows:
            reports[rows[0]["trial_id"]] = rows
    return reports


def finished(reports: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """trial id -> band-energy error of every trial that has reported its end."""
    return {tid: rows_final[-1][METRIC] for tid, rows in reports.items()
            if (rows_final := [r for r in rows if METRIC in r])}


def final_reports(rows: list[dict[str, Any]]) -> int:
    return sum(1 for r in rows if METRIC in r)


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, driver: subprocess.Popen[bytes] | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if driver is not None and driver.poll() is not None:
            raise AssertionError(f"the driver exited ({driver.returncode}) while waiting for {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Head (0 CPUs: drivers and data actors only) + two 1-CPU worker nodes, fast failure detection."""
    from ray.cluster_utils import Cluster

    saved = dict(os.environ)
    os.environ.update(
        RAY_TMPDIR=tempfile.mkdtemp(prefix="hpsft_", dir="/tmp"),  # short socket paths, private
        RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1",
    )
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0, "include_dashboard": False,
            "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                               "health_check_failure_threshold": 4},
        },
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture()
def two_workers(cluster: Any) -> Any:
    """The cluster with exactly two live worker nodes (a test may have removed one)."""
    while len(cluster.worker_nodes) < 2:
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    return cluster


class Study:
    """One study of the test grid: its files, its driver process, its MLflow runs."""

    def __init__(self, name: str, folder: Path, store: Path, cluster: Any, tracking_uri: str) -> None:
        self.name = name
        self.folder = folder
        self.cluster = cluster
        self.tracking_uri = tracking_uri
        self.dir = folder / name
        self.experiment = folder / f"{name}.yaml"
        self.experiment.write_text(yaml.safe_dump({
            "name": name, "dataset": {"store": str(store)},
            "search_space": {"width": WIDTHS, "n_layers": [1]}, "strategy": {"name": "grid"},
            "fixed": {"max_epochs": MAX_EPOCHS, "patience": 10 * MAX_EPOCHS, "batch_size": 64},
            "budget": {"max_concurrent": 2, "max_failures": 2}, "resources": {"cpus": 1},
            "naswot": {"batch_size": 16}, "seed": 3, "storage_path": str(self.dir),
            "tracking": {"enabled": True, "uri": tracking_uri, "experiment": name},
        }))
        self.env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
                    "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
        self.log = folder / f"{name}.log"

    def start(self, *command: str) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            return subprocess.Popen(list(command), cwd=self.folder, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def run(self) -> subprocess.Popen[bytes]:
        return self.start(str(VENV_BIN / "hpsearch"), "run", str(self.experiment), "--address", self.cluster.address)

    def resume(self) -> subprocess.Popen[bytes]:
        return self.start(str(VENV_BIN / "hpsearch"), "resume", str(self.dir), "--address", self.cluster.address)

    def wait(self, driver: subprocess.Popen[bytes]) -> None:
        try:
            code = driver.wait(STUDY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, signal.SIGKILL)
            raise AssertionError(f"the study did not finish in {STUDY_TIMEOUT_S} s; log: {self.tail()}") from None
        assert code == 0, f"driver exited with {code}; log: {self.tail()}"

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""

    def reports(self) -> dict[str, list[dict[str, Any]]]:
        return trial_reports(self.dir)

    def result(self) -> Any:
        from hpsearch.api import Experiment

        return Experiment.load_result(str(self.dir))

    def mlflow_runs(self) -> tuple[list[Any], list[Any]]:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.tracking_uri)
        experiment = client.get_experiment_by_name(self.name)
        assert experiment is not None, "no MLflow experiment for the study"
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        studies = [r for r in runs if r.data.tags.get("hpsearch.role") == "study"]
        trials = [r for r in runs if r.data.tags.get("hpsearch.role") == "trial"]
        return studies, trials


@pytest.fixture()
def make_study(two_workers: Any, small_store: Path, mlflow_server: Any, tmp_path: Path) -> Callable[[str], Study]:
    return lambda name: Study(name, tmp_path, small_store, two_workers, mlflow_server.url)


def assert_complete(study: Study, before: dict[str, float]) -> Any:
    """Every grid point once, all completed; trials finished before the fault kept their error."""
    result = study.result()
    frame = result.trials
    assert len(frame) == len(WIDTHS) and frame["trial_id"].is_unique
    assert sorted(frame["width"]) == WIDTHS
    assert set(frame["status"]) == {"completed"}, frame[["trial_id", "status", "reason"]].to_string()
    errors = dict(zip(frame["trial_id"].astype(str), frame["val_error_mev_per_atom"]))
    for trial_id, error in before.items():
        assert errors[trial_id] == pytest.approx(error, rel=1e-12), f"trial {trial_id} changed"
    assert all(math.isfinite(e) and e > 0 for e in errors.values())
    return frame


def assert_mlflow_once(study: Study, trial_ids: set[str]) -> dict[str, Any]:
    """One parent run, one finished child run per trial, no duplicate; trial id -> run."""
    studies, trials = study.mlflow_runs()
    assert len(studies) == 1
    ids = [r.data.tags["hpsearch.trial_id"] for r in trials]
    assert sorted(ids) == sorted(trial_ids), f"MLflow trial runs {sorted(ids)} != {sorted(trial_ids)}"
    runs = {r.data.tags["hpsearch.trial_id"]: r for r in trials}
    for trial_id, run in runs.items():
        assert run.info.status == "FINISHED" and run.data.tags.get("hpsearch.status") == "completed", trial_id
        assert run.data.tags.get("mlflow.parentRunId") == studies[0].info.run_id
    return runs


# -- the tests -----------------------------------------------------------------------------------
def test_worker_node_lost_mid_study(make_study: Callable[[str], Study]) -> None:
    study = make_study("node-lost")
    cluster = study.cluster
    driver = study.run()

    def running_trial() -> tuple[str, int] | None:
        reports = study.reports()
        done = finished(reports)
        if not done:
            return None
        for trial_id, rows in reports.items():
            last = rows[-1]
            if trial_id not in done and "epoch" in last and 2 <= last["epoch"] <= MAX_EPOCHS // 2:
                return trial_id, int(last["pid"])
        return None

    victim, pid = wait_for(running_trial, STUDY_TIMEOUT_S, "a finished trial and a running one", driver)
    before = finished(study.reports())
    node = next(n for n in cluster.worker_nodes if pid in _children(_raylet_pid(n)))
    cluster.remove_node(node, allow_graceful=False)  # the raylet and everything on it, SIGKILLed
    study.wait(driver)

    frame = assert_complete(study, before)
    reports = study.reports()
    assert victim in set(frame["trial_id"].astype(str))
    restarts = sum(1 for r in reports[victim] if r.get("iterations_since_restore") == 1)
    assert restarts >= 2, "the trial on the lost node was not run again"
    assert final_reports(reports[victim]) == 1
    for trial_id in before:
        assert final_reports(reports[trial_id]) == 1, f"finished trial {trial_id} ran again"

    runs = assert_mlflow_once(study, set(frame["trial_id"].astype(str)))
    assert runs[victim].data.tags["hpsearch.retried"] == "true"
    assert int(runs[victim].data.tags["hpsearch.retries"]) >= 1
    assert all(runs[t].data.tags["hpsearch.retried"] == "false" for t in before)


def test_driver_killed_then_resumed(make_study: Callable[[str], Study]) -> None:
    study = make_study("driver-killed")
    driver = study.run()
    wait_for(lambda: len(finished(study.reports())) >= 2, STUDY_TIMEOUT_S, "two finished trials", driver)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(30)
    before = finished(study.reports())
    assert len(before) < len(WIDTHS), "the study finished before the driver was killed: lengthen the trials"

    study.wait(study.resume())

    frame = assert_complete(study, before)
    reports = study.reports()
    for trial_id in before:
        assert final_reports(reports[trial_id]) == 1, f"finished trial {trial_id} ran again after resume"
    assert all(final_reports(rows) == 1 for rows in reports.values())
    assert_mlflow_once(study, set(frame["trial_id"].astype(str)))


def test_data_actor_lost_while_trials_wait_on_it(make_study: Callable[[str], Study]) -> None:
    study = make_study("actor-lost")
    workers = study.cluster.worker_nodes
    driver = study.run()
    # Trials have started once Tune created their folders (the shards are placed by then).
    wait_for(lambda: list((study.dir / "tune").glob("run_trial_*")), STUDY_TIMEOUT_S, "the first trials", driver)
    actors = {pid for node in workers for pid in _workers(node, "ray::ShardActor")}
    assert actors, "no data actor on the worker nodes"
    for pid in actors:
        os.kill(pid, signal.SIGSTOP)  # frozen: a trial asking for its data now waits

    def trials_waiting() -> bool:
        trials = [pid for node in workers for pid in _workers(node, "ImplicitFunc.train")]
        if len(trials) < 2:
            return False
        ticks = [_cpu_ticks(pid) for pid in trials]
        time.sleep(1.5)
        return ticks == [_cpu_ticks(pid) for pid in trials]  # idle: blocked on the frozen actors

    try:
        wait_for(trials_waiting, 120, "trials blocked on the data actors", driver)
        assert not study.reports(), "a trial got its data from a frozen actor"
    finally:
        for pid in actors:
            os.kill(pid, signal.SIGKILL)  # lost, with the trials' requests in flight
    wait_for(lambda: {pid for node in workers for pid in _workers(node, "ray::ShardActor")} - actors,
             60, "a new data actor", driver)
    study.wait(driver)

    frame = assert_complete(study, {})
    assert all(final_reports(rows) == 1 for rows in study.reports().values())
    assert_mlflow_once(study, set(frame["trial_id"].astype(str)))
