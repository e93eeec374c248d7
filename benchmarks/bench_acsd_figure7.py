"""Does the ACSD predict the network's error? The paper's figure 7 on a store (default: the embedded Be store).

For each cutoff radius (twojmax fixed, 10 as the paper's J_max = 5): the ACSD from the scan
(descriptors only at the sampled points), then SNAP descriptors on the full grid of every
snapshot, and a small fixed MLP trained with several seeds; its band-energy error on the test
snapshots in meV/atom (mean +- std over seeds) and the test LDOS RMSE. Prints the table, the rank
correlations (Kendall tau, Spearman) of the ACSD with both errors, and of the mutual information
of descriptors and LDOS (negated: larger is better) with the band-energy error, whether they pick
the same cutoff; writes JSON and a figure-7-like PNG next to it. MLP 91-64-64-64 (LeakyReLU), Adam 1e-3,
batch 256, <= 100 epochs (patience 10); split of the first N snapshots: N-3 train, 1 validation,
2 test. About 4-8 minutes on 2 shared cores for the default 5 snapshots.

    .venv/bin/python benchmarks/bench_acsd_figure7.py [--store default|small|PATH] [--quick]
        [--rcut 3.0,3.75,4.67637,5.5,6.5] [--snapshots 5] [--seeds 3] [--out results/x.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _outputs import output_paths

REPO = Path(__file__).resolve().parents[1]
RCUTS = (3.0, 3.75, 4.67637, 5.5, 6.5)
QUICK_RCUTS = (3.0, 4.67637, 6.0)


def _grid_task(args: tuple[Any, tuple[int, int, int], float, int]) -> tuple[np.ndarray, float]:
    from hpsearch.descriptors import snap_grid

    atoms, shape, rcut, twojmax = args
    start = time.perf_counter()
    return snap_grid(atoms, shape, rcut=rcut, twojmax=twojmax), time.perf_counter() - start


def descriptors_per_rcut(store_path: Path, names: list[str], rcuts: list[float], twojmax: int,
                         workers: int) -> tuple[dict[float, dict[str, np.ndarray]], dict[float, float]]:
    """Full-grid descriptors of every snapshot for every rcut; the store's own where they match."""
    from hpsearch.data import open_store

    found: dict[float, dict[str, np.ndarray]] = {r: {} for r in rcuts}
    core_seconds = {r: 0.0 for r in rcuts}
    jobs, keys = [], []
    with open_store(store_path) as store:
        for name in names:
            meta = store.metadata(name)
            stored = meta.descriptor_settings
            for rcut in rcuts:
                if math.isclose(stored.get("rcut", -1), rcut) and stored.get("twojmax") == twojmax:
                    found[rcut][name] = store.read_arrays(name)[0]
                else:
                    jobs.append((meta.to_atoms(), meta.grid_shape, rcut, twojmax))
                    keys.append((rcut, name))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for (rcut, name), (grid, seconds) in zip(keys, pool.map(_grid_task, jobs)):
            found[rcut][name] = grid
            core_seconds[rcut] += seconds
    return found, core_seconds


def training_data(store_path: Path, descriptors: dict[str, np.ndarray], split: dict[str, list[str]]) -> Any:
    """TrainingData from the given descriptor grids and the store's LDOS (no store copy)."""
    from hpsearch.data import open_store
    from hpsearch.model import TestSnapshot, TrainingData
    from hpsearch.model.data import as_tensor, snapshot_metadata

    with open_store(store_path) as store:
        ldos = {n: store.read_arrays(n)[1] for n in descriptors}
        meta = {n: snapshot_metadata(store, n) for n in split["test"]}

    def points(names: list[str]) -> tuple[Any, Any]:
        x = np.concatenate([descriptors[n].reshape(-1, descriptors[n].shape[-1]) for n in names])
        y = np.concatenate([ldos[n].reshape(-1, ldos[n].shape[-1]) for n in names])
        return as_tensor(x), as_tensor(y)

    test = []
    for name in split["test"]:
        x, y = points([name])
        test.append(TestSnapshot(descriptors=x, ldos=y, **meta[name]))
    return TrainingData(*points(split["train"]), *points(split["validation"]), test,
                        tuple(split["train"]), tuple(split["validation"]), str(store_path))


