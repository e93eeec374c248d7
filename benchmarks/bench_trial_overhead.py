"""Ray Tune's overhead per trial and per report, with and without reused actors.

A trivial trainable (no work) runs N trials; the overhead per trial is wall time / N for one
trial at a time. A second trainable reports R times in one trial: the cost of a report
(each report of a function trainable waits for the driver). The last row is
the cost of NASWOT-scoring one candidate inside a trial. Together they decide how
training-free scoring is batched: one trial per chunk of candidates, never one per candidate.

    python benchmarks/bench_trial_overhead.py --trials 20 --reports 200 [--out results/x.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


from _outputs import output_paths

def _noop(config: dict[str, Any]) -> None:
    from ray import tune

    tune.report({"value": 1.0})


def _many_reports(config: dict[str, Any]) -> None:
    from ray import tune

    for i in range(config["n_reports"]):
        tune.report({"value": float(i)})


def _time_trials(n_trials: int, reuse: bool, concurrent: int, storage: Path) -> float:
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(_noop, {"cpu": 1}),
        param_space={"i": tune.grid_search(list(range(n_trials)))},
        tune_config=tune.TuneConfig(reuse_actors=reuse, max_concurrent_trials=concurrent),
        run_config=tune.RunConfig(name=f"noop-{reuse}-{concurrent}", storage_path=str(storage), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def _time_reports(n_reports: int, storage: Path) -> float:
    from ray import tune

    def run(n: int) -> float:
        tuner = tune.Tuner(
            _many_reports, param_space={"n_reports": n},
            run_config=tune.RunConfig(name=f"reports-{n}", storage_path=str(storage), verbose=0),
        )
        start = time.perf_counter()
        tuner.fit()
        return time.perf_counter() - start

    run(1)  # warm the worker pool
    return (run(n_reports) - run(1)) / (n_reports - 1)


def _time_scoring(n_specs: int) -> float:
    """Seconds to NASWOT-score one architecture (T=5) on a 64 x 91 batch, in one process."""
    import numpy as np
    import torch

    from hpsearch.model import NetworkSpec
    from hpsearch.scoring import score_architectures

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    specs = [
        NetworkSpec(n_in=91, n_out=11, widths=tuple(int(w) for w in rng.choice([16, 32, 64, 128], size=d)),
                    activations=str(rng.choice(["ReLU", "Tanh", "LeakyReLU"])))
        for d in rng.integers(1, 4, size=n_specs)
    ]
    batch = torch.from_numpy(rng.standard_normal((64, 91)))
    score_architectures(specs[:2], batch, progress=False)
    start = time.perf_counter()
    score_architectures(specs, batch, progress=False)
    return (time.perf_counter() - start) / n_specs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--specs", type=int, default=64, help="architectures NASWOT-scored for the per-candidate cost")
    parser.add_argument("--out", type=Path, default=Path("results/bench_trial_overhead.json"))
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(Path(args.out), "bench_trial_overhead.json")
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _temp_dir=tempfile.mkdtemp(prefix="hpsb_", dir="/tmp"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        _time_trials(2, True, 1, storage)  # start-up costs out of the measurement
        for reuse in (False, True):
            for concurrent in (1, args.cpus):
                seconds = _time_trials(args.trials, reuse, concurrent, storage)
                rows.append({"what": "trial", "reuse_actors": reuse, "concurrent": concurrent,
                             "n": args.trials, "seconds_each": seconds / args.trials})
        per_report = _time_reports(args.reports, storage)
        rows.append({"what": "report", "reuse_actors": None, "concurrent": 1, "n": args.reports,
                     "seconds_each": per_report})
    ray.shutdown()
    rows.append({"what": "score", "reuse_actors": None, "concurrent": 1, "n": args.specs,
                 "seconds_each": _time_scoring(args.specs)})
    print(f"{'what':<8}{'reuse_actors':>14}{'concurrent':>12}{'n':>6}{'ms each':>12}")
    for row in rows:
        print(f"{row['what']:<8}{str(row['reuse_actors']):>14}{row['concurrent']:>12}{row['n']:>6}"
              f"{1000 * row['seconds_each']:>12.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "cpus": args.cpus, "load_average": os.getloadavg()}, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
