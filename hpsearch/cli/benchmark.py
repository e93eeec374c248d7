"""Commands ``benchmark paper`` (every strategy of the paper's table 1) and ``demo`` (the short version)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Optional

import typer

from hpsearch import _env

benchmark_app = typer.Typer(help="Measured comparisons of the search strategies.", no_args_is_help=True)

#: Repeats of each strategy in `hpsearch demo` (`hpsearch benchmark paper --quick` runs 3).
DEMO_REPEATS = 2

_QUIET_LOGGERS = ("hpsearch.tune", "hpsearch.parallel", "hpsearch.tracking", "hpsearch.scoring", "hpsearch.model",
                  "hpsearch.data.splits", "hpsearch_searchers", "ray", "optuna")


def _console() -> Any:
    from hpsearch.cli.console import make_console

    return make_console()


def _quiet(verbose: bool) -> None:
    """Progress lines say what happens; the per-step INFO logs only with --verbose/-v."""
    if not verbose and logging.getLogger().level > logging.DEBUG:
        _env.set_defaults(_env.TUNE_QUIET)  # Tune's own console report (verbose=0: silent)
        import mlflow  # noqa: F401 - both configure their loggers on import: import first, then quieten
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("mlflow").setLevel(logging.ERROR)


def print_report(report: Any, console: Any) -> None:
    """The comparison table, the Kendall tau, the target check and where everything is."""
    from rich.table import Table

    from hpsearch.bench.report import rows_over_repeats

    head, rows = (rows_over_repeats(report.table, report.references, report.baselines)
                  if not report.table.empty else ([], []))
    view = Table(title=f"comparison over repeats, medians [bootstrap 95% CI] ({report.folder / 'comparison.md'})")
    for name in head:
        view.add_column(name)
    for row in rows:
        view.add_row(*row)
    console.print(view)
    console.print("Validation selected every winner; the test errors are the winners' retrains, tested once. "
                  "p: two-sided Wilcoxon signed-rank test of the paired test-error (or test LDOS RMSE) ratios (with "
                  "R repeats it cannot go below 2/2^R). The baselines are fitted once on the same split; a "
                  "strategy whose test LDOS RMSE is not below ridge's found nothing architecture can explain.")
    noise = report.noise
    if noise and math.isfinite(noise.get("ratio", math.nan)):
        console.print(f"noise floor: retrain seeds of one architecture spread by {noise['retrain_seed_std_mev_per_atom']:.3g}"
                      f" meV/atom (median std), the winners of all {noise['n_studies']} studies by "
                      f"{noise['between_winners_std_mev_per_atom']:.3g} (ratio {noise['ratio']:.2f})")
    if report.kendall is not None:
        k = report.kendall
        console.print(f"figure 5: Kendall tau(NASWOT score, error) = {k['tau_paper']:+.3f} on {k['n']} trained "
                      f"trials of {k['study']} (paper: {k['paper_tau']:+.3f})")
    print_verdict(report, console)
    for name, path in report.figures.items():
        console.print(f"{name}: {path}")
    console.print(f"summary: {report.folder / 'summary.json'}")


#: the fewest paired repeats with which the exact test of the verdict can reach p <= 0.05 (2/2^6)
MIN_DECIDING_REPEATS = 6


def print_verdict(report: Any, console: Any) -> None:
    """Whether the benchmark tells searches apart (TPE vs no search); the strategy claims and the
    target's met/missed only when it does, "not decidable" otherwise."""
    verdict = report.verdict
    if verdict is not None and verdict.n_pairs < MIN_DECIDING_REPEATS:
        console.print(f"ANECDOTE: {verdict.n_pairs} paired repeat(s) per strategy: no paired test can reach p <= "
                      f"{verdict.alpha:g} (the smallest possible p is {verdict.smallest_p:.3g}); this table illustrates, "
                      f"it does not compare (`hpsearch benchmark paper` runs {MIN_DECIDING_REPEATS})",
                      style="bold yellow", soft_wrap=True, markup=False)
    if verdict is not None:
        console.print(f"verdict: {verdict.text}", style="bold green" if verdict.decidable else "bold yellow",
                      soft_wrap=True, markup=False)
        if verdict.decidable:
            for claim in report.claims:
                console.print(f"  {claim}", soft_wrap=True, markup=False)
        else:
            console.print("strategy claims: not decidable", style="bold yellow")
    if report.target is not None:
        decided = report.target.decidable
        style = ("bold green" if report.target.passed else "bold yellow") if decided else "yellow"
        console.print(report.target.verdict, style=style, soft_wrap=True, markup=False)


def _ui_link(report: Any) -> str:
    """The runs table of the benchmark's MLflow experiment (MLflow 3 opens a GenAI page otherwise)."""
    import json

    from hpsearch.tracking.server import runs_table_link

    try:
        name = json.loads((report.folder / "summary.json").read_text())["mlflow_experiment"]
    except (OSError, ValueError, KeyError, TypeError):
        return str(report.server_url)
    return runs_table_link(str(report.server_url), str(name))


