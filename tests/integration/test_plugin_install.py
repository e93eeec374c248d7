"""The example plug-in of the README (tests/plugin_example/) installs with pip, passes the
conformance suite from its installed copy, and is found by name; the README shows its files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "plugin_example"
FILES = ("pyproject.toml", "hpsearch_neighbours.py", "test_neighbours.py")


def test_the_readme_shows_the_example_files_as_they_are() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = dict(re.findall(r"<!-- file: tests/plugin_example/(\S+) -->\n```\w*\n(.*?)```", readme, re.S))
    assert sorted(blocks) == sorted(FILES), "the README shows each file of tests/plugin_example once"
    for name in FILES:
        assert blocks[name] == (EXAMPLE / name).read_text(encoding="utf-8"), f"README block of {name} drifted"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_installed_plugin_passes_conformance_and_is_found_by_name(tmp_path: Path) -> None:
    source, target, tests = tmp_path / "src", tmp_path / "site", tmp_path / "tests"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__"))
    tests.mkdir()
    shutil.copy(EXAMPLE / "test_neighbours.py", tests)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # offline, nothing installed into the shared environment: the plug-in goes to a folder of its own
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "--target", str(target), str(source)], tmp_path, env)
    assert (target / "hpsearch_neighbours.py").exists()
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # the conformance suite on the installed copy (the tests marked `ray` need a ray_local fixture)
    done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not ray",
                 "--rootdir", str(tests), str(tests / "test_neighbours.py")], tests, env)
    assert re.search(r"\b(\d+) passed", done.stdout) and " failed" not in done.stdout, done.stdout
    code = ("import hpsearch_neighbours\n"
            "from hpsearch.config.registry import load_strategy\n"
            "cls = load_strategy('neighbours')\n"
            "assert cls is hpsearch_neighbours.NeighboursStrategy\n"
            "assert hpsearch_neighbours.__file__.startswith(%r), hpsearch_neighbours.__file__\n" % str(target))
    _run([sys.executable, "-c", code], tmp_path, env)
    listed = _run([sys.executable, "-m", "hpsearch.cli", "searchers"], tmp_path, env)
    assert "neighbours" in listed.stdout, listed.stdout
