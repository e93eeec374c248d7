"""Scaling of hpsearch studies over simulated Ray nodes: 1, 2, 3 worker nodes of one CPU each.

The same two studies run on each cluster size (``ray.cluster_utils.Cluster``: one raylet per
node on this machine, a head with no CPUs where the driver attaches):

- training-free: the NASWOT strategy scores every architecture of a 48-point space in 'score'
  trials of ``--chunk`` candidates, then trains the best one;
- training-based: a grid of ``--train-trials`` networks, each trained ``--epochs`` epochs.

Reported per study and size: wall time (data placement + Tune), throughput in trials per minute
(and architectures per minute for NASWOT), scaling efficiency ``thr(n) / (n * thr(1))``, and the
data-loading cost per node (the shard actors read the store once per node, in parallel).

Nodes share this machine's cores: with more simulated nodes than free cores the efficiency
measures contention, not Ray (the load average is reported with each row). ``serial s`` is the
part of the wall time that more nodes do not shorten (driver start, data placement, worker
start-up, Tune bookkeeping): wall minus the trials' own seconds divided by the node count.
Data loading: time to start one shard actor per node and read the store into it, and the MB
each node holds. Baseline = 1 node; candidates = 2 and 3 nodes, side by side.

    .venv/bin/python benchmarks/bench_scaling.py [--nodes 1,2,3] [--out results/bench_scaling.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from _outputs import output_paths, work_folder

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURES = {"n_layers": [1, 2, 3], "width": [16, 32, 64, 128], "activation": ["ReLU", "LeakyReLU", "Sigmoid", "Tanh"]}


def _store(work: Path) -> Path:
    """The small generated Al store, made in (and reused from) the run's work folder."""
    from hpsearch.testing.data import small_test_store

    work.mkdir(parents=True, exist_ok=True)
    return small_test_store(work)


def experiments(store: Path, folder: Path, args: argparse.Namespace, tag: str) -> dict[str, dict[str, Any]]:
    common = {
        "dataset": {"store": str(store)}, "resources": {"cpus": 1}, "naswot": {"batch_size": 16},
        "seed": 0, "budget": {"max_concurrent": 8},
    }
    widths = [8 + 4 * i for i in range(args.train_trials)]
    return {
        "training-free": {
            **common, "name": f"free-{tag}", "storage_path": str(folder / f"free-{tag}"),
            "search_space": ARCHITECTURES, "strategy": {"name": "naswot", "options": {"chunk_size": args.chunk}},
            "fixed": {"max_epochs": args.epochs, "batch_size": 64},
        },
        "training-based": {
            **common, "name": f"train-{tag}", "storage_path": str(folder / f"train-{tag}"),
            "search_space": {"width": widths, "n_layers": [1]}, "strategy": {"name": "grid"},
            "fixed": {"max_epochs": args.epochs, "patience": 10 * args.epochs, "batch_size": 64},
        },
    }


def data_loading(store: Path, config: Any) -> dict[str, float]:
    """Place the shards on every node (each actor reads the store once) and time it."""
    import ray

    from hpsearch.tune.runner import resolve_split
    from hpsearch.tune.shards import place_shards, release_shards

    split = resolve_split(config, store)
    t0 = time.perf_counter()
    placement = place_shards(store, split)
    seconds = time.perf_counter() - t0
    infos = ray.get([ray.get_actor(name, namespace="hpsearch").info.remote() for name in placement.actors])
    release_shards(placement.key)
    return {"seconds": seconds, "nodes": len(infos), "mb_per_node": max(i["nbytes"] for i in infos) / 1e6}


def run_size(n_nodes: int, store: Path, folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    import ray
    from ray.cluster_utils import Cluster

    from hpsearch.api import Experiment

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    rows = []
    try:
        for _ in range(n_nodes):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        for kind, spec in experiments(store, folder, args, f"{n_nodes}n").items():
            experiment = Experiment.from_dict(spec)
            loading = data_loading(store, experiment.config)
            t0 = time.perf_counter()
            result = experiment.run()
            wall = time.perf_counter() - t0
            frame = result.trials
            n_candidates = int(frame["n_candidates"].fillna(0).sum()) if "n_candidates" in frame else 0
            rows.append({
                "study": kind, "nodes": n_nodes, "trials": len(frame), "architectures": n_candidates,
                "statuses": result.counts(), "wall_s": wall, "trial_seconds_sum": float(frame["trial_seconds"].sum()),
                "training_seconds_sum": float(frame["training_seconds"].fillna(0).sum()),
                "trials_per_min": 60.0 * len(frame) / wall,
                "architectures_per_min": 60.0 * n_candidates / wall if n_candidates else None,
                "data_loading_s": loading["seconds"], "data_mb_per_node": loading["mb_per_node"],
                # what does not shrink with more nodes: wall minus the trials' own time spread over them
                "serial_s": max(wall - float(frame["trial_seconds"].sum()) / n_nodes, 0.0),
                "load_average": os.getloadavg()[0],
            })
            print(f"  {kind:15s} {n_nodes} node(s): {len(frame)} trials in {wall:.1f} s", flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return rows


def add_efficiency(rows: list[dict[str, Any]]) -> None:
    base = {r["study"]: r["trials_per_min"] for r in rows if r["nodes"] == 1}
    for row in rows:
        one = base.get(row["study"])
        row["speedup"] = row["trials_per_min"] / one if one else None
        row["efficiency"] = row["speedup"] / row["nodes"] if one else None


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'study':15s} {'nodes':>5s} {'trials':>6s} {'wall s':>7s} {'trials/min':>10s} {'arch/min':>8s} "
            f"{'speedup':>7s} {'effic.':>6s} {'serial s':>8s} {'load s':>6s} {'MB/node':>7s} {'loadavg':>7s}")
    lines = [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: (r["study"], r["nodes"])):
        arch = f"{r['architectures_per_min']:.0f}" if r["architectures_per_min"] else "-"
        lines.append(
            f"{r['study']:15s} {r['nodes']:5d} {r['trials']:6d} {r['wall_s']:7.1f} {r['trials_per_min']:10.1f} "
            f"{arch:>8s} {r['speedup']:7.2f} {r['efficiency']:6.2f} {r['serial_s']:8.1f} {r['data_loading_s']:6.2f} "
            f"{r['data_mb_per_node']:7.2f} {r['load_average']:7.1f}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,2,3", help="cluster sizes (worker nodes of one CPU each)")
    parser.add_argument("--train-trials", type=int, default=6, help="networks in the training-based grid")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per training")
    parser.add_argument("--chunk", type=int, default=4, help="architectures per NASWOT 'score' trial")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_scaling.json")
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(Path(args.out), "bench_scaling.json")
    return args


def main() -> None:
    args = parse_args()
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1",
                      RAY_DEDUP_LOGS="0")
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="hpsbench_", dir="/tmp")
    logging.basicConfig(level=logging.WARNING)
    work = work_folder(args.out)  # the store and the studies, next to the JSON
    store = _store(work)
    folder = Path(tempfile.mkdtemp(prefix="studies-", dir=work))
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for n_nodes in (int(n) for n in args.nodes.split(",")):
        print(f"{n_nodes} simulated node(s) of 1 CPU:", flush=True)
        rows += run_size(n_nodes, store, folder, args)
    add_efficiency(rows)
    print(table(rows))
    report = {
        "benchmark": "scaling", "rows": rows, "settings": vars(args) | {"out": str(args.out)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "store": str(store), "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
