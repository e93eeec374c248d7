"""NASWOT scoring throughput: a MALA-like baseline against ``score_architectures``.

Baseline (the way MALA's NASWOT objective does it): one network at a time, built with
``build_network(spec, seed)`` in float32, a new DataLoader per candidate, the Jacobian from
``y.backward(ones)``, the correlation matrix in float32 and ``torch.linalg.eig`` (general
eigensolver, real parts), eq. 13 per initialisation and eq. 14 over them. On a GPU
(``--device cuda``) the baseline moves each batch and network there, as MALA does.
Candidate: ``hpsearch.scoring.score_architectures`` (T initialisations stacked, float64,
batched symmetric eigensolver). Same architectures, same seeds, same batch: the initial weights
are identical, so the two rankings should agree (Kendall tau between them).

Batch: N random grid points of the real Be2 SNAP descriptors (91 features), standardised.

    .venv/bin/python benchmarks/bench_naswot.py [--n-architectures 150] [--device cuda]
        [--out results/bench_naswot.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpsearch.model import NetworkSpec, build_network
from hpsearch.scoring import WORST_SCORE, init_seeds, kendall_tau, score_architectures
from hpsearch.scoring.experiment import ArchitectureSpace, sample_architectures

from _outputs import output_paths

REPO = Path(__file__).resolve().parents[1]
BE2_DIR = Path(os.environ.get("HPSEARCH_BE2_DIR", REPO.parent / "shared" / "data" / "mala-be2"))
BASE = "baseline (MALA-like, float32, eig)"
EXACT = "baseline in float64 (exact ranking)"
SPACE = ArchitectureSpace(depths=(1, 2, 3), widths=(16, 32, 64, 128, 256),
                          activations=("ReLU", "LeakyReLU", "Sigmoid", "Tanh"))


def load_batch(n: int, seed: int) -> torch.Tensor:
    x = np.load(BE2_DIR / "Be_snapshot0.in.npy")[..., 3:].reshape(-1, 91).astype(np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    rows = np.random.default_rng(seed).choice(len(x), size=n, replace=False)
    return torch.from_numpy(x[rows]).float()


def _mala_corrcoef(x: torch.Tensor) -> torch.Tensor:
    mean_x = torch.mean(x, dim=1, keepdim=True)
    xm = x.sub(mean_x.expand_as(x))
    c = xm.mm(xm.t()) / (x.size(1) - 1)
    stddev = torch.pow(torch.diag(c), 0.5)
    c = c.div(stddev.expand_as(c)).div(stddev.expand_as(c).t())
    return torch.clamp(c, -1.0, 1.0)


def baseline(dtype: torch.dtype, device: str = "cpu") -> Callable[..., list[float]]:
    """MALA-like: per candidate a DataLoader, per initialisation a network and a general eig."""

    def run(specs: Sequence[NetworkSpec], batch: torch.Tensor, n_init: int, seed: int, k: float) -> list[float]:
        return _baseline(specs, batch.to(dtype), n_init, seed, k, torch.device(device))

    return run


def _baseline(specs: Sequence[NetworkSpec], batch: torch.Tensor, n_init: int, seed: int, k: float,
              device: torch.device) -> list[float]:
    seeds = init_seeds(seed, n_init)
    results = []
    for spec in specs:
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(batch), batch_size=len(batch))
        scores = []
        for init_seed in seeds:
            net = build_network(spec, init_seed).to(device=device, dtype=batch.dtype).eval()
            (x,) = next(iter(loader))
            x = x.to(device)
            x.requires_grad_(True)
            net.zero_grad()
            y = net(x)
            y.backward(torch.ones_like(y))
            eigenvalues = torch.linalg.eig(_mala_corrcoef(x.grad.detach()))[0].real
            scores.append(torch.sum(torch.log(eigenvalues + k) + 1.0 / (eigenvalues + k)).item())
        results.append(float(np.mean(scores) + np.std(scores)))
    return results


def fast(dtype: torch.dtype, device: str = "cpu", eig_device: str | None = None) -> Callable[..., list[float]]:
    def run(specs: Sequence[NetworkSpec], batch: torch.Tensor, n_init: int, seed: int, k: float) -> list[float]:
        found = score_architectures(specs, batch, n_init=n_init, seed=seed, k=k, progress=False, dtype=dtype,
                                    device=device, eig_device=eig_device)
        return [r.score if r.ok else float("nan") for r in found]

    return run


def timed_rounds(
    implementations: dict[str, Callable[..., list[float]]], repeats: int, *args: Any
) -> dict[str, tuple[list[float], float, float]]:
    """Run every implementation once per round (interleaved, so machine load hits all alike);
    per implementation its scores and the median wall and CPU (process) seconds over the rounds.
    CPU time is the fairer measure on a shared machine; both are reported."""
    wall: dict[str, list[float]] = {name: [] for name in implementations}
    cpu: dict[str, list[float]] = {name: [] for name in implementations}
    scores: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, fn in implementations.items():
            t0, c0 = time.perf_counter(), time.process_time()
            scores[name] = fn(*args)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {n: (scores[n], statistics.median(wall[n]), statistics.median(cpu[n])) for n in implementations}


def agreement(reference: list[float], other: list[float]) -> tuple[float, int, int]:
    """Kendall tau over candidates valid in both, that count, and how many validity flags differ."""
    ref, oth = np.asarray(reference), np.asarray(other)
    ok_ref, ok_oth = np.isfinite(ref), np.isfinite(oth)
    both = ok_ref & ok_oth
    return kendall_tau(ref[both], oth[both]), int(both.sum()), int((ok_ref != ok_oth).sum())


def float32_discordance(base: list[float], exact: list[float]) -> dict[str, float]:
    """Why the float32 baseline ranks differently from the exact scores: its rounding error
    against the pairs it orders the other way (their gap in the exact score)."""
    b, e = np.asarray(base), np.asarray(exact)
    ok = np.isfinite(b) & np.isfinite(e)
    b, e = b[ok], e[ok]
    error = np.abs(b - e)
    i, j = np.triu_indices(len(e), k=1)
    swapped = np.sign(b[i] - b[j]) != np.sign(e[i] - e[j])
    gaps = np.abs(e[i] - e[j])[swapped]
    return {"n_pairs": int(len(i)), "n_swapped_pairs": int(swapped.sum()),
            "max_exact_gap_of_swapped_pairs": float(gaps.max()) if gaps.size else 0.0,
            "max_float32_error": float(error.max()), "median_float32_error": float(np.median(error)),
            "min_exact_gap_of_all_pairs": float(np.abs(e[i] - e[j]).min())}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-architectures", type=int, default=150)
    parser.add_argument("--n-init", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; the median is shown")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both implementations)")
    parser.add_argument("--device", default="cpu", help="where both implementations run: cpu or cuda")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_naswot.json")
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(Path(args.out), "bench_naswot.json")
    return args


def main() -> None:
    args = parse_args()
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is visible; use --device cpu")
    torch.set_num_threads(args.threads)
    batch = load_batch(args.batch_size, args.seed)
    specs = sample_architectures(SPACE, 91, 11, args.n_architectures, seed=args.seed)
    common = (specs, batch, args.n_init, args.seed, 1e-4)
    dev = args.device
    implementations = {
        BASE: baseline(torch.float32, dev),
        EXACT: baseline(torch.float64, dev),
        "score_architectures (float64)": fast(torch.float64, dev),
        "score_architectures (float32 Jacobian)": fast(torch.float32, dev),
    }
    if torch.device(dev).type != "cpu":  # the eigensolver on the GPU too (default: the host)
        implementations["score_architectures (float64, eig on GPU)"] = fast(torch.float64, dev, dev)
    for fn in implementations.values():  # warm-up: imports, allocator, BLAS
        fn(specs[:3], batch, args.n_init, args.seed, 1e-4)
    measured = timed_rounds(implementations, args.repeats, *common)
    rows = []
    for name, (scores, seconds, cpu_seconds) in measured.items():
        tau_exact, n_exact, _ = agreement(measured[EXACT][0], scores)
        tau_base, _, n_flag_diff = agreement(measured[BASE][0], scores)
        rows.append({"implementation": name, "seconds": seconds, "cpu_seconds": cpu_seconds,
                     "candidates_per_s": len(specs) / seconds, "speedup": measured[BASE][1] / seconds,
                     "speedup_cpu": measured[BASE][2] / cpu_seconds, "kendall_tau_vs_exact": tau_exact,
                     "kendall_tau_vs_baseline": tau_base, "n_ranked": n_exact,
                     "n_validity_differs_from_baseline": n_flag_diff})
    by_width = width_classes(specs, batch, args)
    base_scores = measured[BASE][0]
    discordance = float32_discordance(base_scores, measured[EXACT][0])
    print_table(rows, by_width, args, len(specs))
    print(f"\nthe float32 baseline against exact scores: {discordance['n_swapped_pairs']} of "
          f"{discordance['n_pairs']} pairs ordered the other way, all with exact gaps <= "
          f"{discordance['max_exact_gap_of_swapped_pairs']:.3g}; its score error: median "
          f"{discordance['median_float32_error']:.3g}, max {discordance['max_float32_error']:.3g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "rows": rows, "by_max_width": by_width, "float32_baseline_discordance": discordance, "n_architectures": len(specs), "n_init": args.n_init, "batch_size": args.batch_size,
        "seed": args.seed, "threads": args.threads, "repeats": args.repeats, "space": SPACE.__dict__,
        "n_degenerate": int(sum(1 for s in base_scores or [] if not np.isfinite(s))),
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "device": device_name(dev),
        "worst_score": WORST_SCORE,
    }, indent=2))
    print(f"wrote {args.out}")


def device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def width_classes(specs: Sequence[NetworkSpec], batch: torch.Tensor, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Speed-up by the widest hidden layer: the float64 Jacobian's cost grows with width^2."""
    rows = []
    for low, high in ((1, 64), (65, 128), (129, 100_000)):
        group = [s for s in specs if low <= max(s.widths) <= high]
        if not group:
            continue
        measured = timed_rounds({"base": baseline(torch.float32, args.device), "fast": fast(torch.float64, args.device),
                                 "fast32": fast(torch.float32, args.device)}, 1, group, batch, args.n_init,
                                args.seed, 1e-4)
        # CPU seconds on a CPU (one round: the less load-sensitive measure); wall seconds on a GPU
        col = 2 if torch.device(args.device).type == "cpu" else 1
        base = measured["base"][col]
        rows.append({"max_width": f"{low}-{high}" if high < 100_000 else f">={low}", "n": len(group),
                     "measured_by": "cpu_seconds" if col == 2 else "wall_seconds",
                     "baseline_ms_per_candidate": 1e3 * base / len(group),
                     "speedup_float64": base / measured["fast"][col],
                     "speedup_float32_jacobian": base / measured["fast32"][col]})
    return rows


