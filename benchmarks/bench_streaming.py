"""Streamed training data against the in-memory path, on a Ray whose object store is small.

Ray is started in this process with ``--object-store-mb`` of object-store memory (default 200).

1. **Study on a store larger than the object store.** The Be2 DFT store is enlarged
   synthetically (periodic supercells, ``hpsearch data enlarge``) to at least 3x the object store;
   a grid study with ``dataset.memory_budget_gb`` (default 1.0) runs to the end. Reported: the
   data path chosen, split size, each Ray worker's peak resident memory (sampled from /proc
   every 0.2 s; the whole process: Python, torch, Ray and data), and whether it stayed under
   the budget.
2. **Throughput side by side.** On a smaller enlargement that fits both ways, one Ray task (1 CPU)
   trains the same network with the same seed on the split held in memory (replica in the
   object store) and streamed from the stream actor, interleaved ``--rounds`` times; medians of
   training points per second (validation passes included). Target: streamed >= 50 %.

The enlarged stores and the study folder go under the output (``--out``: a folder, or a .json file
whose folder holds them, in ``<stem>-work/``); ``--store`` (default: the Be2 DFT data, imported
there) is only read.

    .venv/bin/python benchmarks/bench_streaming.py [--object-store-mb 200] [--store STORE.h5]
        [--out results/bench_streaming.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _outputs import output_paths, work_folder

REPO = Path(__file__).resolve().parents[1]
MB = 1e6
STUDY_SPLIT = (3, 2, 1)  # snapshots for training, validation, test


def _stores(source: Path | None, work: Path, big_tile: tuple[int, int, int], small_tile: tuple[int, int, int],
            big_copies: int) -> tuple[Path, Path]:
    """The two enlarged stores, written into `work` (reused when there) from `source` (read only;
    None: the Be2 DFT data imported into `work`)."""
    from hpsearch.data.enlarge import enlarge_store
    from hpsearch.testing.data import import_be2

    base = source if source is not None else import_be2(work)
    paths = []
    for tile, copies in ((big_tile, big_copies), (small_tile, 1)):
        path = work / f"{base.stem}-x{'x'.join(map(str, tile))}-c{copies}.h5"
        if not path.exists():
            t0 = time.perf_counter()
            enlarge_store(base, path, tile=tile, copies=copies)
            print(f"  enlarged {base.name} {tile}: {path.stat().st_size / MB:.0f} MB on disk in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        paths.append(path)
    return paths[0], paths[1]


class RssSampler:
    """Peak resident memory of every process under this session's raylet, sampled from /proc; with
    the part of it that is shared memory (object-store pages the process has mapped)."""

    def __init__(self, period_s: float = 0.2) -> None:
        import ray

        node = ray._private.worker._global_node
        from ray._private import ray_constants

        self.raylet = int(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
        self.period_s = period_s
        self.peaks: dict[int, tuple[str, float, float]] = {}  # pid -> (title, RSS MB, of it shared MB)
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
                    fields = {line.split(":")[0]: int(line.split()[1]) * 1024 / MB
                              for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                              if line.startswith(("VmRSS:", "RssShmem:"))}
                except (OSError, ValueError, IndexError):
                    continue
                rss = fields.get("VmRSS", 0.0)
                if "ray::" in title and rss > self.peaks.get(pid, ("", 0.0, 0.0))[1]:
                    self.peaks[pid] = (title, rss, fields.get("RssShmem", 0.0))
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
        split_bytes = split_nbytes(store, split_snapshots(opened.names, *STUDY_SPLIT))
    config = parse_experiment({
        "name": "bench-streamed", "storage_path": tempfile.mkdtemp(prefix="study-", dir=folder),
        "dataset": {"store": str(store), "memory_budget_gb": args.budget_gb, "chunk_points": args.chunk_points,
                    "split": dict(zip(("train", "validation", "test"), STUDY_SPLIT))},
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
    trials = {pid: peak for pid, peak in sampler.peaks.items() if "ImplicitFunc" in peak[0] or "run_trial" in peak[0]}
    actors = {pid: peak for pid, peak in sampler.peaks.items() if "StreamActor" in peak[0]}
    return {
        "split_mb": split_bytes / MB, "object_store_mb": args.object_store_mb, "budget_mb": args.budget_gb * 1e3,
        "ratio_split_to_object_store": split_bytes / (args.object_store_mb * 1024 * 1024),
        "trials": len(frame), "completed": int((frame["status"] == "completed").sum()), "wall_s": wall,
        "peak_rss_trial_workers_mb": sorted(p[1] for p in trials.values()),
        "shared_of_peak_trial_workers_mb": [p[2] for p in sorted(trials.values(), key=lambda p: p[1])],
        "peak_rss_stream_actors_mb": sorted(p[1] for p in actors.values()),
        "all_workers_peak_mb": {f"{pid} {p[0][:40]}": {"rss": p[1], "shared": p[2]} for pid, p in sampler.peaks.items()},
        "under_budget": bool(trials) and max(p[1] for p in trials.values()) < args.budget_gb * 1e3,
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


def _read_only(store: str, split: Any, placement: Any) -> dict[str, Any]:
    """Stream every training chunk once without training: the readers' rate (MB/s of float32)."""
    import torch

    from hpsearch.model.sources import chunk_ranges
    from hpsearch.model.streaming import stream_chunks
    from hpsearch.tune.shards import get_training_data

    data = get_training_data(store, split, placement, device="cpu")
    t0 = time.perf_counter()
    nbytes = 0
    for x, y in stream_chunks(data.reader, data.train_names, chunk_ranges(data.n_train_points, data.chunk_points),
                              torch.device("cpu"), data.prefetch):
        nbytes += x.numel() * 4 + y.numel() * 4
    seconds = time.perf_counter() - t0
    return {"mb_per_second": nbytes / MB / seconds, "points_per_second": data.n_train_points / seconds}


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
    reads = [ray.get(ray.remote(num_cpus=1)(_read_only).remote(str(store), split, streamed)) for _ in range(args.rounds)]
    print(f"  reading only (streamed): {statistics.median(r['mb_per_second'] for r in reads):,.0f} MB/s", flush=True)
    release_shards(memory.key)
    median = {label: statistics.median(r["points_per_second"] for r in runs) for label, runs in rows.items()}
    return {"runs": rows, "median_points_per_second": median, "ratio": median["streamed"] / median["in-memory"],
            "read_only": reads, "read_only_median_mb_per_second": statistics.median(r["mb_per_second"] for r in reads),
            "split_mb": memory.nbytes and sum(memory.nbytes.values()) / MB}


