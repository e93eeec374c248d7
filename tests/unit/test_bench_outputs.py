"""Benchmark scripts write only under their --out (a folder or a .json file, checked before any
work) and leave their inputs alone: the argument handling of every script, and a tiny end-to-end
run of bench_streaming on a small store whose folder must not change."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
#: script -> (default JSON name, the other arguments it needs)
SCRIPTS = {
    "bench_acsd": ("bench_acsd.json", []),
    "bench_acsd_figure7": ("bench_acsd_figure7.json", []),
    "bench_auto_choice": ("bench_auto_choice.json", ["some-study"]),
    "bench_engine_validation": ("engine_validation.json", []),
    "bench_naswot": ("bench_naswot.json", []),
    "bench_proxies": ("bench_proxies.json", []),
    "bench_scaling": ("bench_scaling.json", []),
    "bench_streaming": ("bench_streaming.json", []),
    "bench_study_overhead": ("bench_study_overhead.json", []),
    "bench_training": ("bench_training.json", []),
    "bench_trial_overhead": ("bench_trial_overhead.json", []),
    "bench_trial_profile": ("bench_trial_profile.json", []),
    "code_metrics": ("code_metrics.json", []),
}


def _script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their helper _outputs
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json_path(args: object) -> Path:
    return Path(getattr(args, "json", None) or getattr(args, "out"))


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_out_is_a_folder_or_a_json_file_checked_before_any_work(name: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    default, extra = SCRIPTS[name]
    script = _script(name, monkeypatch)
    folder = tmp_path / "results"
    as_folder = script.parse_args([*extra, "--out", str(folder)])
    assert _json_path(as_folder) == folder.resolve() / default
    as_file = script.parse_args([*extra, "--out", str(tmp_path / "mine.json")])
    assert _json_path(as_file) == (tmp_path / "mine.json").resolve()
    assert list(tmp_path.iterdir()) == []  # parsing wrote nothing
    (tmp_path / "notes.txt").write_text("a user's file")
    with pytest.raises(SystemExit):
        script.parse_args([*extra, "--out", str(tmp_path / "notes.txt")])  # neither a folder nor a .json file
    with pytest.raises(SystemExit):
        script.parse_args([*extra, "--out", str(tmp_path / "notes.txt" / "inside")])


def test_streaming_scratch_goes_under_the_output_and_the_old_data_folder_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _script("bench_streaming", monkeypatch)
    args = script.parse_args(["--out", str(tmp_path / "out" / "streaming.json")])
    assert args.work == (tmp_path / "out" / "streaming-work").resolve()
    with pytest.raises(SystemExit):
        script.parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        script.parse_args(["--store", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "out")])


def test_engine_validation_keeps_generated_stores_under_the_output(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    script = _script("bench_engine_validation", monkeypatch)
    args = script.parse_args(["--out", str(tmp_path / "ev.json")])
    assert args.out == tmp_path.resolve() and args.data_dir == tmp_path.resolve() / "stores"


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.ray
def test_streaming_end_to_end_leaves_the_input_folder_unchanged(small_store: Path, tmp_path: Path) -> None:
    data = tmp_path / "my-data"
    data.mkdir()
    store = data / "al.h5"
    store.write_bytes(small_store.read_bytes())
    before = _snapshot(data)
    out = tmp_path / "out"  # a folder: the JSON goes inside
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(BENCHMARKS / "bench_streaming.py"), "--store", str(store), "--out", str(out),
               "--big-tile", "1,1,1", "--big-copies", "2", "--small-tile", "1,1,1", "--epochs", "1",
               "--study-epochs", "1", "--rounds", "1", "--object-store-mb", "100", "--budget-gb", "0.001",
               "--chunk-points", "1024", "--batch-size", "64", "--width", "8"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert _snapshot(data) == before  # the user's folder: nothing written, nothing changed
    assert (out / "bench_streaming.json").is_file()
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")}
    assert written == {"my-data", "out"}  # nothing beside the output
    assert sorted(p.name for p in (out / "bench_streaming-work").glob("*.h5")) == ["al-x1x1x1-c1.h5", "al-x1x1x1-c2.h5"]