def acsd_per_rcut(store_path: Path, names: list[str], rcuts: list[float], twojmax: int,
                  n_points: int, seed: int) -> tuple[list[Any], float]:
    from hpsearch.descriptors.scan import run_scan, scan_grid
    from hpsearch.data.descriptor_scan import load_sampled_snapshots

    start = time.perf_counter()
    snapshots, _ = load_sampled_snapshots(store_path, tuple(names), n_points, seed)
    results = run_scan(snapshots, scan_grid(rcuts, [twojmax]), seed=seed, parallel="serial")
    return results, time.perf_counter() - start


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'rcut (Å)':>9}{'ACSD':>10}{'± std':>9}{'MI nats':>9}{'error meV/atom':>17}{'± std':>8}"
              f"{'per seed':>24}{'LDOS RMSE':>11}{'± std':>9}{'desc core-s':>13}{'train s':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        seeds = " ".join(f"{v:.2f}" for v in r["errors_mev_per_atom"])
        print(f"{r['rcut']:>9.4g}{r['acsd']:>10.5f}{r['acsd_std']:>9.5f}{r['mi_nats']:>9.3f}"
              f"{r['error_mean_mev_per_atom']:>17.2f}"
              f"{r['error_std_mev_per_atom']:>8.2f}{seeds:>24}{r['ldos_rmse_mean']:>11.3e}{r['ldos_rmse_std']:>9.1e}"
              f"{r['descriptor_core_seconds']:>13.1f}"
              f"{r['training_seconds']:>9.1f}")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rcut = [r["rcut"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.errorbar(rcut, [r["error_mean_mev_per_atom"] for r in rows], yerr=[r["error_std_mev_per_atom"] for r in rows],
                color="green", marker="o", capsize=3, label="network error")
    ax.set_xlabel("cutoff radius rcut (Å)")
    ax.set_ylabel("band-energy error (meV/atom)", color="green")
    twin = ax.twinx()
    twin.errorbar(rcut, [r["acsd"] for r in rows], yerr=[r["acsd_std"] for r in rows], color="red", marker="s",
                  capsize=3, label="ACSD")
    twin.set_ylabel("ACSD", color="red")
    ax.set_title("ACSD and network error against rcut (cf. paper fig. 7)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file; the figure goes next to it) is checked before any work."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="default", help="default | small | a store path")
    parser.add_argument("--rcut", default=None, help="comma-separated cutoffs (Angstrom)")
    parser.add_argument("--twojmax", type=int, default=10)
    parser.add_argument("--snapshots", type=int, default=5, help="first N: N-3 train, 1 validation, 2 test")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--n-points", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="processes computing descriptor grids")
    parser.add_argument("--quick", action="store_true", help="3 cutoffs, 2 seeds, 15 epochs")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_acsd_figure7.json")
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(args.out, "bench_acsd_figure7.json")
    return args


def train_per_rcut(store_path: Path, scan: list[Any], grids: dict[float, dict[str, np.ndarray]],
                   split: dict[str, list[str]], n_seeds: int, max_epochs: int) -> tuple[list[dict[str, Any]], Any, Any]:
    """The fixed MLP trained with each seed on each cutoff's descriptors; one row per cutoff."""
    from hpsearch.model import NetworkSpec, TrainingSettings, retrain

    settings = TrainingSettings(max_epochs=max_epochs, patience=10, batch_size=256, learning_rate=1e-3)
    rows, spec = [], None
    for result in scan:
        data = training_data(store_path, grids[result.rcut], split)
        spec = NetworkSpec(n_in=data.n_features, n_out=data.n_energies, widths=(64, 64), activations="LeakyReLU")
        start = time.perf_counter()
        errors = retrain(spec, settings, data, seeds=list(range(n_seeds)))
        rmse = [e.mean_ldos_rmse for e in errors.evaluations if e is not None]
        rows.append({
            "rcut": result.rcut, "acsd": result.acsd, "acsd_std": result.std, "mi_nats": result.mi,
            "error_mean_mev_per_atom": errors.mean, "error_std_mev_per_atom": errors.std,
            "errors_mev_per_atom": errors.values, "statuses": errors.statuses,
            "ldos_rmse_mean": float(np.mean(rmse)) if rmse else math.nan,
            "ldos_rmse_std": float(np.std(rmse)) if rmse else math.nan,
            "descriptor_core_seconds": 0.0, "training_seconds": time.perf_counter() - start,
        })
        print(f"rcut {result.rcut:.4g}: ACSD {result.acsd:.5f}, error {errors.mean:.2f} ± {errors.std:.2f} meV/atom",
              flush=True)
    return rows, spec, settings


def main() -> None:
    args = parse_args()

    import torch
    from scipy import stats

    from hpsearch.data import open_store
    from hpsearch.data.generate import resolve_store

    torch.set_num_threads(1)
    rcuts = sorted(float(v) for v in args.rcut.split(",")) if args.rcut else list(QUICK_RCUTS if args.quick else RCUTS)
    n_seeds, max_epochs = (2, 15) if args.quick else (args.seeds, args.max_epochs)
    started = time.perf_counter()
    store_path = resolve_store(args.store)
    with open_store(store_path) as store:
        names = store.names[: args.snapshots]
        n_atoms, grid = store.metadata(names[0]).n_atoms, store.metadata(names[0]).grid_shape
    if len(names) < 4:
        raise SystemExit(f"need at least 4 snapshots (1+ train, 1 validation, 2 test), got {len(names)}")
    split = {"train": names[:-3], "validation": names[-3:-2], "test": names[-2:]}
    scan, acsd_seconds = acsd_per_rcut(store_path, names, rcuts, args.twojmax, args.n_points, 0)
    grids, core_seconds = descriptors_per_rcut(store_path, names, rcuts, args.twojmax, args.workers)
    rows, spec, settings = train_per_rcut(store_path, scan, grids, split, n_seeds, max_epochs)
    for row in rows:
        row["descriptor_core_seconds"] = core_seconds[row["rcut"]]
    print(f"\nstore {store_path.name}: {len(names)} snapshots of {n_atoms} atoms, grid {grid}; split {split}")
    print(f"MLP {spec.n_in}-64-64-{spec.n_out} LeakyReLU, {n_seeds} seeds, <= {max_epochs} epochs, twojmax {args.twojmax}")
    print_table(rows)
    acsd_values = [r["acsd"] for r in rows]
    error_values = [r["error_mean_mev_per_atom"] for r in rows]
    rmse_values = [r["ldos_rmse_mean"] for r in rows]
    tau = float(stats.kendalltau(acsd_values, error_values).statistic)
    rho = float(stats.spearmanr(acsd_values, error_values).statistic)
    tau_rmse = float(stats.kendalltau(acsd_values, rmse_values).statistic)
    rho_rmse = float(stats.spearmanr(acsd_values, rmse_values).statistic)
    best_acsd, best_error = rcuts[int(np.argmin(acsd_values))], rcuts[int(np.nanargmin(error_values))]
    # mutual information ranks the other way (larger: better): tau(-MI, error) is comparable to tau(ACSD, error)
    mi_values = [-r["mi_nats"] for r in rows]
    tau_mi = float(stats.kendalltau(mi_values, error_values).statistic)
    rho_mi = float(stats.spearmanr(mi_values, error_values).statistic)
    best_mi = rcuts[int(np.nanargmin(mi_values))]
    total = time.perf_counter() - started
    print(f"\nKendall tau(ACSD, error) = {tau:+.2f}, Spearman = {rho:+.2f}; minimum ACSD at rcut {best_acsd:.4g}, "
          f"minimum error at rcut {best_error:.4g}; ACSD scan {acsd_seconds:.1f} s, total {total:.0f} s")
    print(f"Kendall tau(ACSD, LDOS RMSE) = {tau_rmse:+.2f}, Spearman = {rho_rmse:+.2f}; minimum LDOS RMSE at rcut "
          f"{rcuts[int(np.nanargmin(rmse_values))]:.4g}")
    print(f"Kendall tau(-MI, error) = {tau_mi:+.2f}, Spearman = {rho_mi:+.2f}; maximum MI at rcut {best_mi:.4g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, args.out.with_suffix(".png"))
    payload = {
        "machine": platform.platform(), "cpus": os.cpu_count(), "store": str(store_path), "snapshots": names,
        "split": split, "n_atoms": n_atoms, "grid": list(grid), "twojmax": args.twojmax, "n_points": args.n_points,
        "network": spec.model_dump(mode="json"), "training": settings.model_dump(mode="json"), "seeds": n_seeds,
        "rows": rows, "kendall_tau": tau, "spearman": rho, "kendall_tau_ldos_rmse": tau_rmse,
        "spearman_ldos_rmse": rho_rmse, "rcut_min_acsd": best_acsd, "rcut_min_error": best_error,
        "kendall_tau_neg_mi": tau_mi, "spearman_neg_mi": rho_mi, "rcut_max_mi": best_mi,
        "acsd_scan_seconds": acsd_seconds, "total_seconds": total,
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
