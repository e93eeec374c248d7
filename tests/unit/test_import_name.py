"""The installed strategies live under the import name ``hpsearch_searchers`` (from the folder
``searchers/``): a user's own package called ``searchers`` cannot shadow them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_users_searchers_package_does_not_shadow_the_strategies(tmp_path: Path) -> None:
    own = tmp_path / "searchers"
    own.mkdir()
    (own / "__init__.py").write_text("MINE = True\n")
    code = (
        "import searchers, hpsearch_searchers.grid\n"
        "from hpsearch.config.registry import load_strategy\n"
        "assert searchers.MINE\n"
        "for name in ('grid', 'oat', 'tpe', 'naswot', 'naswot-halving'):\n"
        "    cls = load_strategy(name)\n"
        "    assert cls.__module__.startswith('hpsearch_searchers.'), cls.__module__\n"
        "print('ok')\n"
    )
    # the user's folder first on sys.path, as when they run python in it
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "hpsearch").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert "hpsearch_searchers" in listed