def _print_server(report: Any, out: Path, console: Any) -> None:
    from hpsearch.tracking.server import answers_as_mlflow  # the benchmark's own server is stopped at its end

    if report.server_pid is not None:
        console.print(f"MLflow UI: {_ui_link(report)}  (experiment with every study; stop the server with "
                      f"`kill -TERM -{report.server_pid}`)", style="bold", soft_wrap=True)
    elif report.server_url and report.server_url.startswith("http") and answers_as_mlflow(str(report.server_url)):
        console.print(f"MLflow UI: {_ui_link(report)}", style="bold", soft_wrap=True)
    else:
        console.print(f"MLflow store: {out / 'mlflow'} (the benchmark's own server has stopped; --keep-ui keeps "
                      f"it); browse it with `hpsearch ui --folder {out / 'mlflow'}`", soft_wrap=True)


def paper(
    out: Path = typer.Option(Path("results/paper"), "--out", "-o", help="Results folder (studies, table, figures)."),
    quick: bool = typer.Option(False, "--quick", help="The short comparison of experiments/quick/ (the demo's)."),
    strategies: Optional[list[str]] = typer.Option(
        None, "--strategy", "-s", help="Run only these (file stems: null, naswot, naswot-optimized, tpe-pruner, "
        "oat, direct, tpe, random-asha, tpe-asha, naswot-halving); repeat the option. Without tpe and null the "
        "report cannot say whether the benchmark tells searches apart."),
    experiments: Optional[Path] = typer.Option(None, "--experiments", help="Folder of the experiment files."),
    address: Optional[str] = typer.Option(None, help="Ray address: 'auto' or 'ray://host:10001' (default: local)."),
    mlflow_experiment: Optional[str] = typer.Option(None, "--mlflow-experiment", help="MLflow experiment name."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace earlier studies in the results folder."),
    resume: bool = typer.Option(False, "--resume", help="Keep the studies an earlier run finished (same settings) "
                                "and run the rest: a long benchmark can run in pieces."),
    keep_ui: bool = typer.Option(False, "--keep-ui", help="Leave the MLflow server it starts running."),
    verbose: bool = typer.Option(False, "--log", help="Show the INFO logs of every step."),
    repeats: Optional[int] = typer.Option(None, "--repeats", "-r", help="Studies per strategy, with different "
                                          "search seeds (default: 6, the fewest that can decide; 2 with --quick)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Run on this store instead of the experiment "
                                         "files' (e.g. imported MALA/QE data, a GPAW store), for every strategy."),
    split: Optional[str] = typer.Option(None, "--split", help="TRAIN:VALIDATION:TEST snapshot counts (4:2:4) or "
                                        "names (s0,s1:s2:s3); default with --store: about 40% test, 20% "
                                        "validation, in store order."),
    parallel_studies: Optional[int] = typer.Option(
        None, "--parallel-studies", min=1, help="Studies at once (default: 1 on this machine; with --address, "
        "as many as the cluster's CPUs hold: CPUs / (cpus per trial x max_concurrent))."),
) -> None:
    """Run every strategy of the paper's table 1 R times, retrain each winner, compare them (MLflow + files)."""
    from hpsearch.bench import BenchmarkSettings, resolve_data, run_paper_benchmark

    _quiet(verbose)
    console = _console()
    settings = BenchmarkSettings(out=out, quick=quick, strategies=tuple(strategies) if strategies else None,
                                 experiments_dir=experiments, mlflow_experiment=mlflow_experiment, address=address,
                                 overwrite=overwrite, resume=resume, keep_server=keep_ui, repeats=repeats,
                                 store=store, split=split, parallel_studies=parallel_studies)
    console.print(f"benchmark: {', '.join(settings.names)}, {settings.n_repeats} repeats each -> {out}", style="bold")
    console.print(resolve_data(settings).describe(), soft_wrap=True, markup=False)
    report = run_paper_benchmark(settings)
    print_report(report, console)
    _print_server(report, out, console)


def _generate_in_child(path: Path) -> Path:
    """The default dataset, generated in a child process (see hpsearch.data.generate.ensure_dataset)."""
    from hpsearch.data.generate import ensure_dataset

    return ensure_dataset(None, path)


def demo(
    out: Path = typer.Option(Path("results/demo"), "--out", "-o", help="Results folder of the demo."),
    verbose: bool = typer.Option(False, "--log", help="Show the INFO logs of every step."),
) -> None:
    """Generate the default dataset, run the short comparison, print the table and the MLflow UI URL."""
    from hpsearch.bench import BenchmarkSettings, run_paper_benchmark
    from hpsearch.data.generate import default_store_path

    _quiet(verbose)
    console = _console()
    started = time.perf_counter()
    console.rule("step 1/2: the default dataset (Be at 1000 K, Quantum ESPRESSO LDOS, SNAP descriptors)")
    path = _generate_in_child(default_store_path())
    console.print(f"dataset: {path} ({time.perf_counter() - started:.0f} s)")
    console.rule("step 2/2: the short comparison (no search, naswot, tpe + naswot-pruner, oat, tpe)")
    # the quick benchmark's two repeats: an anecdote, and the report says so
    settings = BenchmarkSettings(out=out, quick=True, overwrite=True, keep_server=True, repeats=DEMO_REPEATS)
    report = run_paper_benchmark(settings)
    print_report(report, console)
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s; the full benchmark: "
                  "`hpsearch benchmark paper`")
    _print_server(report, out, console)


def register(app: typer.Typer) -> None:
    """Add the ``benchmark`` group (``paper``) and the top-level ``demo``."""
    benchmark_app.command("paper")(paper)
    app.add_typer(benchmark_app, name="benchmark")
    app.command("demo")(demo)