def table(study: dict[str, Any], speed: dict[str, Any]) -> str:
    peak = max(study["peak_rss_trial_workers_mb"], default=float("nan"))
    lines = [
        "| measurement | value |", "|---|---|",
        f"| object store given to Ray | {study['object_store_mb']} MiB |",
        f"| study split (float32, train+val+test) | {study['split_mb']:.0f} MB ({study['ratio_split_to_object_store']:.1f}x the object store) |",
        f"| study | {study['completed']}/{study['trials']} trials completed in {study['wall_s']:.0f} s |",
        f"| peak RSS per trial worker (whole process) | {peak:.0f} MB, of it {max(study['shared_of_peak_trial_workers_mb'], default=float('nan')):.0f} MB "
        f"shared object-store pages (budget {study['budget_mb']:.0f} MB: {'under' if study['under_budget'] else 'OVER'}) |",
        f"| peak RSS of the stream actor | {max(study['peak_rss_stream_actors_mb'], default=float('nan')):.0f} MB |",
        f"| in-memory training (median) | {speed['median_points_per_second']['in-memory']:,.0f} points/s |",
        f"| streamed training (median) | {speed['median_points_per_second']['streamed']:,.0f} points/s |",
        f"| streamed / in-memory | {100 * speed['ratio']:.0f} % (target >= 50 %) |",
        f"| streaming alone, no training (median) | {speed['read_only_median_mb_per_second']:,.0f} MB/s |",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _ray(args: argparse.Namespace) -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, object_store_memory=args.object_store_mb * 1024 * 1024, include_dashboard=False,
             _temp_dir=tempfile.mkdtemp(prefix="hpsbs_", dir="/tmp"), configure_logging=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, with the output checked before any work: ``args.json`` (the report),
    ``args.work`` (stores and study), ``args.store`` (the input, read only)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--object-store-mb", type=int, default=200)
    parser.add_argument("--budget-gb", type=float, default=1.0)
    parser.add_argument("--big-tile", default="4,4,4", help="Be2 supercell of the study store")
    parser.add_argument("--big-copies", type=int, default=2, help="translated copies in the study store")
    parser.add_argument("--small-tile", default="2,2,2", help="Be2 supercell of the throughput store")
    parser.add_argument("--chunk-points", type=int, default=1 << 15)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--study-epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", type=Path, default=None,
                        help="hpsearch store to enlarge, only read (default: the Be2 DFT data, imported under --out)")
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)  # the old scratch folder
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_streaming.json",
                        help="a folder, or a .json file whose folder holds the stores and the study")
    args = parser.parse_args(argv)
    if args.data is not None:
        parser.error(f"--data {args.data}: this benchmark no longer writes into a data folder; give the store to "
                     "enlarge with --store FILE (only read) and where everything goes with --out")
    if args.store is not None and not args.store.is_file():
        parser.error(f"--store {args.store} is not a file: give an hpsearch store (.h5)")
    folder, args.json = output_paths(args.out, "bench_streaming.json")
    args.work = work_folder(args.json)
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("hpsearch.tune.streaming").setLevel(logging.INFO)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["HPSEARCH_TRACKING"] = "off"

    args.work.mkdir(parents=True, exist_ok=True)
    print(f"stores (in {args.work}):", flush=True)
    big, small = _stores(args.store, args.work, tuple(int(v) for v in args.big_tile.split(",")),  # type: ignore[arg-type]
                         tuple(int(v) for v in args.small_tile.split(",")), args.big_copies)  # type: ignore[arg-type]
    # one Ray session per part: workers of the first part would keep their cached data
    print("throughput, side by side:", flush=True)
    with _ray(args):
        speed = throughput_part(small, args)
    print("study on the large store:", flush=True)
    with _ray(args):
        study = study_part(big, args.work, args)
    print(table(study, speed))
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "args": vars(args),
              "study": study, "throughput": speed}
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
