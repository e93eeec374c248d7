"""Training throughput of the trial path against a MALA-like baseline, in one run.

Baseline (as MALA trains): every trial reads the snapshot arrays from disk, scales copies of them,
wraps them in a ``TensorDataset`` and iterates a standard ``DataLoader`` (shuffle, default
collate: one ``__getitem__`` per sample), validating through a ``DataLoader`` too.
Trial path: ``hpsearch.tune.shards.get_training_data`` (the node's actor read the store once;
arrays are mapped zero-copy from Ray's object store) and ``hpsearch.model.train`` (seeded
permutation indexing, on-the-fly scaling, chunked validation under ``inference_mode``).

Same store, split, network (Adam, lr 1e-3) and epochs; every trial runs as a Ray task with the
whole machine (tasks never overlap). Seconds per epoch = training pass + validation pass (median
of epochs 2..E); points/s = training points per epoch / seconds per epoch. Time to first batch
(TTFB) = from the trial function's start to its first optimiser step done, for the first trial
(the trial path: starting the node's actor, which reads the store) and a later one: in a reused
worker process (Tune's ``reuse_actors``) and in a fresh worker process (measured after that
process's one-time imports, reported beside it). Rows at both mini-batch sizes separate the
effect of the batch size from that of the data path.

    .venv/bin/python benchmarks/bench_training.py [--store PATH] [--epochs 4] [--out results/bench_training.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from _outputs import output_paths

REPO = Path(__file__).resolve().parents[1]
BE2_DIR = Path(os.environ.get("HPSEARCH_BE2_DIR", REPO.parent / "shared" / "data" / "mala-be2"))


def resolve_store(arg: str | None, workdir: Path) -> tuple[Path, str]:
    """--store, else the generator's default store when it exists, else Be2 imported from MALA files."""
    from hpsearch.data.generate import default_store_path
    from hpsearch.data.mala import import_mala
    from hpsearch.physics import EnergyGrid

    if arg:
        return Path(arg), f"given store {arg}"
    default = default_store_path()
    if default.exists():
        return default, f"generated default store {default}"
    path = import_mala(BE2_DIR, workdir / "be2.h5", EnergyGrid(-5.0, 2.5, 11))
    return path, f"real Be2 data ({BE2_DIR}) imported into {path}"


def _epoch_stats(ends: list[float], n_points: int) -> dict[str, float]:
    durations = [b - a for a, b in zip(ends, ends[1:])]  # epochs 2..E
    s_per_epoch = statistics.median(durations)
    return {"s_per_epoch": s_per_epoch, "points_per_s": n_points / s_per_epoch}


