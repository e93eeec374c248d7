"""Shared fixtures: the real Be2 data, a real local Ray, the small generated store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
# studies log to MLflow only in the tests that ask for it (tracking.enabled: true)
os.environ.setdefault("HPSEARCH_TRACKING", "off")

REPO_ROOT = Path(__file__).resolve().parents[1]
BE2_DIR = Path(os.environ.get("HPSEARCH_BE2_DIR", REPO_ROOT.parent / "shared" / "data" / "mala-be2"))
# the example plug-in's tests need it installed: tests/integration/test_plugin_install.py runs them
collect_ignore = ["plugin_example"]
# ray_local: the fixture hpsearch ships for plug-in tests too
pytest_plugins = ["hpsearch.testing.fixtures"]


@pytest.fixture(scope="session")
def be2_dir() -> Path:
    """The real Be2 DFT dataset (MALA format) at ../shared/data/mala-be2."""
    if not (BE2_DIR / "Be_snapshot0.out.npy").exists():
        pytest.fail(
            f"Be2 data not found at {BE2_DIR}: check out ../shared beside the repository "
            "or set HPSEARCH_BE2_DIR"
        )
    return BE2_DIR


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real MLflow tracking server on 127.0.0.1 with its own SQLite store (session scope)."""
    from hpsearch.tracking.server import start_server

    server = start_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small generated Al dataset (DatasetSettings.small()), generated once per session."""
    from hpsearch.testing.data import small_test_store

    return small_test_store(tmp_path_factory.mktemp("small-store"))
