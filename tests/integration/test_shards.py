"""Data shards in real Ray actors: loaded once per node, served to trials that never read the store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from ray import cloudpickle

from hpsearch.data.splits import Split
from hpsearch.model import TrainingData
from hpsearch.physics import EnergyGrid

pytestmark = pytest.mark.ray
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import test modules

SPLIT = Split(train=("Be_snapshot0", "Be_snapshot1"), validation=("Be_snapshot2",), test=("Be_snapshot3",))


@pytest.fixture(scope="module")
def be2_store(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hpsearch.data.mala import import_mala

    return import_mala(be2_dir, tmp_path_factory.mktemp("be2") / "be2.h5", EnergyGrid(-5.0, 2.5, 11))


@pytest.fixture()
def shards(ray_local: Any) -> Any:
    from hpsearch.tune import shards

    shards.release_shards()
    yield shards
    shards.release_shards()


def _assert_same(data: TrainingData, ref: TrainingData) -> None:
    for name in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(data, name), getattr(ref, name)), name
    assert [t.name for t in data.test] == [t.name for t in ref.test]
    for got, want in zip(data.test, ref.test, strict=True):
        assert torch.equal(got.descriptors, want.descriptors) and torch.equal(got.ldos, want.ldos)
        assert (got.energy_grid, got.n_atoms, got.n_electrons) == (want.energy_grid, want.n_atoms, want.n_electrons)
        assert got.voxel_volume_angstrom3 == pytest.approx(want.voxel_volume_angstrom3)


def _trial(store: str, split: Split, fresh_process: bool) -> dict[str, Any]:
    """What a trial does, in a Ray worker: the store is made unreadable there first."""
    import time

    import hpsearch.data.store as store_module
    from hpsearch.model import NetworkSpec, TrainingSettings, train
    from hpsearch.tune import shards

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a trial opened the store")

    original, store_module.open_store = store_module.open_store, refuse  # type: ignore[assignment]
    try:
        if fresh_process:
            shards.clear_cache()  # as in a worker process that has not served this store yet
        t0 = time.perf_counter()
        data = shards.get_training_data(store, split)
        fetch_s = time.perf_counter() - t0
    finally:
        store_module.open_store = original  # type: ignore[assignment]
    spec = NetworkSpec(n_in=data.n_features, n_out=data.n_energies, widths=(16,))
    result = train(spec, TrainingSettings(max_epochs=1, batch_size=4096), data)
    return {"fetch_s": fetch_s, "status": result.status, "points": int(data.x_train.shape[0]),
            "val": result.history[-1]["val_loss"], "pid": os.getpid(), "x_sum": float(data.x_train.double().sum())}


def test_node_actor_loads_once_and_serves_every_trial(shards: Any, be2_store: Path) -> None:
    import ray

    ref = TrainingData.from_store(be2_store, SPLIT)
    trial = ray.remote(num_cpus=1)(_trial)
    first = ray.get(trial.remote(str(be2_store), SPLIT, False))  # starts the node's actor
    results = [first] + ray.get([trial.remote(str(be2_store), SPLIT, fresh) for fresh in (True, False, True)])
    assert all(r["status"] == "completed" and r["points"] == ref.x_train.shape[0] for r in results)
    # the same points: sums equal up to the reduction order (torch's threads differ between processes)
    assert all(r["x_sum"] == pytest.approx(float(ref.x_train.double().sum()), rel=1e-12) for r in results)
    info = ray.get(shards.node_actor(be2_store, SPLIT).info.remote())
    assert info["n_loads"] == 1 and info["loaded"]  # one read from disk for four trials
    assert info["node_id"] == ray.get_runtime_context().get_node_id()
    assert info["nbytes"] == sum(t.nbytes for t in (ref.x_train, ref.y_train, ref.x_val, ref.y_val,
                                                    ref.test[0].descriptors, ref.test[0].ldos))
    assert max(r["fetch_s"] for r in results[1:]) < 2.0  # generous: the benchmark measures it properly


def test_served_data_equal_the_store_and_are_zero_copy(shards: Any, be2_store: Path) -> None:
    import ray

    data = shards.get_training_data(be2_store, SPLIT)
    _assert_same(data, TrainingData.from_store(be2_store, SPLIT))
    assert shards.get_training_data(be2_store, SPLIT) is data  # per-process cache
    payload = ray.get(shards.node_actor(be2_store, SPLIT).payload.remote())
    array = ray.get(payload["train"]["x"])
    assert not array.flags.writeable  # mapped from the object store, not copied
    # scalers come from moments the actor computed: equal to fitting on the points here
    direct = TrainingData.from_store(be2_store, SPLIT).scalers().state_dict()
    served = data.scalers().state_dict()
    for key in ("x_shift", "x_scale", "y_shift", "y_scale"):
        torch.testing.assert_close(served[key], direct[key], rtol=1e-6, atol=0)


def test_sharded_placement_reports_and_gathers(shards: Any, be2_store: Path) -> None:
    import ray

    placement = shards.place_shards(be2_store, SPLIT, n_shards=2)
    assert not placement.replicated and len(placement.actors) == 2
    held = sorted(name for _, names in placement.actors.values() for name in names)
    assert held == sorted([*SPLIT.train, *SPLIT.validation, *SPLIT.test])
    node = ray.get_runtime_context().get_node_id()
    assert placement.by_node() == {node: ["Be_snapshot0", "Be_snapshot2", "Be_snapshot1", "Be_snapshot3"]}
    ref = TrainingData.from_store(be2_store, SPLIT)
    total = sum(t.nbytes for t in (ref.x_train, ref.y_train, ref.x_val, ref.y_val, ref.test[0].descriptors,
                                   ref.test[0].ldos))
    assert sum(placement.nbytes.values()) == total and 0 < min(placement.nbytes.values()) < total
    assert "sharded" in placement.report() and f"({total / 1e6:.1f} MB)" in placement.report()
    data = shards.get_training_data(be2_store, SPLIT, placement=placement)
    _assert_same(data, ref)
    torch.testing.assert_close(data.scalers().state_dict()["x_scale"],
                               TrainingData.from_store(be2_store, SPLIT).scalers().state_dict()["x_scale"])
    assert shards.release_shards(placement.key) == 2


def test_replicated_placement_preloads_the_node_actor(shards: Any, be2_store: Path) -> None:
    import ray

    placement = shards.place_shards(be2_store, SPLIT)
    assert placement.replicated
    [(name, (node, names))] = placement.actors.items()
    assert node == ray.get_runtime_context().get_node_id() and len(names) == 4
    info = ray.get(ray.get_actor(name, namespace=shards.NAMESPACE).info.remote())
    assert info["loaded"] and info["n_loads"] == 1  # loaded before any trial asks


def test_errors_name_the_problem(shards: Any, tmp_path: Path) -> None:
    from hpsearch.errors import ConfigError, DataError

    with pytest.raises(DataError, match="missing.h5"):
        shards.get_training_data(tmp_path / "missing.h5", SPLIT)
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(ConfigError, match="n_shards=9"):
        shards.place_shards(tmp_path / "x.h5", SPLIT, n_shards=9)


_TWO_NODES = textwrap.dedent(
    """
    import json, os, sys, ray
    from ray.cluster_utils import Cluster
    from hpsearch.data.splits import Split
    from hpsearch.model import TrainingData
    from hpsearch.tune import shards

    store, temp = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(temp, "ray"), exist_ok=True)  # RAY_TMPDIR/ray holds the address file
    split = Split(("Be_snapshot0", "Be_snapshot1"), ("Be_snapshot2",), ("Be_snapshot3",))
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 80 * 2**20, "temp_dir": temp, "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
    ray.init(address=cluster.address, log_to_driver=False)   # a running cluster, as address="auto"
    cluster.wait_for_nodes()
    placement = shards.place_shards(store, split, replicate=False)
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]

    @ray.remote(num_cpus=1)
    def trial(placement):
        from hpsearch.tune import shards
        data = shards.get_training_data(store, split, placement=placement)
        return ray.get_runtime_context().get_node_id(), float(data.x_train.double().sum())

    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as Pin
    ran = ray.get([trial.options(scheduling_strategy=Pin(n, soft=False)).remote(placement) for n in nodes])
    ref = float(TrainingData.from_store(store, split).x_train.double().sum())
    print(json.dumps({"by_node": placement.by_node(), "nodes": nodes, "ran": ran, "ref": ref}))
    ray.shutdown(); cluster.shutdown()
    """
)


@pytest.mark.slow
def test_two_node_cluster_holds_one_shard_per_node(be2_store: Path, tmp_path: Path) -> None:
    """Two raylets on this machine; each shard actor on its node; a trial on either node gathers both."""
    import json
    import tempfile

    temp = tempfile.mkdtemp(prefix="hps2n_", dir="/tmp")
    # RAY_TMPDIR: the cluster's address file goes there, not into the machine-wide /tmp/ray
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": temp}
    proc = subprocess.run([sys.executable, "-c", _TWO_NODES, str(be2_store), temp], capture_output=True,
                          text=True, timeout=240, env=env)
    shutil.rmtree(temp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["nodes"]) == 2 and sorted(out["by_node"]) == sorted(out["nodes"])
    assert out["by_node"][out["nodes"][0]] != out["by_node"][out["nodes"][1]]
    assert {node for node, _ in out["ran"]} == set(out["nodes"])
    assert all(total == out["ref"] for _, total in out["ran"])
