"""Streamed training data against the in-memory path, on a Ray whose object store is small.

Ray is started in this process with ``--object-store-mb`` of object-store memory (default 200).

1. **Study on a store larger than the object store.** The Be2 DFT store is enlarged
   synthetically (periodic supercells, ``hpsearch data enlarge``) to at least 3x the object store;
   a grid study with ``dataset.memory_budget_gb`` (default 0.5) runs to the end. Reported: the
   data path chosen, split size, each Ray worker's peak resident memory (sampled from /proc
   every 0.2 s; the whole process: Python, torch, Ray and data), and whether it stayed under
   the budget.
2. **Throughput side by side.** On a smaller enlargement that fits both ways, one Ray task (1 CPU)
   trains the same network with the same seed on the split held in memory (replica in the
   object store) and streamed from the stream actor, interleaved ``--rounds`` times; medians of
   training points per second (validation passes included). Target: streamed >= 50 %.

    .venv/bin/python benchmarks/bench_streaming.py [--object-store-mb 200] [--out results/bench_streaming.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MB = 1e6


def _stores(folder: Path, big_tile: tuple[int, int, int], small_tile: tuple[int, int, int]) -> tuple[Path, Path]:
    from hpsearch.data.enlarge import enlarge_store
    from hpsearch.testing.data import import_be2

    be2 = import_be2(folder)
    paths = []
    for tile in (big_tile, small_tile):
        path = folder / f"be2-x{'x'.join(map(str, tile))}.h5"
        if not path.exists():
            t0 = time.perf_counter()
            enlarge_store(be2, path, tile=tile)
            print(f"  enlarged Be2 {tile}: {path.stat().st_size / MB:.0f} MB on disk in {time.perf_counter() - t0:.1f} s",
                  flush=True)
        paths.append(path)
    return paths[0], paths[1]


class RssSampler:
    """Peak resident memory of every process under this session's raylet, sampled from /proc."""

    def __init__(self, period_s: float = 0.2) -> None:
        import ray

        node = ray._private.worker._global_node
        from ray._private import ray_constants

        self.raylet = int(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
        self.period_s = period_s
        self.peaks: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _children(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == self.raylet:
                        found.append(int(entry.name))
                except (OSError, ValueError, IndexError):
                    continue
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self._children():
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                               if line.startswith("VmRSS:")) * 1024 / MB
                except (OSError, StopIteration, ValueError):
                    continue
                if "ray::" in title and rss > self.peaks.get(pid, ("", 0.0))[1]:
                    self.peaks[pid] = (title, rss)
            self._stop.wait(self.period_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def study_part(store: Path, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from hpsearch.config.experiment import parse_experiment
    from hpsearch.data import open_store, split_snapshots
    from hpsearch.tune.runner import run_study
    from hpsearch.tune.streaming import split_nbytes

    with open_store(store) as opened:
        split_bytes = split_nbytes(store, split_snapshots(opened.names, 2, 1, 1))
    config = parse_experiment({
        "name": "bench-streamed", "storage_path": str(folder / "study"),
        "dataset": {"store": str(store), "memory_budget_gb": args.budget_gb, "chunk_points": args.chunk_points},
        "search_space": {"width": [16, 32], "n_layers": [1]}, "strategy": {"name": "grid"},
        "fixed": {"max_epochs": args.study_epochs, "patience": 100, "batch_size": args.batch_size},
        "budget": {"max_concurrent": 2}, "resources": {"cpus": 1}, "naswot": {"batch_size": 16},
        "tracking": {"enabled": False},
    })
    t0 = time.perf_counter()
    with RssSampler() as sampler:
        result = run_study(config)
    wall = time.perf_counter() - t0
    frame = result.trials
    trials = {pid: rss for pid, (title, rss) in sampler.peaks.items() if "ImplicitFunc" in title or "run_trial" in title}
    actors = {pid: rss for pid, (title, rss) in sampler.peaks.items() if "StreamActor" in title}
    return {
        "split_mb": split_bytes / MB, "object_store_mb": args.object_store_mb, "budget_mb": args.budget_gb * 1e3,
        "ratio_split_to_object_store": split_bytes / (args.object_store_mb * 1024 * 1024),
        "trials": len(frame), "completed": int((frame["status"] == "completed").sum()), "wall_s": wall,
        "peak_rss_trial_workers_mb": sorted(trials.values()), "peak_rss_stream_actors_mb": sorted(actors.values()),
        "all_workers_peak_mb": {f"{pid} {title[:40]}": rss for pid, (title, rss) in sampler.peaks.items()},
        "under_budget": bool(trials) and max(trials.values()) < args.budget_gb * 1e3,
    }


def _measure(store: str, split: Any, placement: Any, width: int, batch: int, epochs: int) -> dict[str, Any]:
    import torch

    from hpsearch.model import NetworkSpec, TrainingSettings, train
    from hpsearch.tune.shards import get_training_data

    torch.set_num_threads(1)
    data = get_training_data(store, split, placement, device="cpu")
    spec = NetworkSpec(n_in=data.n_features, n_out=data.n_energies, widths=(width, width))
    result = train(spec, TrainingSettings(max_epochs=epochs, batch_size=batch, patience=None, seed=1), data)
    return {"points_per_second": result.points_per_second, "seconds": result.seconds, "kind": type(data).__name__,
            "last_train_loss": result.history[-1]["train_loss"]}


def throughput_part(store: Path, args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from hpsearch.data import open_store, split_snapshots
    from hpsearch.tune.shards import place_shards, release_shards

    with open_store(store) as opened:
        split = split_snapshots(opened.names, 2, 1, 1)
    memory = place_shards(store, split, memory_budget_gb=100.0)
    streamed = place_shards(store, split, memory_budget_gb=1e-6, chunk_points=args.chunk_points)
    measure = ray.remote(num_cpus=1)(_measure)
    rows: dict[str, list[dict[str, Any]]] = {"in-memory": [], "streamed": []}
    for round_ in range(args.rounds):
        for label, placement in (("in-memory", memory), ("streamed", streamed)):
            row = ray.get(measure.remote(str(store), split, placement, args.width, args.batch_size, args.epochs))
            rows[label].append(row)
            print(f"  round {round_ + 1} {label:9s}: {row['points_per_second']:,.0f} points/s ({row['kind']})", flush=True)
    release_shards(memory.key)
    median = {label: statistics.median(r["points_per_second"] for r in runs) for label, runs in rows.items()}
    return {"runs": rows, "median_points_per_second": median, "ratio": median["streamed"] / median["in-memory"],
            "split_mb": memory.nbytes and sum(memory.nbytes.values()) / MB}


def table(study: dict[str, Any], speed: dict[str, Any]) -> str:
    peak = max(study["peak_rss_trial_workers_mb"], default=float("nan"))
    lines = [
        "| measurement | value |", "|---|---|",
        f"| object store given to Ray | {study['object_store_mb']} MiB |",
        f"| study split (float32, train+val+test) | {study['split_mb']:.0f} MB ({study['ratio_split_to_object_store']:.1f}x the object store) |",
        f"| study | {study['completed']}/{study['trials']} trials completed in {study['wall_s']:.0f} s |",
        f"| peak RSS per trial worker (whole process) | {peak:.0f} MB (budget {study['budget_mb']:.0f} MB: "
        f"{'under' if study['under_budget'] else 'OVER'}) |",
        f"| peak RSS of the stream actor | {max(study['peak_rss_stream_actors_mb'], default=float('nan')):.0f} MB |",
        f"| in-memory training (median) | {speed['median_points_per_second']['in-memory']:,.0f} points/s |",
        f"| streamed training (median) | {speed['median_points_per_second']['streamed']:,.0f} points/s |",
        f"| streamed / in-memory | {100 * speed['ratio']:.0f} % (target >= 50 %) |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--object-store-mb", type=int, default=200)
    parser.add_argument("--budget-gb", type=float, default=0.5)
    parser.add_argument("--big-tile", default="4,4,3", help="Be2 supercell of the study store")
    parser.add_argument("--small-tile", default="2,2,2", help="Be2 supercell of the throughput store")
    parser.add_argument("--chunk-points", type=int, default=1 << 16)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--study-epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "hpsearch-bench-streaming")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_streaming.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("hpsearch.tune.streaming").setLevel(logging.INFO)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["HPSEARCH_TRACKING"] = "off"
    import ray

    args.data.mkdir(parents=True, exist_ok=True)
    print("stores:", flush=True)
    big, small = _stores(args.data, tuple(int(v) for v in args.big_tile.split(",")),  # type: ignore[arg-type]
                         tuple(int(v) for v in args.small_tile.split(",")))  # type: ignore[arg-type]
    ray.init(num_cpus=2, object_store_memory=args.object_store_mb * 1024 * 1024, include_dashboard=False,
             _temp_dir=tempfile.mkdtemp(prefix="hpsbs_", dir="/tmp"), configure_logging=False, log_to_driver=False)
    try:
        print("throughput, side by side:", flush=True)
        speed = throughput_part(small, args)
        print("study on the large store:", flush=True)
        study = study_part(big, args.data, args)
    finally:
        ray.shutdown()
    print(table(study, speed))
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "args": vars(args),
              "study": study, "throughput": speed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
