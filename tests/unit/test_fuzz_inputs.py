"""Bad input, fuzzed: every random experiment file or damaged store ends in an hpsearch error.

Property-based (hypothesis): random keys, types, NaN/inf in experiment YAML; truncated,
byte-flipped and attribute-scrambled HDF5 stores. Either the input is accepted, or the error is
an :class:`~hpsearch.errors.HpsearchError` with a message; any other exception is a bug. A
store write that fails half-way (file-size limit in a child process) leaves the old store.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpsearch.config.experiment import load_experiment, parse_experiment, validate_experiment
from hpsearch.data.store import Snapshot, append_snapshots, open_store, write_store
from hpsearch.errors import HpsearchError
from hpsearch.physics import EnergyGrid

REPO = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((REPO / "experiments" / "quick" / "tpe.yaml").read_text())
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0, -1, "", "ReLU", "tpe", "default"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=10)
KEYS = ["name", "dataset", "search_space", "fixed", "strategy", "budget", "seed", "retrains", "naswot",
        "resources", "tracking", "training", "scheduler"]


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated_experiments(draw: st.DrawFn) -> Any:
    """The demo's valid experiment with 1-3 random edits: replace a value, drop a key, add a key."""
    tree = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(tree) if p]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = tree
        for step in path[:-1]:
            parent = parent[step]
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from([*KEYS, "n_layers", "low", "levels", "options", "extra"]))] = draw(values)
    return draw(st.one_of(st.just(tree), values)) if draw(st.integers(0, 9)) == 0 else tree


def _accepts_or_explains(call: Any) -> None:
    try:
        call()
    except HpsearchError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"