def print_table(rows: list[dict[str, Any]], by_width: list[dict[str, Any]], args: argparse.Namespace,
                n_specs: int) -> None:
    print(f"{n_specs} architectures x {args.n_init} initialisations, batch {args.batch_size} x 91 "
          f"(Be2), on {device_name(args.device)}, {args.threads} CPU thread(s), median of {args.repeats} "
          "interleaved rounds")
    print(f"{'implementation':<40} {'wall s':>7} {'cpu s':>7} {'cand/s':>7} {'speed-up':>9} {'(cpu)':>7} "
          f"{'tau vs exact':>13} {'tau vs base':>12} {'ranked':>7}")
    for r in rows:
        print(f"{r['implementation']:<40} {r['seconds']:7.3f} {r['cpu_seconds']:7.3f} {r['candidates_per_s']:7.1f} "
              f"{r['speedup']:8.1f}x {r['speedup_cpu']:6.1f}x {r['kendall_tau_vs_exact']:13.4f} "
              f"{r['kendall_tau_vs_baseline']:12.4f} {r['n_ranked']:7d}")
    measure = by_width[0]["measured_by"].split("_")[0] if by_width else "cpu"
    print(f"\n{'widest layer':<14} {'n':>4} {'baseline ' + measure + ' ms/cand':>22} {'speed-up f64':>13} "
          f"{'speed-up f32 J':>15}")
    for r in by_width:
        print(f"{r['max_width']:<14} {r['n']:4d} {r['baseline_ms_per_candidate']:22.2f} "
              f"{r['speedup_float64']:12.1f}x {r['speedup_float32_jacobian']:14.1f}x")


if __name__ == "__main__":
    main()