def baseline_trial(store: str, split: Any, spec: Any, batch: int, epochs: int, threads: int) -> dict[str, Any]:
    """MALA-like: read from disk, scale copies, TensorDataset + DataLoader, per-batch collate."""
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    from hpsearch.data.store import open_store
    from hpsearch.model import Scalers, build_network

    with open_store(store) as st:  # every trial reads the arrays again
        tr = [st.read_arrays(n) for n in split.train]
        va = [st.read_arrays(n) for n in split.validation]
    def flat(a: Any) -> torch.Tensor:
        return torch.from_numpy(a.reshape(-1, a.shape[-1]))

    x, y = torch.cat([flat(a) for a, _ in tr]), torch.cat([flat(b) for _, b in tr])
    xv, yv = torch.cat([flat(a) for a, _ in va]), torch.cat([flat(b) for _, b in va])
    sc = Scalers().fit(x, y)
    train_set = torch.utils.data.TensorDataset(sc.transform_descriptors(x), sc.transform_ldos(y))
    val_set = torch.utils.data.TensorDataset(sc.transform_descriptors(xv), sc.transform_ldos(yv))
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=batch)
    model = build_network(spec, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ttfb, ends = None, [time.perf_counter()]
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            if ttfb is None:
                ttfb = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            val = sum(torch.nn.functional.mse_loss(model(xb), yb, reduction="sum").item() for xb, yb in val_loader)
        ends.append(time.perf_counter())
    return {"ttfb_s": ttfb, "pid": os.getpid(), "n_train": len(x), "val_loss": val / yv.numel(),
            **_epoch_stats(ends[1:], len(x))}


def shard_trial(store: str, split: Any, spec: Any, batch: int, epochs: int, threads: int,
                clear: bool) -> dict[str, Any]:
    """The trial path: data from the node's actor (or this worker's cache), then ``train``.

    ``imports_s``: importing what a new worker process lacks (hpsearch is imported already when
    the arguments are unpickled; torch's first optimizer imports torch._dynamo, ~1 s once).
    """
    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    importlib.import_module("torch._dynamo")  # once per process: every torch optimizer imports it

    from hpsearch.model import TrainingSettings, train
    from hpsearch.tune import shards

    imports_s = time.perf_counter() - t_start
    if clear:
        shards.clear_cache()
    t0 = time.perf_counter()
    data = shards.get_training_data(store, split)
    fetch_s = time.perf_counter() - t0
    ends: list[float] = []

    def on_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
        ends.append(time.perf_counter())

    settings = TrainingSettings(batch_size=batch, max_epochs=epochs, patience=None, learning_rate=1e-3)
    result = train(spec, settings, data, on_epoch=on_epoch)
    return {"ttfb_s": fetch_s + result.first_batch_seconds, "fetch_s": fetch_s, "imports_s": imports_s,
            "first_step_s": result.first_batch_seconds, "pid": os.getpid(), "n_train": int(data.x_train.shape[0]),
            "val_loss": result.history[-1]["val_loss"], "status": result.status, **_epoch_stats(ends, len(data.x_train))}


def run_all(store: Path, args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from hpsearch.data.splits import split_snapshots
    from hpsearch.data.store import open_store
    from hpsearch.model import NetworkSpec
    from hpsearch.tune import shards

    with open_store(store) as st:
        names = st.names
        n_f, n_e = st.read_arrays(names[0])[0].shape[-1], st.metadata(names[0]).energy_grid.n
    split = split_snapshots(names, len(names) - 2, 1, 1)
    spec = NetworkSpec(n_in=n_f, n_out=n_e, widths=tuple(args.widths), activations="LeakyReLU")
    # num_cpus=2 on a 2-CPU Ray: the trials run one after another, each with the whole machine
    base = ray.remote(num_cpus=2)(baseline_trial)
    trial = ray.remote(num_cpus=2)(shard_trial)
    common = (str(store), split, spec, args.epochs, args.threads)
    out: dict[str, Any] = {"split": split.to_dict(), "spec": spec.model_dump(mode="json")}
    out["baseline_first"] = ray.get(base.remote(*common[:3], args.baseline_batch, *common[3:]))
    out["trial_first"] = ray.get(trial.remote(*common[:3], args.batch, *common[3:], False))  # starts the actor
    rounds = []
    for _ in range(args.rounds):  # interleaved, so that the machine's load hits every path alike
        rounds.append({
            "baseline_small": ray.get(base.remote(*common[:3], args.baseline_batch, *common[3:])),
            "trial_large": ray.get(trial.remote(*common[:3], args.batch, *common[3:], False)),
            "baseline_large": ray.get(base.remote(*common[:3], args.batch, *common[3:])),
            "trial_small": ray.get(trial.remote(*common[:3], args.baseline_batch, *common[3:], False)),
        })
    out["rounds"] = rounds
    # a distinct runtime env forces a new worker process (nothing imported, nothing cached)
    fresh = trial.options(runtime_env={"env_vars": {"HPSEARCH_BENCH_FRESH": "1"}})
    out["trial_fresh"] = ray.get(fresh.remote(*common[:3], args.batch, *common[3:], True))
    out["actor"] = ray.get(shards.node_actor(store, split).info.remote())
    return out


def _median(rounds: list[dict[str, Any]], path: str, key: str) -> float:
    return statistics.median(r[path][key] for r in rounds)


def _ratio(rounds: list[dict[str, Any]], fast: str, slow: str) -> float:
    """Median over rounds of the paired points/s ratio."""
    return statistics.median(r[fast]["points_per_s"] / r[slow]["points_per_s"] for r in rounds)


def table(r: dict[str, Any], args: argparse.Namespace) -> tuple[str, dict[str, float]]:
    rounds, first, fresh = r["rounds"], r["trial_first"], r["trial_fresh"]
    ttfb2_base = f"{_median(rounds, 'baseline_small', 'ttfb_s'):.3f}"
    ttfb2_trial = f"{_median(rounds, 'trial_large', 'ttfb_s'):.3f} / {fresh['ttfb_s']:.3f}"
    rows = [
        ("baseline: disk + DataLoader", args.baseline_batch, "baseline_small", f"{r['baseline_first']['ttfb_s']:.3f}",
         ttfb2_base),
        ("baseline: disk + DataLoader", args.batch, "baseline_large", "", ""),
        ("trial path: actor + indexing", args.baseline_batch, "trial_small", "", ""),
        ("trial path: actor + indexing", args.batch, "trial_large", f"{first['ttfb_s']:.3f}", ttfb2_trial),
    ]
    lines = [f"{'path':<30} {'batch':>6} {'points/s':>11} {'s/epoch':>8} {'TTFB 1st':>9} {'TTFB 2nd':>15}"]
    for name, batch, path, t1, t2 in rows:
        lines.append(f"{name:<30} {batch:>6} {_median(rounds, path, 'points_per_s'):>11,.0f} "
                     f"{_median(rounds, path, 's_per_epoch'):>8.3f} {t1:>9} {t2:>15}")
    speed = {
        "trial_large_vs_baseline_small": _ratio(rounds, "trial_large", "baseline_small"),
        "same_batch_small": _ratio(rounds, "trial_small", "baseline_small"),
        "same_batch_large": _ratio(rounds, "trial_large", "baseline_large"),
    }
    lines.append(f"medians of {len(rounds)} interleaved rounds. Speed-up (median of paired ratios), trial path "
                 f"(batch {args.batch}) vs baseline (batch {args.baseline_batch}): "
                 f"{speed['trial_large_vs_baseline_small']:.1f}x; at equal batch: {speed['same_batch_small']:.1f}x "
                 f"({args.baseline_batch}), {speed['same_batch_large']:.1f}x ({args.batch})")
    lines.append(f"TTFB 2nd (trial path) = reused worker / fresh worker process (pid {fresh['pid']} vs {first['pid']}): "
                 f"data {fresh['fetch_s']:.3f} s + first step {fresh['first_step_s']:.3f} s, after its one-time "
                 f"imports ({fresh['imports_s']:.2f} s: torch._dynamo, imported by torch's first optimizer)")
    return "\n".join(lines), speed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="snapshot store (default: generated default store, else Be2)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial (>= 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions of every path")
    parser.add_argument("--batch", type=int, default=1024, help="trial path mini-batch")
    parser.add_argument("--baseline-batch", type=int, default=64, help="MALA-like mini-batch")
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per trial (1: on a shared 2-core machine 2 threads collapse under load)")
    parser.add_argument("--out", default=str(REPO / "results" / "bench_training.json"))
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(Path(args.out), "bench_training.json")
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from hpsearch.tune import shards

    with tempfile.TemporaryDirectory(prefix="hpsbench_", dir="/tmp") as tmp:
        store, label = resolve_store(args.store, Path(tmp))
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=tmp, log_to_driver=False, configure_logging=False)
        try:
            results = run_all(store, args)
        finally:
            shards.release_shards()
            ray.shutdown()
    text, speed = table(results, args)
    print(f"store: {label}; {results['trial_first']['n_train']:,} training points, network {args.widths}, "
          f"{args.epochs} epochs, {args.threads} torch threads, {platform.processor() or platform.machine()}")
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"store": label, "args": vars(args), "speedup": speed, "results": results,
              "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "platform": platform.platform()}}
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"written {out}")


if __name__ == "__main__":
    main()
