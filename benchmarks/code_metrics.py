"""Size and typing figures of the package's own code, for before/after notes of a redesign.

Prints a table and writes JSON: files over 300 lines, functions over 50 lines, functions
whose return annotation is ``Any``, ``type: ignore`` comments, and import cycles are left to
``lint-imports``.  Usage: ``python benchmarks/code_metrics.py [--out results/code_metrics.json]``.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

from _outputs import output_paths

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hpsearch", "searchers")


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def measure() -> dict[str, object]:
    long_files: list[tuple[str, int]] = []
    long_functions: list[tuple[str, int]] = []
    any_returns: list[str] = []
    ignores = 0
    lines_total = 0
    for path in _sources():
        text = path.read_text()
        rel = str(path.relative_to(ROOT))
        n_lines = len(text.splitlines())
        lines_total += n_lines
        ignores += text.count("type: ignore")
        if n_lines > 300:
            long_files.append((rel, n_lines))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 50:
                    long_functions.append((f"{rel}:{node.name}", length))
                ret = node.returns
                if ret is not None and ast.unparse(ret) in ("Any", "typing.Any"):
                    any_returns.append(f"{rel}:{node.name}")
    return {
        "files": len(_sources()),
        "lines": lines_total,
        "files_over_300_lines": sorted(long_files, key=lambda x: -x[1]),
        "functions_over_50_lines": sorted(long_functions, key=lambda x: -x[1]),
        "any_return_types": any_returns,
        "type_ignores": ignores,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="results/code_metrics.json")
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(ROOT / args.out, "code_metrics.json")  # relative: to the checkout
    return args


def main() -> None:
    args = parse_args()
    m = measure()
    rows = [
        ("python files", m["files"]),
        ("lines", m["lines"]),
        ("files over 300 lines", len(m["files_over_300_lines"])),  # type: ignore[arg-type]
        ("functions over 50 lines", len(m["functions_over_50_lines"])),  # type: ignore[arg-type]
        ("functions returning Any", len(m["any_return_types"])),  # type: ignore[arg-type]
        ("type: ignore comments", m["type_ignores"]),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(m, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
