"""pytest fixtures shipped for plug-in tests: add ``pytest_plugins = ["hpsearch.testing.fixtures"]``
to a ``conftest.py`` and the conformance tests marked ``ray`` find the Ray they need."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """A real local Ray with 2 CPUs for the session, its temp dir short (socket paths), private
    and removed afterwards; yields the ``ray`` module."""
    from hpsearch import _env
    from hpsearch.parallel import import_ray

    ray = import_ray()
    _env.ray_defaults()
    temp_dir = tempfile.mkdtemp(prefix="hpsray_", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
