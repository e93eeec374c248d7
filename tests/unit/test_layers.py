"""The architecture is enforced: lower layers never import higher ones, no import circles inside
a package, the core never imports the strategies (import-linter contracts in pyproject.toml);
Ray is imported only by hpsearch.tune and hpsearch.parallel; one module sets environment variables."""

from __future__ import annotations

import ast
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
    assert "3 kept, 0 broken" in done.stdout


def test_core_runs_without_the_strategies_package_imported() -> None:
    code = "import sys, hpsearch.api, hpsearch.cli; assert not [m for m in sys.modules if m.startswith(('searchers', 'hpsearch_searchers'))], sorted(m for m in sys.modules if 'searchers' in m)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


#: The only places of the core that may import Ray when they run.
RAY_PLACES = ("hpsearch/tune/", "hpsearch/parallel.py")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import that runs (those under ``if TYPE_CHECKING:`` do not)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _core_files() -> list[tuple[str, ast.AST]]:
    return [(path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path)))
            for path in sorted((ROOT / "hpsearch").rglob("*.py"))]


def test_ray_is_imported_only_by_tune_and_parallel() -> None:
    offenders = [f"{name}:{line} imports {module}"
                 for name, tree in _core_files() if not name.startswith(RAY_PLACES)
                 for line, module in _runtime_imports(tree) if module == "ray" or module.startswith("ray.")]
    assert not offenders, "Ray outside hpsearch.tune / hpsearch.parallel:\n" + "\n".join(offenders)


def test_the_check_sees_lazy_imports_and_skips_type_checking_blocks() -> None:
    code = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ray\n"
            "def f():\n    from ray import tune\n    return tune\n")
    assert _runtime_imports(ast.parse(code)) == [(1, "typing"), (5, "ray")]


def test_only_hpsearch_env_writes_the_environment() -> None:
    writes = ("setdefault", "update", "pop", "__setitem__", "__delitem__")
    offenders = []
    for name, tree in _core_files():
        if name == "hpsearch/_env.py":
            continue
        for node in ast.walk(tree):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in writes:
                target = node.func.value
            elif isinstance(node, (ast.Assign, ast.Delete)):
                targets = node.targets
                target = next((t.value for t in targets if isinstance(t, ast.Subscript)), None)
            if isinstance(target, ast.Attribute) and target.attr == "environ":
                offenders.append(f"{name}:{node.lineno}")
    assert not offenders, "os.environ written outside hpsearch/_env.py: " + ", ".join(offenders)
