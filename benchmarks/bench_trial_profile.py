"""Where a trial's time goes, with and without the training's cost levers.

Runs short grid studies through :func:`hpsearch.tune.runner.run_study`, as a user's study runs
(Ray Tune, shard actors, MLflow tracking into a temporary SQLite store, one trial at a time), in
four modes alternated round by round so that all see the same machine:

* ``all``: every training and validation point (today's default);
* ``ppe``: ``points_per_epoch`` training points per epoch;
* ``val``: per-epoch validation on ``validation_points`` fixed points;
* ``both``: the two together.

``all-untracked`` (``all`` with MLflow off) can be added with ``--modes`` to see MLflow's whole
effect, its background thread included. Each trial's wall time (the study's search wall time per
trial) is split into: the training loop (optimiser steps), per-epoch validation, the final
evaluation (validation LDOS loss and band energy on every point), reports to Tune (each waits for
the driver), data fetching (shard actors), the rest inside the trial (model, scalers, set-up),
MLflow (its callbacks on the driver: trial start, results, end) and Ray/Tune (the rest: trial
start, actor reuse, searcher, the Tuner's own start and end over its trials). **Trial
efficiency** = training loop / trial wall time. Every value is the median over rounds of the
per-trial mean of one study. A long study's view: the **steady-state** trial wall time (median
time between consecutive trial ends, trials 2..N) with its efficiency, and the study's **fixed
cost** (the rest of its search time: Tuner start and end, the first worker's start and imports). ``tau vs all``: Kendall's tau between the mode's final validation
LDOS losses of the study's configurations and those of the ``all`` study of the same round (do
the levers keep the ranking?).

The MLflow split times the tracking callbacks' methods in this process (and the journal's
background writes, reported apart: they overlap the trials). Timings on a shared machine are
noisy: compare modes of one run, not runs.

``--store``: a store path, ``small`` (default: the model engine's small test store) or
``default``; a named store is generated where hpsearch keeps its data when it is missing. Writes
only the JSON file (``--out``: a folder or a .json file); the studies and MLflow live in
``<stem>-work`` beside it and Ray's temp files in /tmp, both removed at the end.

    .venv/bin/python benchmarks/bench_trial_profile.py [--store small] [--trials 8] [--max-epochs 10] \
        [--points-per-epoch N] [--validation-points N] [--rounds 3] [--modes all ppe val both] \
        [--out results/bench_trial_profile.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _outputs import output_paths, work_folder

MODES = ("all", "ppe", "val", "both", "all-untracked")
#: the split of a trial's wall time, in the table's order (per trial, seconds)
PARTS = ("loop_s", "validation_s", "evaluation_s", "report_s", "data_s", "in_trial_other_s", "mlflow_s",
         "ray_tune_s")
LABELS = {
    "loop_s": "training loop", "validation_s": "per-epoch validation", "evaluation_s": "final evaluation",
    "report_s": "reports to Tune", "data_s": "data fetch", "in_trial_other_s": "rest of the trial",
    "mlflow_s": "MLflow (driver callbacks)", "ray_tune_s": "Ray/Tune overhead", "wall_s": "trial wall time",
    "efficiency": "trial efficiency", "mlflow_background_s": "MLflow journal (background)",
    "epochs": "epochs per trial", "points_trained": "training points per epoch",
    "val_ldos_mse": "final val LDOS MSE (median)", "tau_vs_all": "tau vs all",
    "steady_wall_s": "steady-state trial wall", "steady_efficiency": "steady-state efficiency",
    "study_fixed_s": "study fixed cost (per study)",
}
#: the rows of the table after the split of the wall time
EXTRA = ("wall_s", "efficiency", "steady_wall_s", "steady_efficiency", "study_fixed_s", "mlflow_background_s",
         "epochs", "points_trained", "val_ldos_mse", "tau_vs_all")
_HOOKS = ("on_trial_start", "on_trial_result", "on_trial_complete", "on_trial_error")


class _Clock:
    """Seconds spent in the wrapped MLflow callback methods, per trial and hook, and in journal writes."""

    def __init__(self) -> None:
        self.hooks: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.journal_s = 0.0


@contextlib.contextmanager
def timed_tracking(clock: _Clock) -> Iterator[None]:
    """Time the MLflow callback's methods (and the journal's ``apply``) in this process; restored after."""
    from hpsearch.tracking import journal
    from hpsearch.tune.adapters import MLflowStudyCallback

    saved: list[tuple[Any, str, Any]] = []

    def wrap_hook(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(self: Any, iteration: int, trials: list[Any], trial: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(self, iteration, trials, trial, *args, **kwargs)
            finally:
                result = kwargs.get("result", args[0] if args else None)
                # an epoch's result is handled while the trial waits in its report; the final one is not
                key = "epoch_result" if isinstance(result, dict) and "epoch" in result else name
                clock.hooks[str(trial.trial_id)][key] += time.perf_counter() - started
        return timed

    def wrap_apply(original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                clock.journal_s += time.perf_counter() - started
        return timed

    for name in _HOOKS:
        saved.append((MLflowStudyCallback, name, MLflowStudyCallback.__dict__[name]))
        setattr(MLflowStudyCallback, name, wrap_hook(name, MLflowStudyCallback.__dict__[name]))
    applier = getattr(journal, "OperationApplier", None)
    if applier is not None and "apply" in applier.__dict__:
        saved.append((applier, "apply", applier.__dict__["apply"]))
        applier.apply = wrap_apply(applier.__dict__["apply"])
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _timeline() -> Any:
    """A Tune callback keeping each trial's last result (its timing fields) on the driver."""
    from ray.tune import Callback

    class Timeline(Callback):
        def __init__(self) -> None:
            self.results: dict[str, dict[str, Any]] = {}
            self.ended: dict[str, float] = {}

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.results[str(trial.trial_id)] = dict(trial.last_result or {})
            self.ended[str(trial.trial_id)] = time.perf_counter()

    return Timeline()


