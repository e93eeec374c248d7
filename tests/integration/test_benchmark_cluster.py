"""The benchmark scaled out: on a Ray cluster of simulated nodes (2 x 2 CPUs) with room for two
studies, `hpsearch benchmark paper --address` runs two studies at once (their wall-time intervals
intersect), on a store given with --store (default split printed), with the null and the verdict,
and every study run in MLflow carries its strategy tag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.mlflow]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TIMEOUT_S = 540


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Any]:
    """A head and a worker node of 2 CPUs each on this machine; drivers attach by address."""
    from ray.cluster_utils import Cluster

    saved = dict(os.environ)
    os.environ.update(RAY_TMPDIR=tempfile.mkdtemp(prefix="hpsbc_", dir="/tmp"), RAY_AUTH_MODE="disabled",
                      RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "object_store_memory": 80 * 2**20, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=2, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def _tiny_experiments(folder: Path) -> Path:
    """The quick null and tpe files, shrunk: 2 epochs, 2 TPE trials, 1 retrain."""
    folder.mkdir(parents=True)
    for stem in ("null", "tpe"):
        raw = yaml.safe_load((REPO / "experiments" / "quick" / f"{stem}.yaml").read_text())
        raw["fixed"]["max_epochs"] = 2
        raw["retrains"] = 1
        raw["search_space"]["n_layers"] = [1, 2]
        raw["search_space"]["width"] = [16, 32]
        if stem == "tpe":
            raw["budget"]["max_trials"] = 2
        (folder / f"{stem}.yaml").write_text(yaml.safe_dump(raw))
    return folder


def test_two_studies_run_at_once_on_a_cluster_with_room(two_nodes: Any, small_store: Path, mlflow_server: Any,
                                                         tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    out = tmp_path / "bench"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.url, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
           "COLUMNS": "250"}
    command = [str(VENV_BIN / "hpsearch"), "benchmark", "paper", "--address", two_nodes.address,
               "--store", str(small_store), "--experiments", str(_tiny_experiments(tmp_path / "experiments")),
               "-s", "null", "-s", "tpe", "--repeats", "1", "--out", str(out), "--mlflow-experiment", "bench-cluster"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"

    # the split used is printed: the default division of the store's 4 snapshots
    assert f"data: {small_store.resolve()}; split 2 train" in done.stdout and "default division 2:1:1" in done.stdout
    assert "verdict: not decidable" in done.stdout and "strategy claims: not decidable" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["parallel_studies"] == 2  # floor(4 CPUs / (1 CPU x 2 concurrent trials))
    assert summary["data"]["split"]["test"] == ["al298-seed0-003"]
    timeline = summary["timeline"]
    assert set(timeline) == {"demo-null-r0", "demo-tpe-r0"}
    (a0, a1), (b0, b1) = timeline.values()
    assert max(a0, b0) < min(a1, b1), timeline  # the two studies overlapped in time
    assert summary["verdict"]["state"] == "not decidable" and summary["claims"] == []
    runs = {row["strategy"]: row for row in summary["runs"]}
    assert set(runs) == {"no search", "tpe"} and all(r["test_ldos_rmse"] > 0 for r in runs.values())
    assert runs["no search"]["trials"] == 1 and runs["tpe"]["trials"] == 2
    for study in (s for studies in summary["studies"].values() for s in studies):
        assert study["final"] is not None and study["config"]["dataset"]["store"] == str(small_store.resolve())

    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("bench-cluster")
    found = client.search_runs([experiment.experiment_id])
    studies = [r for r in found if r.data.tags.get("hpsearch.role") == "study"]
    assert sorted(r.data.tags["strategy"] for r in studies) == ["no search", "tpe"]
    comparison = next(r for r in found if r.data.tags.get("hpsearch.role") == "comparison")
    assert comparison.data.tags["hpsearch.verdict"] == "not decidable" and comparison.data.params["verdict"] == (
        "not decidable")
    assert "ridge_test_ldos_rmse" in comparison.data.metrics and "constant_test_ldos_rmse" in comparison.data.metrics
