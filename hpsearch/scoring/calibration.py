"""How well does a training-free score rank trained networks? Rank statistics of proxies against
validation error, with bootstrap confidence intervals.

Every proxy is maximised, so a useful proxy has a NEGATIVE Kendall tau / Spearman rho against the
error (higher score, lower error), as the paper's figure 5 (tau = -0.318). Per proxy:

- Kendall tau-b and Spearman rho against the error, each with a percentile bootstrap 95 % CI
  (architectures resampled with replacement, ``n_bootstrap`` times, seeded);
- top-k regret: the lowest error among the proxy's k best-scored architectures divided by the
  lowest error overall (1 = the proxy's top k hold the best network), k = 1, 5 and 10 % of n;
- the rank (1 = lowest error) of the proxy's top-1 architecture, the best rank among its top 5,
  and the regret of its top-1 (its error / the lowest error), each the expectation over a random
  order of tied scores (``params`` ties every activation of one shape; a search would pick any);
- optionally Kendall tau (with CI) against a second error (the proxy study's band-energy error);
- tau within each activation (does it rank inside a family, not only between families);
- partial Kendall tau controlling for the parameter count,
  tau_xy.z = (tau_xy - tau_xz tau_yz) / sqrt((1 - tau_xz^2)(1 - tau_yz^2)) (Kendall 1942).

A rank-average ensemble of proxies scores each architecture by the mean of its ranks (average
ranks for ties, higher rank = higher score) under each member.

Example:
    >>> row = calibrate("synflow", scores, errors, activations, n_params, seed=0)
    >>> row.tau, row.tau_ci, row.regret
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpsearch.errors import ConfigError, DataError

__all__ = ["ProxyCalibration", "TopRanks", "beats", "bootstrap_ci", "calibrate", "ensemble_name", "partial_tau",
           "rank_average", "top_k_regret", "top_ranks"]

#: Top-k regret is reported at these k: 1, 5 and 10 % of the architectures (at least 1).
REGRET_KS: tuple[str, ...] = ("1", "5", "10%")


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import kendalltau

    if np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(kendalltau(x, y, variant="b").statistic)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


def bootstrap_ci(x: np.ndarray, y: np.ndarray, statistic: str, n_bootstrap: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of Kendall tau (``"tau"``) or Spearman rho (``"rho"``) of pairs."""
    fn = {"tau": _tau, "rho": _rho}[statistic]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_bootstrap):
        rows = rng.integers(0, x.size, x.size)
        value = fn(x[rows], y[rows])
        if math.isfinite(value):
            values.append(value)
    if not values:
        return math.nan, math.nan
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def top_k_regret(scores: np.ndarray, errors: np.ndarray, k: int) -> float:
    """Lowest error among the k highest scores over the lowest error overall (ties: the first k
    in a stable descending order)."""
    order = np.argsort(-scores, kind="stable")
    best = float(np.min(errors))
    return float(np.min(errors[order[:k]]) / best) if best > 0 else math.nan


@dataclasses.dataclass(frozen=True)
class TopRanks:
    """Where a proxy's favourites stand among all architectures ranked by error (1 = lowest)."""

    top1_rank: float
    top5_rank: float
    top1_regret: float
    n_top1_tied: int


def top_ranks(scores: np.ndarray, errors: np.ndarray, k: int = 5) -> TopRanks:
    """Rank of the top-1 (highest score), best rank within the top ``k`` and the top-1's error over
    the lowest error, each the exact expectation over a uniformly random order of tied scores."""
    from scipy.stats import rankdata

    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(errors, dtype=np.float64)
    ranks = rankdata(y, method="min")
    best = float(np.min(y))
    levels = np.unique(x)[::-1]  # distinct scores, highest first
    top = x == levels[0]
    regret = float(np.mean(y[top]) / best) if best > 0 else math.nan
    k = min(k, x.size)
    taken: list[float] = []
    expected = math.nan
    for level in levels:
        group = np.sort(ranks[x == level])
        room = k - len(taken)
        if group.size <= room:
            taken.extend(group.tolist())
            if len(taken) == k:
                expected = float(min(taken))
                break
            continue
        # `room` of the tied group enter the top k at random: P(its best rank is group[i]) = C(g-1-i, room-1)/C(g, room)
        known = min(taken) if taken else math.inf
        g = group.size
        weights = [math.comb(g - 1 - i, room - 1) / math.comb(g, room) for i in range(g)]
        expected = float(sum(w * min(known, float(r)) for w, r in zip(weights, group)))
        break
    return TopRanks(float(np.mean(ranks[top])), expected, regret, int(top.sum()))


def beats(tau: float, baseline_tau: float) -> bool:
    """True when a proxy's tau ranks better than the baseline's (strictly more negative; any finite tau
    beats an undefined baseline)."""
    return math.isfinite(tau) and (not math.isfinite(baseline_tau) or round(tau, 12) < round(baseline_tau, 12))


