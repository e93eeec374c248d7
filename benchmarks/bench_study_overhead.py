"""Where a study's wall time goes: process start and imports, Ray start, data placement, setup,
search, results, retrains, MLflow, exit.

Runs ``hpsearch run EXPERIMENT`` as a fresh process (what a user types), measures its wall
time, and reads the per-phase seconds the runner saves in ``result.json``. The overhead is
everything but the search and the retrains; the target is at most 5 s + 20 % of the search's
wall time. Two modes, alternated round by round so that both see the same machine:

* ``local``: the study starts its own Ray and stops it (a laptop, a CI job);
* ``joined``: a Ray started beforehand with ``ray start --head`` (the service's set-up: a
  cluster that outlives the studies), joined with ``--address auto``;
* ``joined-kept``: the same, with ``dataset.keep_loaded: true``; a first study on the data loads
  it (not counted), the measured second one finds it loaded.

``--baseline PYTHON`` also runs another installation (e.g. the venv of an older checkout) in
the same alternation, so a change is measured side by side with what it replaces.

    python benchmarks/bench_study_overhead.py [--experiment experiments/quick/naswot.yaml] \
        [--rounds 3] [--modes local joined joined-kept] [--baseline /path/to/other/.venv/bin/python] \
        [--out results/bench_study_overhead.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _outputs import output_paths

PHASES = ("ray_start_s", "data_placement_s", "setup_s", "search_s", "results_s", "retrains_s", "tracking_end_s")


def one_run(hpsearch: Path, experiment: Path, folder: Path, name: str, address: str | None) -> dict[str, Any]:
    """Run the study once in a new process; its wall time and phases (seconds)."""
    # the default store of the folder the benchmark was started in (not regenerated in the temp folder)
    env = {**os.environ, "COLUMNS": "200",
           "HPSEARCH_DATA_DIR": os.environ.get("HPSEARCH_DATA_DIR") or str(Path.cwd() / "hpsearch-data")}
    command = [str(hpsearch), "run", str(experiment), "--name", name, *(["--address", address] if address else [])]
    started = time.perf_counter()
    out = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"hpsearch run failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    result = json.loads((folder / "results" / name / "result.json").read_text())
    phases = {k: float(result["phases"].get(k, 0.0)) for k in PHASES}
    accounted = sum(phases.values())
    row = {"process_wall_s": wall, **phases, "imports_and_exit_s": wall - accounted,
           "trials": result["n_trials"], "search_core_s": result["search_core_s"]}
    row["overhead_s"] = wall - phases["search_s"] - phases["retrains_s"]
    row["allowed_s"] = 5.0 + 0.2 * phases["search_s"]
    row["meets_target"] = row["overhead_s"] <= row["allowed_s"]
    return row


@contextlib.contextmanager
def running_ray(ray: Path, cpus: int) -> Iterator[None]:
    """A Ray head started with ``ray start`` (the joined mode), stopped afterwards."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tempfile.mkdtemp(prefix="hps_", dir="/tmp")
    subprocess.run([str(ray), "start", "--head", f"--num-cpus={cpus}", "--include-dashboard=false",
                    f"--temp-dir={temp}"], env=env, check=True, capture_output=True, timeout=300)
    try:
        yield
    finally:
        subprocess.run([str(ray), "stop", "--force"], env=env, capture_output=True, timeout=300)
        shutil.rmtree(temp, ignore_errors=True)


def _kept_copy(experiment: Path, folder: Path) -> Path:
    """The experiment file with ``dataset.keep_loaded: true``, written into `folder`."""
    import yaml

    raw = yaml.safe_load(experiment.read_text())
    raw.setdefault("dataset", {})["keep_loaded"] = True
    path = folder / f"{experiment.stem}-kept.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _median(rows: list[dict[str, Any]], column: str) -> float:
    return statistics.median(float(r[column]) for r in rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path, default=Path("experiments/quick/naswot.yaml"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=("local", "joined", "joined-kept"),
                        default=["local", "joined", "joined-kept"])
    parser.add_argument("--baseline", type=Path, default=None,
                        help="the python of another installation to measure alongside (label: baseline)")
    parser.add_argument("--out", type=Path, default=Path("results/bench_study_overhead.json"))
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(Path(args.out), "bench_study_overhead.json")
    return args


def main() -> None:
    args = parse_args()
    experiment = args.experiment.resolve()
    installs = {"this": Path(sys.executable)}
    if args.baseline is not None:
        installs["baseline"] = args.baseline
    work = Path(tempfile.mkdtemp(prefix="hps_overhead_"))
    rows: list[dict[str, Any]] = []
    try:
        for number in range(args.rounds):
            for mode in args.modes:
                for label, python in installs.items():
                    name = f"overhead-{label}-{mode}-{number}"
                    hpsearch = python.with_name("hpsearch")
                    if mode == "joined":
                        with running_ray(python.with_name("ray"), os.cpu_count() or 1):
                            row = one_run(hpsearch, experiment, work, name, "auto")
                    elif mode == "joined-kept":
                        kept = _kept_copy(experiment, work)
                        with running_ray(python.with_name("ray"), os.cpu_count() or 1):
                            one_run(hpsearch, kept, work, name + "-loads", "auto")
                            row = one_run(hpsearch, kept, work, name, "auto")
                    else:
                        row = one_run(hpsearch, experiment, work, name, None)
                    rows.append({"install": label, "mode": mode, "round": number + 1, **row})
                    print(f"round {number + 1}/{args.rounds}, {mode}, {label}: {row['process_wall_s']:.1f} s",
                          flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    columns = ["process_wall_s", *PHASES, "imports_and_exit_s", "overhead_s", "allowed_s"]
    print(f"\n{experiment.name}: medians over {args.rounds} rounds, seconds (load average {os.getloadavg()[0]:.1f})")
    print("| " + " | ".join(["install", "mode", *columns, "target met (rounds)"]) + " |")
    print("|" + "---|" * (len(columns) + 3))
    summary = []
    for label in installs:
        for mode in args.modes:
            mine = [r for r in rows if r["install"] == label and r["mode"] == mode]
            medians = {c: _median(mine, c) for c in columns}
            met = sum(bool(r["meets_target"]) for r in mine)
            summary.append({"install": label, "mode": mode, **medians, "rounds_meeting_target": met,
                            "rounds": len(mine)})
            cells = [label, mode, *(f"{medians[c]:.2f}" for c in columns), f"{met}/{len(mine)}"]
            print("| " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"experiment": str(args.experiment), "installs": {k: str(v) for k, v in installs.items()},
                                    "summary": summary, "rows": rows, "load_average": os.getloadavg()},
                                   indent=2) + "\n")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
