"""The ``hpsearch`` command line. Each sub-module registers its commands on the main app."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from hpsearch import _env
from hpsearch.errors import HpsearchError

app = typer.Typer(
    name="hpsearch",
    help="Distributed, training-free hyperparameter search for LDOS surrogate networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Modules that define commands; each has ``register(app)``.
_COMMAND_MODULES = ("data", "generate", "search", "scoring", "descriptors", "tracking", "benchmark")


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(f"hpsearch.cli.{name}").register(app)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
    width: int = typer.Option(0, "--width", help="Columns of printed tables [default: COLUMNS, the terminal, or 200]."),
) -> None:
    _env.command_line_defaults(width, verbose)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from hpsearch.cli.console import OnceFilter

    once = OnceFilter()
    for handler in logging.getLogger().handlers:
        # only the console handler of basicConfig (not handlers others installed, e.g. pytest's
        # capture), and once: a process that runs several commands does not stack filters
        if type(handler) is logging.StreamHandler and not any(isinstance(f, OnceFilter) for f in handler.filters):
            handler.addFilter(once)


_register_all()


def main() -> None:
    """Console entry point: user errors become one clear message and exit code 2."""
    try:
        app()
    except HpsearchError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        _exit(2)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            typer.echo(exc.code, err=True)
        _exit(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
    _exit(0)


def _exit(code: int) -> None:
    """End the process once the exit handlers ran (Ray's shutdown, logging's flush, ...).

    The interpreter's own teardown after them (freeing the modules of torch, Ray's core worker
    and the rest) took about 2 s per command on a 2-core machine and does nothing a user needs:
    every file is closed and MLflow's journal is drained before a command returns.
    """
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to say
            pass
    os._exit(code)
