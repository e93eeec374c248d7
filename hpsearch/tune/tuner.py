"""Build and restore a Ray Tune ``Tuner`` from a strategy, an optional scheduler and a trainable.

Rules every study follows (see PITFALLS.md):

- ``num_samples`` is the strategy's count capped by the budget (-1 with no cap: until the
  searcher returns FINISHED);
- ``reuse_actors=True`` (about 1 s less overhead per trial);
- strict metric checking is off: per-epoch reports carry no band-energy error, and a trial the
  NASWOT pruner stops on its first report never has one (its searcher records it as pruned);
- the scheduler's ``trial_flags`` (e.g. ``{"_naswot": True}``) reach every trial through the
  param space, which holds only constants.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch import _env
from hpsearch.config.strategy import MODE, SchedulerPlugin, Strategy

if TYPE_CHECKING:
    from ray.tune import Callback, Tuner

logger = logging.getLogger(__name__)

Trainable = Callable[..., Any]


def _tune_environment(verbose: int = 0) -> None:
    """Tune settings read from the environment (only set when the user has not set them)."""
    _env.tune_defaults(quiet=verbose == 0)


def effective_num_samples(num_samples: int, max_trials: int | None) -> int:
    """Trials Tune is asked for: the strategy's count capped by the budget (-1: no cap)."""
    if max_trials is None:
        return num_samples
    return max_trials if num_samples < 0 else min(num_samples, max_trials)


def interrupt_after(n_trials: int, marker: Path) -> Callback:
    """A Tune callback that interrupts the study, as Ctrl+C would, after `n_trials` finished.

    Tune then saves its state and returns; ``restore_tuner`` goes on from there. The marker
    file makes it fire once, so the same pickled callback does not interrupt the resumed study.
    Used by tests to interrupt a study at a known point.
    """
    from ray.tune import Callback

    class _InterruptAfter(Callback):
        def __init__(self) -> None:
            self.finished = 0

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.finished += 1
            if self.finished >= n_trials and not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(f"interrupted after {self.finished} finished trials\n")
                logger.info("interrupting the study after %d finished trials", self.finished)
                os.kill(os.getpid(), signal.SIGUSR1)  # Tune's own 'interrupted' handler

    return _InterruptAfter()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While Tune runs, SIGTERM (a cluster job being stopped) interrupts it like Ctrl+C does.

    Tune then saves its state and returns, so ``hpsearch resume`` goes on from there; without
    this, SIGTERM kills the driver and the last seconds of bookkeeping are lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: Any) -> None:
        logger.warning("SIGTERM received: interrupting the study (resume it later)")
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _with_resources(trainable: Trainable, resources: dict[str, float] | None) -> Any:
    if not resources:
        return trainable
    from ray import tune

    return tune.with_resources(trainable, dict(resources))


def build_tuner(
    trainable: Trainable,
    strategy: Strategy,
    *,
    name: str,
    storage_path: Path | str,
    scheduler: SchedulerPlugin | None = None,
    max_trials: int | None = None,
    max_concurrent: int = 1,
    resources: dict[str, float] | None = None,
    callbacks: Sequence[Callback] = (),
    max_failures: int = 0,
    time_budget_s: float | None = None,
    interrupt_after_trials: int | None = None,
    verbose: int = 0,
) -> Tuner:
    """A Tuner that runs `strategy` (and `scheduler`) on `trainable`; nothing starts yet.

    `resources` is Tune's per-trial request, e.g. ``{"cpu": 1, "gpu": 0.25}``;
    `interrupt_after_trials` interrupts the study after that many finished trials (resumable).
    """
    from ray import tune

    _tune_environment(verbose)
    storage = Path(storage_path).expanduser().resolve()
    searcher = strategy.make_searcher()
    num_samples = effective_num_samples(strategy.num_samples(), max_trials)
    flags = dict(scheduler.trial_flags) if scheduler is not None else {}
    trial_scheduler = scheduler.make_scheduler() if scheduler is not None else None
    callbacks = list(callbacks)
    if interrupt_after_trials is not None:
        callbacks.append(interrupt_after(interrupt_after_trials, storage / f".{name}.interrupted"))
    logger.info(
        "study %r: strategy %s, scheduler %s, num_samples %d, max_concurrent %d",
        name, strategy.name, scheduler.name if scheduler else "none", num_samples, max_concurrent,
    )
    return tune.Tuner(
        _with_resources(trainable, resources),
        param_space=flags,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=trial_scheduler,
            metric=strategy.context.metric,
            mode=MODE,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,
            time_budget_s=time_budget_s,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            callbacks=callbacks or None,
            verbose=verbose,
        ),
    )


def restore_tuner(
    path: Path | str,
    trainable: Trainable,
    *,
    resources: dict[str, float] | None = None,
) -> Tuner:
    """The Tuner of an interrupted study at `path`, going on where it stopped.

    Finished trials are kept, unfinished ones run again under their own ids, the searcher's
    saved state is restored; errored trials are retried.
    """
    from ray import tune

    _tune_environment()
    return tune.Tuner.restore(
        str(Path(path).expanduser().resolve()),
        trainable=_with_resources(trainable, resources),
        resume_unfinished=True,
        resume_errored=True,
    )
