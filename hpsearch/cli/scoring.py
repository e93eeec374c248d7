"""``hpsearch naswot-study``: does the NASWOT score rank trained networks? (the paper's figure 5)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from hpsearch.errors import ConfigError

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the ``naswot-study`` command to the main app."""
    app.command("naswot-study")(naswot_study)
    app.command("proxy-study")(proxy_study)


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r} is not a comma-separated list of integers, e.g. 16,32,64") from exc
    if not values or min(values) < 1:
        raise ConfigError(f"{option} {text!r} needs positive integers, e.g. 16,32,64")
    return values


def _default_store() -> Path:
    try:
        from hpsearch.data.generate import ensure_dataset
    except ImportError as exc:
        raise ConfigError(
            "no --store given and the embedded dataset generator is not available: pass a store, "
            "e.g. one made by `hpsearch data import-mala`"
        ) from exc
    return ensure_dataset()


def naswot_study(
    store: Annotated[Optional[Path], typer.Option(help="Snapshot store (default: the embedded dataset).")] = None,
    trials: Annotated[Optional[Path], typer.Option(
        help="CSV of already trained trials (score, error[, init_scores_paper]): only compute tau and plot.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder for trials.csv, naswot_study.json, PNG.")] = Path(
        "results/naswot_study"),
    architectures: Annotated[int, typer.Option("--architectures", "-k", help="How many to sample and train.")] = 24,
    n_init: Annotated[int, typer.Option(help="Initialisations per architecture (eq. 14).")] = 5,
    batch_size: Annotated[int, typer.Option(help="NASWOT batch: at most the number of features.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of sampling, batch and initialisations.")] = 0,
    depths: Annotated[str, typer.Option(help="Hidden-layer counts, comma-separated.")] = "1,2,3",
    widths: Annotated[str, typer.Option(help="Widths per hidden layer, comma-separated.")] = "16,32,64,128",
    activations: Annotated[str, typer.Option(help="Activations, comma-separated.")] = "ReLU,LeakyReLU,Sigmoid,Tanh",
    max_epochs: Annotated[int, typer.Option(help="Training budget per architecture.")] = 20,
    patience: Annotated[int, typer.Option(help="Early-stopping patience (epochs).")] = 5,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    train_batch_size: Annotated[int, typer.Option(help="Training mini-batch size.")] = 512,
    error_label: Annotated[str, typer.Option(help="Axis label of the error (with --trials).")] = (
        "band-energy error (meV/atom)"),
) -> None:
    """Kendall tau between NASWOT score and trained band-energy error, with the scatter plot.

    With --trials, analyse given trials; otherwise sample K architectures from the space, score
    them (NASWOT mean score), train each with a small budget and evaluate it on the test snapshots.
    """
    from hpsearch.scoring.study import naswot_error_study, read_trials_csv

    if trials is not None:
        pairs, labels = read_trials_csv(trials)
        study = naswot_error_study(pairs, out / "naswot_error.png", labels=labels, error_label=error_label)
        out.mkdir(parents=True, exist_ok=True)
        (out / "naswot_study.json").write_text(json.dumps(study.to_dict(), indent=2, default=str))
    else:
        from hpsearch.model import TrainingSettings
        from hpsearch.scoring.experiment import ArchitectureSpace, run_naswot_study

        space = ArchitectureSpace(
            depths=_ints(depths, "--depths"), widths=_ints(widths, "--widths"),
            activations=tuple(a.strip() for a in activations.split(",") if a.strip()),
        )
        settings = TrainingSettings(max_epochs=max_epochs, patience=patience, learning_rate=learning_rate,
                                    batch_size=train_batch_size, seed=seed)
        study = run_naswot_study(store or _default_store(), out, space=space, n_architectures=architectures,
                                 n_init=n_init, batch_size=batch_size, seed=seed, settings=settings)
    typer.echo(study.summary())
    typer.echo(f"figure: {study.figure_path}  table/json: {out}")


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(v.strip() for v in text.split(",") if v.strip())


def _split(text: str | None) -> dict[str, int]:
    """``TRAIN:VALIDATION:TEST`` snapshot counts -> the study config's n_train, n_validation, n_test."""
    if text is None:
        return {}
    parts = text.split(":")
    try:
        counts = [int(v) for v in parts]
    except ValueError:
        counts = []
    if len(counts) != 3 or min(counts, default=-1) < 0:
        raise ConfigError(f"--split {text!r} is not TRAIN:VALIDATION:TEST snapshot counts, e.g. 2:1:1")
    return dict(zip(("n_train", "n_validation", "n_test"), counts, strict=True))


