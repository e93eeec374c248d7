"""The architecture is enforced: lower layers never import higher ones, the core never imports
the strategies (import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    command = [str(linter) if linter.exists() else shutil.which("lint-imports") or "lint-imports", "--no-cache"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"import contracts broken:\n{done.stdout}\n{done.stderr}")
    assert "2 kept, 0 broken" in done.stdout


def test_core_runs_without_the_strategies_package_imported() -> None:
    code = "import sys, hpsearch.api, hpsearch.cli; assert not [m for m in sys.modules if m.startswith(('searchers', 'hpsearch_searchers'))], sorted(m for m in sys.modules if 'searchers' in m)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
