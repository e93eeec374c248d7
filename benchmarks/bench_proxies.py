"""Proxy-zoo scoring time: every built-in proxy for 150 architectures x 5 initialisations.

Architectures: 1-3 hidden layers, widths 16-128, four activations (the proxy study's space),
sampled with a seed. Batch: N random grid points of the real Be2 SNAP descriptors (91 features)
and their LDOS, both standardised per feature (min-max for the LDOS, as training scales it).
Times the stacked fast path (``score_architectures_proxies``), per proxy group (proxies that
share a forward or backward pass are timed together), in ``--rounds`` rounds (median), and the
one-network-at-a-time reference on a subset for the speed-up. Prints a table and writes JSON.

    .venv/bin/python benchmarks/bench_proxies.py [--n-architectures 150] [--threads 1]
        [--out results/bench_proxies.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from hpsearch.scoring.experiment import ArchitectureSpace, sample_architectures
from hpsearch.scoring.proxies.many import score_architectures_proxies

from _outputs import output_paths

REPO = Path(__file__).resolve().parents[1]
BE2_DIR = Path(os.environ.get("HPSEARCH_BE2_DIR", REPO.parent / "shared" / "data" / "mala-be2"))
SPACE = ArchitectureSpace(depths=(1, 2, 3), widths=(16, 32, 64, 128),
                          activations=("ReLU", "LeakyReLU", "Sigmoid", "Tanh"))


def load_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.load(BE2_DIR / "Be_snapshot0.in.npy")[..., 3:].reshape(-1, 91).astype(np.float64)
    y = np.load(BE2_DIR / "Be_snapshot0.out.npy").reshape(len(x), -1).astype(np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = (y - y.min(axis=0)) / np.where(np.ptp(y, axis=0) > 0, np.ptp(y, axis=0), 1.0)
    rows = np.random.default_rng(seed).choice(len(x), size=n, replace=False)
    return torch.from_numpy(x[rows]), torch.from_numpy(y[rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-architectures", type=int, default=150)
    parser.add_argument("--n-init", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a busy machine 2 threads were 20x slower)")
    parser.add_argument("--reference-architectures", type=int, default=15)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_proxies.json")
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(Path(args.out), "bench_proxies.json")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    x, y = load_batch(args.batch, 0)
    specs = sample_architectures(SPACE, 91, y.shape[1], args.n_architectures, seed=0)
    totals, groups = [], []
    for _ in range(args.rounds):
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        score_architectures_proxies(specs, x, y, n_init=args.n_init, seed=0, seconds=seconds)
        totals.append(time.perf_counter() - start)
        groups.append(seconds)
    subset = specs[: args.reference_architectures]
    start = time.perf_counter()
    score_architectures_proxies(subset, x, y, n_init=args.n_init, seed=0, fast=False)
    reference = (time.perf_counter() - start) * len(specs) / len(subset)
    median = statistics.median(totals)
    per_group = {k: statistics.median(g.get(k, 0.0) for g in groups) for k in groups[0]}
    print(f"{len(specs)} architectures x {args.n_init} initialisations, batch {args.batch}, "
          f"{args.threads} torch threads, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print("| proxy group | seconds (median of %d) |" % args.rounds)
    print("|---|---|")
    for key, value in per_group.items():
        print(f"| {key} | {value:.3f} |")
    print(f"| **total (stacked fast path)** | **{median:.3f}** |")
    print(f"| one network at a time (extrapolated from {len(subset)}) | {reference:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "n_architectures": len(specs), "n_init": args.n_init, "batch": args.batch, "threads": args.threads,
        "rounds_seconds": totals, "median_seconds": median, "per_group_seconds": per_group,
        "reference_seconds_extrapolated": reference, "machine": platform.platform(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