@FUZZ
@given(mutated_experiments())
def test_random_experiments_end_in_a_config_error(raw: Any) -> None:
    def check() -> None:
        validate_experiment(parse_experiment(raw, source="fuzz.yaml"))

    _accepts_or_explains(check)


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_random_files_end_in_a_config_error(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "fuzz.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    _accepts_or_explains(lambda: validate_experiment(load_experiment(path)))


def test_the_base_experiment_is_valid() -> None:
    validate_experiment(parse_experiment(copy.deepcopy(BASE)))  # the fuzzing starts from a valid file


# ----------------------------------------------------------------------------- stores


def _snapshot(name: str, seed: int) -> Snapshot:
    rng = np.random.default_rng(seed)
    return Snapshot(name=name, numbers=np.array([13, 13]), positions_angstrom=rng.uniform(0, 4, (2, 3)),
                    cell_angstrom=np.eye(3) * 4.0, pbc=np.ones(3, bool),
                    descriptors=rng.normal(size=(3, 2, 2, 5)).astype(np.float32),
                    ldos=rng.uniform(0, 1, (3, 2, 2, 4)).astype(np.float32),
                    energy_grid=EnergyGrid(offset_ev=-1.0, spacing_ev=0.5, n=4), temperature_k=300.0,
                    n_electrons=6.0, reference={"band_energy_ev": 1.5})


class Original:
    """The bytes of a valid two-snapshot store (a class, so that hypothesis does not print them)."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def __repr__(self) -> str:
        return f"Original({len(self.content)} bytes)"


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Original:
    path = write_store(tmp_path_factory.mktemp("fuzz") / "s.h5", [_snapshot("a", 0), _snapshot("b", 1)])
    return Original(path.read_bytes())


def _read_everything(path: Path) -> None:
    with open_store(path) as store:
        for name in store.names:
            store.read(name)
        store.summary_rows()
        store.attrs
        store.content_hash(recompute=True)


@FUZZ
@given(data=st.data())
def test_truncated_or_corrupted_stores_end_in_a_data_error(tmp_path: Path, original: Original, data: Any) -> None:
    content = bytearray(original.content)
    if data.draw(st.booleans(), label="truncate"):
        content = content[: data.draw(st.integers(0, len(content) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 16), label="flips")):
            at = data.draw(st.integers(0, len(content) - 1))
            content[at] = data.draw(st.integers(0, 255))
    path = tmp_path / "damaged.h5"
    path.write_bytes(bytes(content))
    _accepts_or_explains(lambda: _read_everything(path))


ROOT_ATTRS = ["names", "attrs", "format_version", "format", "content_sha256"]
SNAPSHOT_ATTRS = ["grid_shape", "temperature_k", "n_electrons", "energy_grid_offset_ev", "energy_grid_spacing_ev",
                  "energy_grid_n", "descriptor_settings", "provenance", "reference", "full_grid_shape", "grid_offset"]
attr_values = st.one_of(
    st.integers(-2**31, 2**31), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["[]", "[\"a\"]", "{}", "null", "[1, 2]", "\"x\"", "NaN"]),
    st.lists(st.integers(-5, 40), max_size=4).map(lambda v: np.asarray(v, dtype=np.int64)),
    st.lists(st.floats(allow_nan=True), min_size=1, max_size=4).map(np.asarray),
)


@FUZZ
@given(data=st.data())
def test_scrambled_attributes_end_in_a_data_error(tmp_path: Path, original: Original, data: Any) -> None:
    path = tmp_path / "scrambled.h5"
    path.write_bytes(original.content)
    with h5py.File(path, "r+") as handle:
        for _ in range(data.draw(st.integers(1, 3), label="edits")):
            if data.draw(st.booleans(), label="root"):
                target, key = handle, data.draw(st.sampled_from(ROOT_ATTRS))
            else:
                target = handle["snapshots"][data.draw(st.sampled_from(["a", "b"]))]
                key = data.draw(st.sampled_from(SNAPSHOT_ATTRS + ["<dataset>"]))
            if key == "<dataset>":
                dataset = data.draw(st.sampled_from(["numbers", "positions_angstrom", "cell_angstrom", "ldos"]))
                del target[dataset]
                target[dataset] = np.asarray(data.draw(st.lists(st.floats(allow_nan=True), max_size=6)))
            elif data.draw(st.integers(0, 4)) == 0:
                if key in target.attrs:
                    del target.attrs[key]
            else:
                target.attrs[key] = data.draw(attr_values)
    _accepts_or_explains(lambda: _read_everything(path))


def test_nan_temperature_in_a_store_is_named(tmp_path: Path, original: Original) -> None:
    path = tmp_path / "nan.h5"
    path.write_bytes(original.content)
    with h5py.File(path, "r+") as handle:
        handle["snapshots"]["b"].attrs["temperature_k"] = math.nan
    with open_store(path) as store, pytest.raises(HpsearchError, match=r"'b' has temperature_k = nan"):
        store.metadata("b")


def test_write_failing_half_way_leaves_the_old_store(tmp_path: Path) -> None:
    """A file-size limit (as a full disk) stops an append half-way: the old store stays, no temp file."""
    path = write_store(tmp_path / "store.h5", [_snapshot("a", 0)])
    before, hash_before = path.read_bytes(), open_store(path).content_hash()
    limit = len(before) + 2048  # the copy of the old snapshot fits, the big new one does not
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_fuzz_inputs import _snapshot
        from dataclasses import replace
        from hpsearch.data.store import append_snapshots
        from hpsearch.errors import DataError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        rng = np.random.default_rng(5)
        big = replace(_snapshot("big", 5), descriptors=rng.normal(size=(40, 20, 20, 5)).astype(np.float32),
                      ldos=rng.uniform(size=(40, 20, 20, 4)).astype(np.float32))
        try:
            append_snapshots({str(path)!r}, [big])
        except DataError as exc:
            print("DataError:", exc)
            sys.exit(3)
        sys.exit(0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "store is as it was before" in done.stdout
    assert path.read_bytes() == before
    with open_store(path) as store:
        assert store.names == ["a"] and store.content_hash(recompute=True) == hash_before
    assert [p.name for p in tmp_path.iterdir()] == ["store.h5"]  # the temporary file is gone
    append_snapshots(path, [_snapshot("b", 1)])  # and the store still takes appends
    with open_store(path) as store:
        assert store.names == ["a", "b"]
