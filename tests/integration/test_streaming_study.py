"""Streamed studies on a real Ray whose object store is smaller than the store being searched.

One local Ray node (2 CPUs, ``object_store_memory`` 80 MiB) and a synthetic store of 122 MB (the
small Al store tiled 3x4x4): the split cannot sit in the object store, so trials stream it from the
node's stream actor. A study driven by ``hpsearch run`` completes; a trial worker SIGKILLed in the
middle of an epoch is retried like any other lost trial and the study still completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpsearch.config.strategy import METRIC
from hpsearch.data.enlarge import enlarge_store

pytestmark = [pytest.mark.ray, pytest.mark.slow]

OBJECT_STORE_BYTES = 80 * 1024 * 1024
VENV_BIN = Path(sys.executable).parent
STUDY_TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def small_ray() -> Iterator[Any]:
    """A one-node Ray (2 CPUs) started with a small object store; drivers attach by address."""
    from ray.cluster_utils import Cluster

    saved = dict(os.environ)
    os.environ.update(RAY_TMPDIR=tempfile.mkdtemp(prefix="hpsst_", dir="/tmp"), RAY_AUTH_MODE="disabled",
                      RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "object_store_memory": OBJECT_STORE_BYTES, "include_dashboard": False})
    try:
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def big_store(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = enlarge_store(small_store, tmp_path_factory.mktemp("big") / "big.h5", tile=(3, 4, 4))
    assert path.stat().st_size > 0
    return path


def _study(folder: Path, name: str, store: Path, cluster: Any, fixed: dict[str, Any], widths: list[int],
           max_failures: int = 0) -> tuple[Path, subprocess.Popen[bytes], Path]:
    study_dir = folder / name
    experiment = folder / f"{name}.yaml"
    experiment.write_text(yaml.safe_dump({
        "name": name, "dataset": {"store": str(store), "chunk_points": 8192},
        "search_space": {"width": widths, "n_layers": [1]}, "strategy": {"name": "grid"},
        "fixed": fixed, "budget": {"max_concurrent": 2, "max_failures": max_failures},
        "resources": {"cpus": 1}, "naswot": {"batch_size": 16}, "seed": 2, "storage_path": str(study_dir),
    }))
    log = folder / f"{name}.log"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    with open(log, "ab") as out:
        driver = subprocess.Popen([str(VENV_BIN / "hpsearch"), "run", str(experiment), "--address", cluster.address],
                                  cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return study_dir, driver, log


def _wait(driver: subprocess.Popen[bytes], log: Path) -> None:
    try:
        code = driver.wait(STUDY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(driver.pid, signal.SIGKILL)
        raise AssertionError(f"the study did not finish in {STUDY_TIMEOUT_S} s: {log.read_text()[-3000:]}") from None
    assert code == 0, f"driver exited with {code}: {log.read_text()[-3000:]}"


def _reports(study_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """trial id -> every result Tune wrote for it (a restarted trial appends to the same file)."""
    reports: dict[str, list[dict[str, Any]]] = {}
    for path in (study_dir / "tune").glob("*/result.json"):
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line being written
        if rows:
            reports[rows[0]["trial_id"]] = rows
    return reports


def test_study_on_a_store_larger_than_the_object_store_completes(small_ray: Any, big_store: Path, tmp_path: Path) -> None:
    from hpsearch.data import open_store, split_snapshots
    from hpsearch.tune.streaming import split_nbytes

    with open_store(big_store) as store:
        names = store.names
    assert split_nbytes(big_store, split_snapshots(names, 2, 1, 1)) > 1.4 * OBJECT_STORE_BYTES
    study_dir, driver, log = _study(tmp_path, "streamed", big_store, small_ray,
                                    {"max_epochs": 2, "patience": 10, "batch_size": 512}, [8, 16])
    _wait(driver, log)
    text = log.read_text()
    assert "data path: streamed chunk by chunk" in text, text[-3000:]
    from hpsearch.api import Experiment

    frame = Experiment.load_result(str(study_dir)).trials
    assert sorted(frame["width"]) == [8, 16]
    assert set(frame["status"]) == {"completed"}, frame[["status", "reason"]].to_string()
    assert all(e > 0 for e in frame["val_error_mev_per_atom"])


def test_worker_killed_mid_epoch_while_streaming_is_retried(small_ray: Any, big_store: Path, tmp_path: Path) -> None:
    fixed = {"max_epochs": 4, "patience": 60, "batch_size": 128}
    study_dir, driver, log = _study(tmp_path, "killed", big_store, small_ray, fixed, [8, 12], max_failures=2)
    deadline = time.monotonic() + STUDY_TIMEOUT_S
    victim: tuple[str, int, float] | None = None
    while victim is None and time.monotonic() < deadline and driver.poll() is None:
        for trial_id, rows in _reports(study_dir).items():
            epochs = [r for r in rows if "epoch" in r and METRIC not in r]
            if len(epochs) >= 2:
                epoch_s = float(epochs[-1]["time_this_iter_s"])
                victim = trial_id, int(epochs[-1]["pid"]), epoch_s
                break
        time.sleep(0.05)
    assert victim is not None, f"no trial reached its second epoch: {log.read_text()[-3000:]}"
    trial_id, pid, epoch_s = victim
    time.sleep(epoch_s / 2)  # inside the next epoch, with chunk requests in flight
    os.kill(pid, signal.SIGKILL)
    _wait(driver, log)
    assert "data path: streamed chunk by chunk" in log.read_text()

    from hpsearch.api import Experiment

    frame = Experiment.load_result(str(study_dir)).trials
    assert set(frame["status"]) == {"completed"}, frame[["status", "reason"]].to_string()
    rows = _reports(study_dir)[trial_id]
    assert sum(1 for r in rows if r.get("iterations_since_restore") == 1) >= 2, "the killed trial was not run again"
    assert sum(1 for r in rows if METRIC in r) == 1
