"""Where a benchmark script writes: only under its ``--out``, given as a folder or a .json file.

A folder gets the JSON inside it (under the script's default name); a .json file gets the other
files (figures, generated stores, study folders) in its folder, in a ``<stem>-work`` subfolder
for scratch. Checked before any work, so a wrong ``--out`` fails at once instead of after an
hour; inputs (``--store``, ``--data``, ``--study``) are only ever read.

Example::

    folder, json_path = output_paths(args.out, "bench_streaming.json")
    work = work_folder(json_path)          # <folder>/bench_streaming-work
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["output_paths", "work_folder"]


def output_paths(out: Path, default_name: str) -> tuple[Path, Path]:
    """(folder, JSON file) of `out`: a .json file and its folder, or a folder and the JSON
    `default_name` inside it. SystemExit (before any work) when `out` cannot be either."""
    out = Path(out).expanduser()
    if out.suffix == ".json":
        if out.is_dir():
            raise SystemExit(f"--out {out} is a folder named like a JSON file: give another folder or a .json file")
        folder, json_path = out.parent, out
    else:
        if out.exists() and not out.is_dir():
            raise SystemExit(f"--out {out} is a file but not a .json file: give a folder or a path ending in .json")
        folder, json_path = out, out / default_name
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise SystemExit(f"--out {out}: {parent} is a file, so no folder can be made there: choose another --out")
            break
    return folder.resolve(), json_path.resolve()


def work_folder(json_path: Path) -> Path:
    """The scratch folder of a run, next to its JSON file: ``<folder>/<stem>-work``."""
    return json_path.parent / f"{json_path.stem}-work"