def regret_k(label: str, n: int) -> int:
    """k of a regret label: an integer, or a percentage of n (at least 1)."""
    return max(1, math.ceil(n * float(label[:-1]) / 100)) if label.endswith("%") else min(n, int(label))


def partial_tau(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Kendall's partial tau of x and y controlling for z."""
    txy, txz, tyz = _tau(x, y), _tau(x, z), _tau(y, z)
    denominator = math.sqrt(max(0.0, (1 - txz**2) * (1 - tyz**2)))
    return (txy - txz * tyz) / denominator if denominator > 0 else math.nan


def rank_average(scores: Mapping[str, Sequence[float]], members: Sequence[str]) -> np.ndarray:
    """The rank-average ensemble: mean over members of each architecture's rank (1 = lowest
    score, average ranks for ties), so a higher value is predicted better, like every proxy."""
    from scipy.stats import rankdata

    missing = [m for m in members if m not in scores]
    if len(members) < 2 or missing:
        raise ConfigError(f"an ensemble needs at least 2 scored proxies, got {list(members)}"
                          + (f" ({missing} not scored)" if missing else ""))
    return np.mean([rankdata(np.asarray(scores[m], dtype=np.float64)) for m in members], axis=0)


def ensemble_name(members: Sequence[str]) -> str:
    return "ensemble(" + "+".join(members) + ")"


@dataclasses.dataclass(frozen=True)
class ProxyCalibration:
    """One proxy's (or ensemble's) rank agreement with the error on ``n`` architectures."""

    name: str
    n: int
    n_degenerate: int
    tau: float
    tau_ci: tuple[float, float]
    tau_p_value: float
    rho: float
    rho_ci: tuple[float, float]
    regret: dict[str, float]
    tau_by_activation: dict[str, float]
    partial_tau_params: float
    #: rank (1 = lowest error) of the top-1, best rank in the top 5, top-1 error / lowest error
    top1_rank: float = math.nan
    top5_rank: float = math.nan
    top1_regret: float = math.nan
    n_top1_tied: int = 1
    #: Kendall tau and its CI against the second error (the band-energy error), on n_second pairs
    tau_second: float = math.nan
    tau_second_ci: tuple[float, float] = (math.nan, math.nan)
    n_second: int = 0

    @property
    def ci_excludes_zero(self) -> bool:
        return self.tau_ci[0] > 0 or self.tau_ci[1] < 0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ci_excludes_zero": self.ci_excludes_zero}


def calibrate(name: str, scores: Sequence[float], errors: Sequence[float], activations: Sequence[str],
              n_params: Sequence[float], *, n_degenerate: int = 0, n_bootstrap: int = 1000,
              seed: int = 0, second_errors: Sequence[float] | None = None) -> ProxyCalibration:
    """Every statistic of the module docstring for one proxy; errors must be finite.
    ``second_errors``: a second error per architecture (NaN allowed: those pairs are left out)."""
    from scipy.stats import kendalltau

    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(errors, dtype=np.float64)
    if x.size != y.size or x.size < 3:
        raise DataError(f"calibrating {name} needs at least 3 architectures with scores and errors, got "
                        f"{x.size} scores and {y.size} errors")
    if not np.all(np.isfinite(y)):
        raise DataError(f"calibrating {name}: {int((~np.isfinite(y)).sum())} errors are not finite; drop "
                        "the architectures whose training failed first")
    groups: dict[str, list[int]] = {}
    for i, activation in enumerate(activations):
        groups.setdefault(activation, []).append(i)
    tau = _tau(x, y)
    p_value = float(kendalltau(x, y, variant="b").pvalue) if math.isfinite(tau) else math.nan
    second: dict[str, Any] = {}
    if second_errors is not None:
        z = np.asarray(second_errors, dtype=np.float64)
        ok = np.isfinite(z)
        enough = int(ok.sum()) >= 3
        second = {"tau_second": _tau(x[ok], z[ok]) if enough else math.nan, "n_second": int(ok.sum()),
                  "tau_second_ci": bootstrap_ci(x[ok], z[ok], "tau", n_bootstrap, seed) if enough
                  else (math.nan, math.nan)}
    top = top_ranks(x, y)
    return ProxyCalibration(
        name=name, n=int(x.size), n_degenerate=n_degenerate, tau=tau,
        tau_ci=bootstrap_ci(x, y, "tau", n_bootstrap, seed), tau_p_value=p_value,
        rho=_rho(x, y), rho_ci=bootstrap_ci(x, y, "rho", n_bootstrap, seed),
        regret={label: top_k_regret(x, y, regret_k(label, x.size)) for label in REGRET_KS},
        tau_by_activation={a: _tau(x[rows], y[rows]) if len(rows) >= 3 else math.nan for a, rows in groups.items()},
        partial_tau_params=partial_tau(x, y, np.asarray(n_params, dtype=np.float64)),
        top1_rank=top.top1_rank, top5_rank=top.top5_rank, top1_regret=top.top1_regret, n_top1_tied=top.n_top1_tied,
        **second,
    )