def _levels(n_trials: int) -> dict[str, list[int]]:
    widths = [16, 32, 64, 128, 24, 48, 96, 8]
    if n_trials < 2 or n_trials > 2 * len(widths) or n_trials % 2:
        raise SystemExit(f"--trials {n_trials}: give an even number from 2 to {2 * len(widths)}")
    return {"width": widths[: n_trials // 2], "n_layers": [1, 2]}


def study_config(mode: str, args: argparse.Namespace, store: Path, folder: Path, name: str) -> Any:
    from hpsearch.config.experiment import parse_experiment

    fixed: dict[str, Any] = {"max_epochs": args.max_epochs, "patience": args.patience, "batch_size": args.batch_size}
    if mode in ("ppe", "both"):
        fixed["points_per_epoch"] = args.points_per_epoch
    if mode in ("val", "both"):
        fixed["validation_points"] = args.validation_points
    return parse_experiment({
        "name": name, "storage_path": str(folder / name),
        "dataset": {"store": str(store), "split": dict(zip(("train", "validation", "test"), args.split)),
                    "keep_loaded": True},
        "search_space": _levels(args.trials), "strategy": {"name": "grid"}, "fixed": fixed,
        "budget": {"max_trials": args.trials, "max_concurrent": 1}, "resources": {"cpus": 1},
        "naswot": {"batch_size": 16}, "seed": args.seed,
        "tracking": {"enabled": mode != "all-untracked", "uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }, source=f"mode {mode}")


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (int(row["width"]), int(row["n_layers"]))


def run_mode(mode: str, args: argparse.Namespace, store: Path, folder: Path, name: str) -> dict[str, Any]:
    """One study of `mode`: per-trial means of each part of the trial wall time, and its trials' losses."""
    from hpsearch.config.strategy import LDOS_METRIC
    from hpsearch.tune.runner import run_study

    clock = _Clock()
    timeline = _timeline()
    with timed_tracking(clock):
        result = run_study(study_config(mode, args, store, folder, name), callbacks=[timeline])
    search_s = float(result.phases["search_s"])
    trials = sorted(timeline.results.items(), key=lambda item: timeline.ended[item[0]])
    n = len(trials)
    if n == 0:
        raise SystemExit(f"mode {mode}: no trial finished; see {folder / name}")
    sums: dict[str, float] = defaultdict(float)
    per_trial = [trial_parts(last, clock.hooks.get(trial_id, {})) for trial_id, last in trials]
    for parts in per_trial:
        for key, value in parts.items():
            sums[key] += value
    row = {key: value / n for key, value in sums.items()}
    row["wall_s"] = search_s / n
    # the rest of the study's search time per trial: trial start, actor reuse, searcher, Tuner start/end
    row["ray_tune_s"] = max(row["wall_s"] - row["trial_s"] - row["mlflow_outside_s"], 0.0)
    row["efficiency"] = row["loop_s"] / row["wall_s"]
    row.update(steady_state([timeline.ended[t] for t, _ in trials], per_trial, search_s))
    row["mlflow_background_s"] = clock.journal_s / n
    row["points_trained"] = args.points_per_epoch if mode in ("ppe", "both") else args.n_train
    frame = result.trials
    losses = {_key(r): r[LDOS_METRIC] for r in frame.to_dict("records") if r.get(LDOS_METRIC) is not None}
    row["val_ldos_mse"] = statistics.median(losses.values()) if losses else math.nan
    return {"mode": mode, "study": name, "n_trials": n, "search_s": search_s, **row,
            "losses": {f"w{k[0]}-L{k[1]}": v for k, v in losses.items()}, "trials": per_trial}


def trial_parts(last: dict[str, Any], hooks: dict[str, float]) -> dict[str, float]:
    """The split of one trial's time (seconds) from its final result and its MLflow hook times."""
    waited = hooks.get("epoch_result", 0.0)  # the driver's MLflow part of the trial's report waits
    parts = {
        "loop_s": float(last.get("loop_seconds", 0.0)),
        "validation_s": float(last.get("validation_seconds", 0.0)),
        "evaluation_s": float(last.get("evaluation_seconds", 0.0)),
        "report_s": max(float(last.get("report_seconds", 0.0)) - waited, 0.0),
        "data_s": float(last.get("data_seconds", 0.0)),
    }
    trial_s = float(last.get("trial_seconds", 0.0))
    parts["in_trial_other_s"] = max(trial_s - sum(parts.values()) - waited, 0.0)
    parts["mlflow_s"] = sum(hooks.values())
    # MLflow's trial start, final result and end are handled between trials, outside trial_s
    return {**parts, "trial_s": trial_s, "mlflow_outside_s": parts["mlflow_s"] - waited,
            "epochs": float(last.get("epochs", 0))}


def steady_state(ended: list[float], per_trial: list[dict[str, float]], search_s: float) -> dict[str, float]:
    """A long study's per-trial numbers: the median time between consecutive trial ends (trials 2..N,
    one at a time) and the training loop's share of it; the study's fixed cost is the rest of its
    search time (Tuner start and end, the first worker's start-up and imports)."""
    if len(ended) < 3:
        return {}
    intervals = [b - a for a, b in zip(ended, ended[1:])]
    wall = statistics.median(intervals)
    return {"steady_wall_s": wall,
            "steady_efficiency": statistics.median(t["loop_s"] / i for t, i in zip(per_trial[1:], intervals)),
            "study_fixed_s": search_s - len(ended) * wall}


def kendall_tau(a: dict[str, float], b: dict[str, float]) -> float:
    """Kendall's tau of two mappings over their common keys (NaN below 3 common finite values)."""
    from scipy.stats import kendalltau

    keys = sorted(k for k in a.keys() & b.keys() if math.isfinite(a[k]) and math.isfinite(b[k]))
    if len(keys) < 3:
        return math.nan
    return float(kendalltau([a[k] for k in keys], [b[k] for k in keys]).statistic)


def summarise(rows: list[dict[str, Any]], modes: list[str]) -> dict[str, dict[str, float]]:
    """Per mode, the median over rounds of every number."""
    keys = [*PARTS, *EXTRA]
    summary: dict[str, dict[str, float]] = {}
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        summary[mode] = {k: statistics.median(float(r[k]) for r in mine) for k in keys if all(k in r for r in mine)}
    return summary


def print_table(summary: dict[str, dict[str, float]], modes: list[str]) -> None:
    width = 14
    print(f"\n{'per trial (median of rounds)':<30}" + "".join(f"{m:>{width}}" for m in modes))
    for key in [*PARTS, *EXTRA]:
        cells = []
        for mode in modes:
            value = summary[mode].get(key, math.nan)
            if key in ("efficiency", "steady_efficiency"):
                cells.append(f"{100 * value:>{width - 1}.1f}%")
            elif key in ("epochs", "points_trained"):
                cells.append(f"{value:>{width}.0f}")
            elif key == "val_ldos_mse":
                cells.append(f"{value:>{width}.3g}")
            elif key == "tau_vs_all":
                cells.append(f"{value:>{width}.2f}")
            else:
                cells.append(f"{1000 * value:>{width - 3}.1f} ms")
        print(f"{LABELS[key]:<30}" + "".join(cells))


def _split_sizes(store: Path, split: tuple[int, int, int]) -> tuple[int, int]:
    from hpsearch.data import open_store, split_snapshots

    with open_store(store) as opened:
        parts = split_snapshots(opened.names, *split)
        return (sum(opened.n_points(n) for n in parts.train), sum(opened.n_points(n) for n in parts.validation))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="small", help="store path, 'small' (default) or 'default'")
    parser.add_argument("--split", default="2:1:1", help="TRAIN:VALIDATION:TEST snapshot counts")
    parser.add_argument("--trials", type=int, default=8, help="trials per study (even: widths x 1-2 layers)")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=None, help="early stopping (default: none, all epochs)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--points-per-epoch", type=int, default=None, help="default: a quarter of the training points")
    parser.add_argument("--validation-points", type=int, default=None,
                        help="default: a quarter of the validation points")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["all", "ppe", "val", "both"], choices=MODES)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results"), help="a folder or a .json file")
    args = parser.parse_args(argv)
    _, args.out = output_paths(args.out, "bench_trial_profile.json")
    args.work = work_folder(args.out)
    try:
        args.split = tuple(int(p) for p in args.split.split(":"))
    except ValueError:
        raise SystemExit(f"--split {args.split!r}: give three snapshot counts like 2:1:1") from None
    if len(args.split) != 3:
        raise SystemExit(f"--split {args.split}: give three snapshot counts like 2:1:1")
    _levels(args.trials)
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    import ray

    from hpsearch.data.generate import resolve_store
    from hpsearch.tune.shards import release_shards

    store = resolve_store(args.store, key="--store")
    args.n_train, args.n_val = _split_sizes(store, args.split)
    args.points_per_epoch = args.points_per_epoch or max(args.n_train // 4, 1)
    args.validation_points = args.validation_points or max(args.n_val // 4, 1)
    print(f"store {store}: {args.n_train} training, {args.n_val} validation points; points_per_epoch "
          f"{args.points_per_epoch}, validation_points {args.validation_points}; {args.trials} trials of "
          f"{args.max_epochs} epochs per study, {args.rounds} rounds of {', '.join(args.modes)}", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="studies-", dir=args.work))  # studies and MLflow, removed at the end
    ray_temp = tempfile.mkdtemp(prefix="hpstp_", dir="/tmp")  # short: Ray's socket paths must stay short
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 _temp_dir=ray_temp)
        run_mode(args.modes[0], args, store, folder, "warm-up")  # data actors, imports, MLflow store
        for round_ in range(args.rounds):
            order = args.modes[round_ % len(args.modes):] + args.modes[: round_ % len(args.modes)]
            done: dict[str, dict[str, Any]] = {}
            for mode in order:
                row = run_mode(mode, args, store, folder, f"r{round_}-{mode}")
                done[mode] = row
                print(f"  round {round_ + 1} {mode:<14} wall/trial {1000 * row['wall_s']:7.0f} ms, loop "
                      f"{1000 * row['loop_s']:6.0f} ms, efficiency {100 * row['efficiency']:5.1f}%", flush=True)
            for mode, row in done.items():
                if "all" in done:
                    row["tau_vs_all"] = kendall_tau(row["losses"], done["all"]["losses"])
                row["round"] = round_
                rows.append(row)
        release_shards()
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(ray_temp, ignore_errors=True)
        with contextlib.suppress(OSError):
            args.work.rmdir()  # when empty
    summary = summarise(rows, args.modes)
    print_table(summary, args.modes)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items() if k not in ("out", "work")}
    out.write_text(json.dumps({"settings": {**settings, "store": str(store)}, "summary": summary, "rows": rows,
                               "seconds": time.perf_counter() - started, "load_average": os.getloadavg(),
                               "machine": platform.node(), "cpu_count": os.cpu_count()}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
