"""Every environment variable hpsearch sets, in one place, each set by an explicit call.

Ray, Tune, MLflow and LAMMPS read these variables when they start, so hpsearch sets them at the
entry points that start those services (the command line, starting Ray, building a Tuner,
opening a tracker), never on import, and only where the user has not set them already
(``setdefault``): a value in the user's environment always wins.

Example::

    from hpsearch import _env

    _env.ray_defaults()            # before ray.init
    with _env.scoped(_env.one_thread_per_process()):
        ...                        # worker processes started here inherit one BLAS thread
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping

#: A local Ray without token auth and usage statistics.
RAY = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
#: Strict metric checking off (per-epoch reports carry no band-energy error; a pruned trial never
#: has one); the experiment state saved at least every second (a killed driver loses little).
TUNE = {"TUNE_DISABLE_STRICT_METRIC_CHECKING": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"}
#: Tune's newer console output ignores verbose=0 (it prints a configuration box, the results
#: folder and a TensorBoard hint); the classic output prints nothing at verbose=0.
TUNE_QUIET = {"RAY_AIR_NEW_OUTPUT": "0"}
#: MLflow's INFO lines (database set-up, run links) say nothing a user acts on.
MLFLOW_QUIET = {"MLFLOW_LOGGING_LEVEL": "WARNING"}
#: Thread pools of OpenMP and the BLAS libraries, for processes that should use one core each.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def set_defaults(values: Mapping[str, str]) -> None:
    """Set each variable of ``values`` that the environment does not hold yet."""
    for name, value in values.items():
        os.environ.setdefault(name, value)


def ray_defaults() -> None:
    """Before ``ray.init``: a local Ray without token auth or usage statistics."""
    set_defaults(RAY)


def tune_defaults(quiet: bool) -> None:
    """Before a Tuner is built: Tune's checks and checkpoint period; its console output off when quiet."""
    set_defaults(TUNE)
    if quiet:
        set_defaults(TUNE_QUIET)


def mlflow_client_defaults(max_retries: int = 2, timeout_s: int = 10) -> None:
    """Short MLflow HTTP retries (its defaults wait minutes) and no run links printed to stdout."""
    set_defaults({
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    })


def command_line_defaults(width: int, verbose: bool) -> None:
    """The command line's settings: table width (``--width``, overrides COLUMNS), MLflow quiet unless verbose."""
    if width > 0:
        os.environ["COLUMNS"] = str(width)
    if not verbose:
        set_defaults(MLFLOW_QUIET)


def openmp_threads(threads: int) -> None:
    """OpenMP threads of libraries that read ``OMP_NUM_THREADS`` when they start (LAMMPS)."""
    set_defaults({"OMP_NUM_THREADS": str(threads)})


def one_thread_per_process() -> dict[str, str]:
    """The variables that give a process one OpenMP/BLAS thread (for :func:`scoped`)."""
    return {name: "1" for name in THREAD_VARIABLES}


@contextlib.contextmanager
def scoped(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in the environment while the block runs (processes it spawns inherit them);
    the previous values are restored afterwards."""
    with preserved(values):
        os.environ.update(values)
        yield


@contextlib.contextmanager
def preserved(names: Iterable[str]) -> Iterator[None]:
    """The variables ``names`` as they were before the block, whatever code inside it wrote
    (e.g. ``mlflow.set_tracking_uri``, which exports ``MLFLOW_TRACKING_URI``)."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
