"""hpsearch.parallel without Ray running: chunking and the progress helper."""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch import parallel


@pytest.mark.parametrize(("n_items", "n_chunks"), [(10, 3), (7, 7), (3, 8), (64, 4), (1, 1)])
def test_split_evenly_matches_numpy(n_items: int, n_chunks: int) -> None:
    items = list(range(n_items))
    expected = [list(c) for c in np.array_split(np.arange(n_items), n_chunks) if c.size]
    assert parallel.split_evenly(items, n_chunks) == expected


def test_split_evenly_of_nothing_is_nothing() -> None:
    assert parallel.split_evenly([], 4) == []


def test_disabled_progress_bar_counts_nothing() -> None:
    with parallel.progress_bar(10, enabled=False, label="x") as advance:
        assert advance(3) is None


def test_import_costs_no_ray() -> None:
    import subprocess
    import sys

    code = "import sys, hpsearch.parallel, hpsearch.scoring, hpsearch.descriptors.scan; assert 'ray' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
