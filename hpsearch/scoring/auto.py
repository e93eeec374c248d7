"""The automatic choice of a proxy: calibrate every proxy and ensemble on a small trained pilot.

Train a seeded pilot of ``m`` architectures (the proxy study at a small N; its training time
belongs to the search's compute), calibrate every proxy and rank-average ensemble against the
pilot's validation LDOS RMSE (the loss MALA optimises, not the band-energy error), and choose the
one with the most negative Kendall tau (the best rank agreement; ties go to a single proxy before
an ensemble, then to the name). ``params`` and both NASWOT signs are always candidates, and a proxy
must beat ``params``: one whose tau is not below params' is refused (the choice falls back to the
best that beats it, or to params itself, and the log says so). A search then ranks its candidates
with :func:`choice_scores`.

Example:
    >>> choice = choose_proxy(ProxyStudyConfig(store="default"), m=12)
    >>> choice.name, choice.members, choice.pilot_tau
    >>> ranking = choice_scores(choice, {"synflow": [...], "zico": [...]})  # higher = better
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpsearch.errors import ConfigError, DataError
from hpsearch.scoring.calibration import ProxyCalibration, beats, rank_average

__all__ = ["BASELINE", "ProxyChoice", "choice_scores", "choose_proxy", "members_of", "select_proxy"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ProxyChoice:
    """The chosen proxy or ensemble, its members, and the pilot it was chosen on."""

    name: str
    members: tuple[str, ...]
    pilot_tau: float
    pilot: tuple[ProxyCalibration, ...]
    m: int
    pilot_training_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "members": list(self.members), "pilot_tau": self.pilot_tau, "m": self.m,
                "pilot_training_seconds": self.pilot_training_seconds,
                "pilot": [c.to_dict() for c in self.pilot]}


def members_of(name: str) -> tuple[str, ...]:
    """The proxies of a calibration row's name: ``ensemble(a+b)`` -> (a, b); ``a`` -> (a,)."""
    if name.startswith("ensemble(") and name.endswith(")"):
        return tuple(name[len("ensemble("):-1].split("+"))
    return (name,)


#: The size baseline a chosen proxy has to beat.
BASELINE = "params"


def select_proxy(calibration: Sequence[ProxyCalibration]) -> ProxyCalibration:
    """The row with the most negative tau (ties: a single proxy first, then by name) among those that
    beat :data:`BASELINE` (a strictly more negative tau); the baseline itself when none does."""
    usable = [c for c in calibration if math.isfinite(c.tau)]
    if not usable:
        raise DataError("no proxy has a defined Kendall tau on the pilot (constant scores or errors): "
                        "train a larger pilot")
    best = min(usable, key=lambda c: (round(c.tau, 12), len(members_of(c.name)), c.name))
    base = next((c for c in usable if c.name == BASELINE), None)
    if base is None or best.name == BASELINE or beats(best.tau, base.tau):
        return best
    log.warning("proxy auto refuses %s: its Kendall tau %+.3f on the pilot does not beat params' %+.3f (the "
                "parameter count ranks the pilot at least as well); falling back to params", best.name, best.tau,
                base.tau)
    return base


def choose_proxy(config: Any = None, m: int = 12, seed: int | None = None, split: Any = None) -> ProxyChoice:
    """Train a pilot of ``m`` architectures of ``config`` (a ProxyStudyConfig; its own seed unless
    ``seed``), calibrate, choose; logs the choice and the pilot table. ``split``: the training and
    validation snapshots of the pilot (default: the study's own split of the store; never test)."""
    from hpsearch.scoring.proxy_report import markdown_table
    from hpsearch.scoring.proxy_study import ProxyStudyConfig, run_proxy_study

    if m < 4:
        raise ConfigError(f"a pilot of m={m} architectures cannot rank proxies: use m >= 4 (about 12 is cheap)")
    config = config or ProxyStudyConfig()
    update: dict[str, Any] = {"n_architectures": m}
    if seed is not None:
        update["seed"] = seed
    pilot = run_proxy_study(config.model_copy(update=update), split=split)
    best = select_proxy(pilot.calibration)
    log.info("automatic proxy choice on a pilot of %d trained architectures, judged on the validation LDOS RMSE: "
             "%s (tau %+.3f)\n%s", m, best.name, best.tau, markdown_table(pilot))
    return ProxyChoice(best.name, members_of(best.name), best.tau, pilot.calibration, m, pilot.training_seconds)


def choice_scores(choice: ProxyChoice | str, scores: Mapping[str, Sequence[float]]) -> np.ndarray:
    """Scores of candidates under the choice (higher = better): the proxy's own scores, or the
    rank average of the ensemble's members."""
    members = members_of(choice if isinstance(choice, str) else choice.name)
    missing = [m for m in members if m not in scores]
    if missing:
        raise ConfigError(f"the chosen proxy needs scores of {missing}; got {sorted(scores)}")
    if len(members) == 1:
        return np.asarray(scores[members[0]], dtype=np.float64)
    return rank_average(scores, members)
