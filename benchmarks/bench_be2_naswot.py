"""The NASWOT sign on real DFT data: MALA's Be2 snapshots from ../shared, calibration and whole studies.

Two parts, each optional, on MALA's four Quantum ESPRESSO Be2 snapshots (imported into the
output folder; split 2 train / 1 validation / 1 test as a search splits them):

1. ``--calibration``: ``hpsearch proxy-study`` over every architecture of the benchmark's space
   (1-4 layers x widths 16-128 x ReLU, LeakyReLU, Sigmoid, Tanh: 64), trained to convergence (Adam
   1e-3 with a plateau schedule, mini-batch 64, patience 10, at most 200 epochs), every proxy and
   both NASWOT signs judged on the validation LDOS RMSE, the test part never loaded.
2. ``--strategies``: the benchmark's studies on Be2, ``--repeats`` search seeds each: no search
   (one random architecture), TPE, TPE + ASHA, and the three training-free strategies (NASWOT
   fixed, NASWOT-halving, TPE with the NASWOT pruner) twice, with the default proxy
   (``hpsearch.scoring.proxies.DEFAULT_PROXY``) and with the paper's sign (``naswot-paper``).
   Every row gives the median over repeats of the retrained winners' test LDOS RMSE with its
   bootstrap 95 % CI, the band-energy error beside it, the search compute, and the repeat-by-repeat
   comparison with no search (wins and the exact two-sided Wilcoxon p).

    .venv/bin/python benchmarks/bench_be2_naswot.py [--calibration] [--strategies] [--repeats 6]
        [--out results/be2-naswot]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _outputs import output_paths, work_folder

REPO = Path(__file__).resolve().parents[1]
BE2_DIR = Path(os.environ.get("HPSEARCH_BE2_DIR", REPO.parent / "shared" / "data" / "mala-be2"))
TRAINING_FREE = ("naswot", "naswot-halving", "tpe-pruner")
STRATEGIES = ("null", *TRAINING_FREE, "tpe", "tpe-asha")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", action="store_true", help="run the 64-architecture proxy calibration")
    parser.add_argument("--strategies", action="store_true", help="run the strategy comparison")
    parser.add_argument("--repeats", type=int, default=6, help="search seeds per strategy (6: p can reach 0.031)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--out", type=Path, default=Path("results/be2-naswot"))
    args = parser.parse_args(argv)
    if not (args.calibration or args.strategies):
        parser.error("choose --calibration, --strategies or both")
    if not BE2_DIR.is_dir():
        raise SystemExit(f"MALA's Be2 data not found at {BE2_DIR}: set HPSEARCH_BE2_DIR")
    return args


def import_be2(work: Path) -> Path:
    from hpsearch.data.mala import import_mala
    from hpsearch.physics import EnergyGrid

    path = work / "be2.h5"
    if not path.exists():
        import_mala(BE2_DIR, path, EnergyGrid(-5.0, 2.5, 11))
    return path


def calibration(store: Path, work: Path, workers: int) -> dict[str, Any]:
    """The proxy study; returns its JSON and prints its table."""
    from hpsearch.scoring.proxy_report import markdown_table, write_study
    from hpsearch.scoring.proxy_study import ProxyStudyConfig, run_proxy_study

    config = ProxyStudyConfig(store=str(store), architectures="all", depths=(1, 2, 3, 4), n_train=2, n_validation=1,
                              n_test=1, learning_rate=1e-3, train_batch_size=64, patience=10, max_epochs=200,
                              lr_schedule="plateau", workers=workers, tracking=False)
    study = run_proxy_study(config)
    write_study(study, work / "calibration")
    print(markdown_table(study), flush=True)
    return study.to_dict()


def _strategy_runs(store: Path, work: Path, repeats: int, paper_sign: bool) -> Any:
    from hpsearch.bench import BenchmarkSettings, run_paper_benchmark

    overrides: dict[str, Any] = {}
    names = TRAINING_FREE if paper_sign else STRATEGIES
    if paper_sign:
        overrides = {"naswot": {"strategy": {"options": {"proxy": "naswot-paper"}}},
                     "naswot-halving": {"strategy": {"options": {"proxy": "naswot-paper"}}},
                     "tpe-pruner": {"scheduler": {"options": {"proxy": "naswot-paper"}}}}
    settings = BenchmarkSettings(out=work / ("paper-sign" if paper_sign else "default-proxy"), strategies=names,
                                 repeats=repeats, store=store, split="2:1:1", strategy_overrides=overrides,
                                 resume=True, progress=False, mlflow_experiment="be2-naswot")
    return run_paper_benchmark(settings)


def comparison(default_runs: Any, paper_runs: Any) -> list[dict[str, Any]]:
    """One row per strategy (and sign): medians with CIs, compute, wins against no search."""
    from hpsearch.bench.stats import paired_comparison, summarize
    from hpsearch.scoring.proxies import DEFAULT_PROXY

    def series(frame: Any, label: str, column: str) -> list[float]:
        rows = frame[frame["strategy"] == label].sort_values("repeat")
        return [float(v) for v in rows[column]]

    null = series(default_runs, "no search", "test_ldos_rmse")
    tpe = series(default_runs, "tpe", "test_ldos_rmse")
    out = []
    for frame, sign in ((default_runs, f"default ({DEFAULT_PROXY})"), (paper_runs, "paper (naswot-paper)")):
        for label in dict.fromkeys(frame["strategy"]):
            if sign.startswith("paper") and label in ("no search", "tpe", "tpe + asha"):
                continue
            ldos = series(frame, label, "test_ldos_rmse")
            versus_null = paired_comparison(ldos, null)
            versus_tpe = paired_comparison(ldos, tpe)
            trained_free = label not in ("no search", "tpe", "tpe + asha")
            out.append({
                "strategy": label, "proxy": sign if trained_free else "-", "repeats": len(ldos),
                "test_ldos_rmse": summarize(ldos).text(".3g"),
                "test_band_energy_mev_per_atom": summarize(series(frame, label, "test_error_mev_per_atom")).text(".3g"),
                "search_core_s": summarize(series(frame, label, "search_core_s")).text(".0f"),
                "better_than_no_search": "-" if label == "no search" else f"{versus_null.n_better}/{versus_null.n_pairs}",
                "p_vs_no_search": float("nan") if label == "no search" else versus_null.p_value, "ratio_vs_tpe": versus_tpe.ratio.text(".3g"),
                "p_vs_tpe": versus_tpe.p_value,
            })
    return out


def print_table(rows: list[dict[str, Any]]) -> None:
    head = ["strategy", "proxy", "repeats", "test LDOS RMSE [95% CI]", "test band-energy error (meV/atom)",
            "search compute (core-s)", "better than no search", "p vs no search", "test LDOS RMSE / tpe", "p vs tpe"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        def p(value: float) -> str:
            return "n/a" if value != value else f"{value:.3g}"

        print(f"| {r['strategy']} | {r['proxy']} | {r['repeats']} | {r['test_ldos_rmse']} | "
              f"{r['test_band_energy_mev_per_atom']} | {r['search_core_s']} | {r['better_than_no_search']} | "
              f"{p(r['p_vs_no_search'])} | {r['ratio_vs_tpe']} | {p(r['p_vs_tpe'])} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, json_path = output_paths(args.out, "be2_naswot.json")
    work = work_folder(json_path)
    work.mkdir(parents=True, exist_ok=True)
    store = import_be2(work)
    payload: dict[str, Any] = {"store": str(store), "source": str(BE2_DIR), "python": sys.version.split()[0]}
    started = time.perf_counter()
    if args.calibration:
        payload["calibration"] = calibration(store, work, args.workers)
        payload["calibration_wall_s"] = time.perf_counter() - started
    if args.strategies:
        began = time.perf_counter()
        default_report = _strategy_runs(store, work, args.repeats, paper_sign=False)
        paper_report = _strategy_runs(store, work, args.repeats, paper_sign=True)
        rows = comparison(default_report.runs, paper_report.runs)
        print_table(rows)
        payload["strategies"] = rows
        payload["strategies_wall_s"] = time.perf_counter() - began
        payload["verdict"] = default_report.verdict.text if default_report.verdict is not None else None
        print(payload["verdict"])
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"-> {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