def proxy_study(
    store: Annotated[Optional[str], typer.Option(help="Store path, 'default' or 'small' (generated).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file of ProxyStudyConfig keys.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder: table, CSV, JSON, PNG.")] = Path("results/proxy_study"),
    architectures: Annotated[Optional[int], typer.Option("--architectures", "-n",
                                                         help="How many to sample and train (default 48).")] = None,
    exhaustive: Annotated[bool, typer.Option(
        "--exhaustive",
        help="Train every depth x width x activation (one width for all layers), not a sample.")] = False,
    depths: Annotated[Optional[str], typer.Option(help="Hidden-layer counts, comma-separated (default 1,2,3).")] = None,
    widths: Annotated[Optional[str], typer.Option(help="Widths, comma-separated (default 16,32,64,128).")] = None,
    activations: Annotated[Optional[str], typer.Option(help="Activations, comma-separated.")] = None,
    split: Annotated[Optional[str], typer.Option(
        help="TRAIN:VALIDATION:TEST snapshot counts in store order, as a search splits them, e.g. 2:1:1; "
             "the test ones are never loaded (default: the last 3/8 validate, no test part).")] = None,
    proxies: Annotated[Optional[str], typer.Option(help="Proxies, comma-separated (default: all).")] = None,
    ensemble: Annotated[Optional[list[str]], typer.Option(
        help="A rank-average ensemble, comma-separated members; repeat for several.")] = None,
    n_init: Annotated[Optional[int], typer.Option(help="Initialisations per architecture (default 5).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of sampling, batch and initialisations.")] = None,
    max_epochs: Annotated[Optional[int], typer.Option(help="Epoch cap per training (default 200).")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Early-stopping patience (default 10).")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Adam learning rate (default 1e-3).")] = None,
    train_batch_size: Annotated[Optional[int], typer.Option(help="Training mini-batch (default 512).")] = None,
    lr_schedule: Annotated[Optional[str], typer.Option(
        help="plateau: learning rate x 0.3 after 4 epochs without improvement, so trainings converge (default: "
             "constant).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Trainings in parallel processes (default 1).")] = None,
    report_test: Annotated[bool, typer.Option(
        "--report-test", help="Also evaluate every trained network once on the held-out test part and add tau "
        "against the test errors (a report; the calibration itself stays on validation).")] = False,
    tracking: Annotated[Optional[bool], typer.Option("--tracking/--no-tracking",
                                                     help="Log to MLflow (default: on).")] = None,
) -> None:
    """Which training-free proxy ranks trained networks on this data? Per proxy and ensemble: Kendall
    tau against the VALIDATION LDOS RMSE (bootstrap 95 % CI; the band-energy tau beside it), the rank
    of its top-1 among all trained architectures, the best rank in its top 5, the regret of its top-1.

    Trains every architecture with early stopping (default: patience 10, at most 200 epochs); params
    and both NASWOT signs (naswot = the paper's, naswot-v1) are always in the table. On real data,
    e.g. `hpsearch data import-mala DIR -o be2.h5 --energy-grid -5:2.5:11` then
    `hpsearch proxy-study --store be2.h5 --exhaustive --split 2:1:1`.
    """
    from hpsearch.api import proxy_study as run

    overrides = {key: value for key, value in {
        "store": store, "n_architectures": architectures, "proxies": _names(proxies), "n_init": n_init,
        "seed": seed, "max_epochs": max_epochs, "patience": patience, "tracking": tracking,
        "ensembles": tuple(_names(e) for e in ensemble) if ensemble else None,
        "architectures": "all" if exhaustive else None,
        "depths": _ints(depths, "--depths") if depths else None,
        "widths": _ints(widths, "--widths") if widths else None, "activations": _names(activations),
        "learning_rate": learning_rate, "train_batch_size": train_batch_size, "workers": workers,
        "lr_schedule": lr_schedule, "report_test": True if report_test else None, **_split(split),
    }.items() if value is not None}
    study = run(config, out, **overrides)
    from hpsearch.scoring.proxy_report import markdown_table

    typer.echo(markdown_table(study))
    best = study.best(1)
    if best:
        typer.echo(f"best: {best[0].name} (tau {best[0].tau:+.3f}, 95% CI {best[0].tau_ci[0]:+.2f} .. "
                   f"{best[0].tau_ci[1]:+.2f}; top-1 rank {best[0].top1_rank:g} of {best[0].n}); files in {out}")
