"""Baselines every network must beat on a split: the constant training-mean LDOS and ridge regression.

Both are linear maps in the networks' scaled space (descriptors -> scaled LDOS), built as
``torch.nn.Linear`` modules and scored by the same :func:`~hpsearch.model.evaluation.evaluate` as
the networks, so their LDOS RMSE and band-energy errors compare one to one. Ridge is fitted in
closed form in float64 on the training snapshots: with ``A = [scaled descriptors, 1]`` (an
unpenalised bias) and ``Y`` the scaled LDOS it minimises ``mean_points |A b - y|^2 + lambda |w|^2``
per energy, i.e. solves ``(A^T A + N lambda D) B = A^T Y`` (D: identity without the bias). With
standardised descriptors lambda is relative to one feature's variance. If no network beats ridge
in test LDOS RMSE, architecture cannot matter on that data (see PITFALLS, "Measuring accuracy").

Example:
    >>> report = store_baselines("be2.h5", split_snapshots(names, 2, 1, 1))
    >>> report.ldos_rmse("ridge", "test"), report.band_energy_error_mev_per_atom("constant", "test")
    >>> print(report.markdown())
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpsearch.errors import ConfigError, DataError
from hpsearch.model.data import as_tensor
from hpsearch.model.evaluation import Evaluation, evaluate
from hpsearch.model.scaling import Scalers, ScalingMode, streamed_pair_moments
from hpsearch.model.sources import SnapshotPoints, chunk_ranges

if TYPE_CHECKING:
    from hpsearch.data.splits import Split
    from hpsearch.model.streaming import StoreReader

__all__ = ["BASELINES", "DEFAULT_RIDGE_LAMBDA", "BaselineReport", "LinearBaselines", "fit_linear_baselines",
           "store_baselines"]

log = logging.getLogger(__name__)

#: ridge penalty relative to one standardised feature's variance
DEFAULT_RIDGE_LAMBDA = 1e-3
#: the predictors, best expected first
BASELINES = ("ridge", "constant")
#: the parts of a split the baselines are scored on
PARTS = ("validation", "test")
_ROWS = 1 << 16

#: a function returning a fresh iterable of unscaled ``(descriptors, ldos)`` training chunks
ChunkSource = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


@dataclasses.dataclass(frozen=True)
class LinearBaselines:
    """The fitted baselines: scalers of the training points and one linear module per predictor."""

    scalers: Scalers
    ridge: torch.nn.Linear
    constant: torch.nn.Linear
    n_train_points: int
    ridge_lambda: float

    def model(self, predictor: str) -> torch.nn.Linear:
        if predictor not in BASELINES:
            raise ConfigError(f"unknown baseline {predictor!r}: choose one of {BASELINES}")
        return self.ridge if predictor == "ridge" else self.constant


def _linear(coefficients: torch.Tensor) -> torch.nn.Linear:
    """A float32 Linear from float64 coefficients (n_features + 1, n_energies), bias last."""
    n_in, n_out = coefficients.shape[0] - 1, coefficients.shape[1]
    layer = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(coefficients[:-1].T.to(torch.float32))
        layer.bias.copy_(coefficients[-1].to(torch.float32))
    return layer.requires_grad_(False)


def _normal_equations(chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
                      scalers: Scalers) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``A^T A``, ``A^T Y`` (float64) and N over the chunks, A = [scaled descriptors, 1]."""
    gram: torch.Tensor | None = None
    cross: torch.Tensor | None = None
    n = 0
    for x, y in chunks:
        xs = scalers.transform_descriptors(x.to(torch.float64))
        a = torch.cat([xs, torch.ones(xs.shape[0], 1, dtype=torch.float64, device=xs.device)], dim=1)
        ys = scalers.transform_ldos(y.to(torch.float64))
        gram = a.T @ a if gram is None else gram + a.T @ a
        cross = a.T @ ys if cross is None else cross + a.T @ ys
        n += int(xs.shape[0])
    if gram is None or cross is None:
        raise DataError("no training points to fit the baselines on: give the split at least one training snapshot")
    return gram.cpu(), cross.cpu(), n


def fit_linear_baselines(
    chunks: ChunkSource, descriptor_mode: ScalingMode = "feature-standard", ldos_mode: ScalingMode = "minmax",
    ridge_lambda: float = DEFAULT_RIDGE_LAMBDA,
) -> LinearBaselines:
    """Fit scalers, ridge and the constant mean on the training chunks (two passes over ``chunks()``)."""
    if not math.isfinite(ridge_lambda) or ridge_lambda < 0:
        raise ConfigError(f"ridge_lambda={ridge_lambda} must be a finite number >= 0 (default {DEFAULT_RIDGE_LAMBDA})")
    scalers = Scalers(descriptor_mode, ldos_mode).fit_moments(*streamed_pair_moments(chunks()))
    gram, cross, n = _normal_equations(chunks(), scalers)
    penalty = torch.eye(gram.shape[0], dtype=torch.float64) * (n * ridge_lambda)
    penalty[-1, -1] = 0.0  # the bias is not penalised
    ridge = torch.linalg.lstsq(gram + penalty, cross, driver="gelsd").solution
    constant = torch.zeros_like(cross)
    constant[-1] = cross[-1] / n  # the last row of A^T Y sums the scaled LDOS: its training mean
    return LinearBaselines(scalers.to("cpu"), _linear(ridge), _linear(constant), n, float(ridge_lambda))


class _CheckedReader:
    """A store reader whose every read is checked for NaN/inf, naming the snapshot."""

    def __init__(self, reader: StoreReader) -> None:
        self.reader = reader

    def request(self, names: tuple[str, ...], start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.reader.request(names, start, stop)
        for label, array in (("descriptors", x), ("LDOS", y)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            if bad:
                raise DataError(f"snapshot {', '.join(names)} of store {self.reader.path} holds {bad} NaN/inf "
                                f"{label} values (points {start}:{stop}): regenerate or re-import the store")
        return x, y

    def result(self, handle: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return handle


def _training_chunks(reader: _CheckedReader, names: Sequence[str], rows: int) -> ChunkSource:
    def chunks() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for name in names:
            for start, stop in chunk_ranges(reader.reader.size(name), rows):
                x, y = reader.request((name,), start, stop)
                yield as_tensor(x), as_tensor(y)
    return chunks


def _snapshots(reader: _CheckedReader, names: Sequence[str], n_energies: int) -> list[SnapshotPoints]:
    """The snapshots ``names`` read in chunks through the checked reader (never held whole)."""
    from hpsearch.model.streaming import StreamedSnapshot

    return [StreamedSnapshot(reader=reader, n_energies=n_energies, **reader.reader.metadata(n)) for n in names]


def _spread(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan


def _per_atom_mev(evaluation: Evaluation, snapshots: Sequence[SnapshotPoints]) -> list[float]:
    return [e / s.n_atoms * 1000.0 for e, s in zip(evaluation.reference_band_energies_ev, snapshots)]


def _check_split(reader: StoreReader, split: Split) -> None:
    names = set(reader.names)
    missing = [n for n in (*split.train, *split.validation, *split.test) if n not in names]
    if missing:
        raise DataError(f"snapshots {missing} are not in store {reader.path}: it holds {reader.names}")
    if not split.train:
        raise DataError("the split has no training snapshot: the baselines are fitted on at least one")
    if not split.validation and not split.test:
        raise DataError("the split has neither validation nor test snapshots: nothing to score the baselines on")


def store_baselines(
    path: str | Path, split: Split, ridge_lambda: float = DEFAULT_RIDGE_LAMBDA,
    descriptor_mode: ScalingMode = "feature-standard", ldos_mode: ScalingMode = "minmax", chunk_points: int = _ROWS,
) -> BaselineReport:
    """Fit ridge and the constant mean on the split's training snapshots of the store at ``path``
    and score both on its validation and test snapshots, read in chunks of ``chunk_points``.

    Also measures the spread of the reference band energy per atom between snapshots (test,
    validation, and all snapshots of the split), read off the same evaluations.
    """
    from hpsearch.model.streaming import StoreReader

    reader = StoreReader(path)
    try:
        return _scored(reader, split, ridge_lambda, descriptor_mode, ldos_mode, chunk_points)
    finally:
        reader.close()


def _scored(reader: StoreReader, split: Split, ridge_lambda: float, descriptor_mode: ScalingMode,
            ldos_mode: ScalingMode, chunk_points: int) -> BaselineReport:
    _check_split(reader, split)
    checked = _CheckedReader(reader)
    fitted = fit_linear_baselines(_training_chunks(checked, split.train, chunk_points), descriptor_mode,
                                  ldos_mode, ridge_lambda)
    n_energies = int(fitted.constant.bias.shape[0])
    parts = {"validation": split.validation, "test": split.test}
    evaluations: dict[str, dict[str, Evaluation]] = {p: {} for p in BASELINES}
    per_atom: dict[str, list[float]] = {}
    for part, names in parts.items():
        if not names:
            continue
        snapshots = _snapshots(checked, names, n_energies)
        for predictor in BASELINES:
            evaluations[predictor][part] = evaluate(fitted.model(predictor), fitted.scalers, snapshots)
        per_atom[part] = _per_atom_mev(evaluations["constant"][part], snapshots)
    train = _snapshots(checked, split.train, n_energies)
    per_atom["train"] = _per_atom_mev(evaluate(fitted.constant, fitted.scalers, train), train)
    spread = {"test": _spread(per_atom.get("test", [])), "validation": _spread(per_atom.get("validation", [])),
              "all": _spread([v for values in per_atom.values() for v in values])}
    log.info("baselines of %s fitted on %d training points (ridge lambda %g)", reader.path,
             fitted.n_train_points, ridge_lambda)
    return BaselineReport(
        store=str(reader.path), split=split.to_dict(), ridge_lambda=float(ridge_lambda),
        descriptor_scaling=descriptor_mode, ldos_scaling=ldos_mode, n_train_points=fitted.n_train_points,
        evaluations=evaluations, band_energy_spread_mev_per_atom=spread,
    )


def _none_if_nan(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _fmt(value: float, fmt: str = ".4g") -> str:
    return f"{value:{fmt}}" if math.isfinite(value) else "n/a"


@dataclasses.dataclass(frozen=True)
class BaselineReport:
    """Ridge and constant-mean baselines of one store and split (LDOS RMSE in the store's LDOS
    units, band-energy errors in meV/atom). ``evaluations[predictor][part]``: the full
    :class:`Evaluation` (per snapshot: LDOS RMSE, |error|, signed error = predicted - reference).
    ``band_energy_spread_mev_per_atom``: sample std of the reference band energy per atom between
    the ``test``, the ``validation`` and ``all`` snapshots of the split (NaN with fewer than two).

    Example::

        report = hpsearch.api.baselines("small")
        report.skill(network_test_ldos_rmse)     # > 1: the network beats ridge
    """

    store: str
    split: dict[str, list[str]]
    ridge_lambda: float
    descriptor_scaling: str
    ldos_scaling: str
    n_train_points: int
    evaluations: dict[str, dict[str, Evaluation]]
    band_energy_spread_mev_per_atom: dict[str, float]

    def evaluation(self, predictor: str, part: str) -> Evaluation | None:
        """The evaluation of ``predictor`` (ridge, constant) on ``part`` (validation, test); None
        when the split has no such snapshots."""
        if predictor not in BASELINES or part not in PARTS:
            raise ConfigError(f"no baseline {predictor!r} on {part!r}: predictors {BASELINES}, parts {PARTS}")
        return self.evaluations.get(predictor, {}).get(part)

    def ldos_rmse(self, predictor: str, part: str) -> float:
        """Mean over the part's snapshots of the LDOS RMSE (NaN when the part is empty)."""
        ev = self.evaluation(predictor, part)
        return float(ev.mean_ldos_rmse) if ev is not None else math.nan

    def band_energy_error_mev_per_atom(self, predictor: str, part: str) -> float:
        """Mean over the part's snapshots of |band-energy error| (NaN when the part is empty)."""
        ev = self.evaluation(predictor, part)
        return float(ev.mean_band_energy_error_mev_per_atom) if ev is not None else math.nan

    def skill(self, test_ldos_rmse: float | None) -> float:
        """Ridge's test LDOS RMSE over ``test_ldos_rmse`` (a network's): > 1 beats ridge; NaN if unknown."""
        ridge = self.ldos_rmse("ridge", "test")
        if test_ldos_rmse is None or not math.isfinite(test_ldos_rmse) or test_ldos_rmse <= 0:
            return math.nan
        return ridge / test_ldos_rmse

    def metrics(self) -> dict[str, float]:
        """Flat ``<predictor>_<part>_ldos_rmse`` / ``..._band_energy_error_mev_per_atom`` values."""
        out: dict[str, float] = {}
        for predictor in BASELINES:
            for part in PARTS:
                out[f"{predictor}_{part}_ldos_rmse"] = self.ldos_rmse(predictor, part)
                out[f"{predictor}_{part}_band_energy_error_mev_per_atom"] = self.band_energy_error_mev_per_atom(
                    predictor, part)
        return out

    def rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and string rows: one per predictor and part."""
        head = ["predictor", "snapshots", "LDOS RMSE", "band-energy error (meV/atom)",
                "signed per snapshot (meV/atom)"]
        rows = []
        for predictor in BASELINES:
            for part in PARTS:
                ev = self.evaluation(predictor, part)
                if ev is None:
                    continue
                signed = ", ".join(f"{v:+.3g}" for v in ev.signed_band_energy_errors_mev_per_atom)
                rows.append([predictor, f"{part} ({len(ev.names)})", _fmt(ev.mean_ldos_rmse),
                             _fmt(ev.mean_band_energy_error_mev_per_atom, ".3g"), signed])
        return head, rows

    def spread_line(self) -> str:
        spread = {k: _fmt(self.band_energy_spread_mev_per_atom.get(k, math.nan), ".3g")
                  for k in ("test", "validation", "all")}
        return ("reference band energy between snapshots (sample std, meV/atom): "
                f"test {spread['test']}, validation {spread['validation']}, all {spread['all']}")

    def markdown(self) -> str:
        """The table as Markdown, with the split and the band-energy spread below it."""
        head, rows = self.rows()
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
        lines += ["", self.split_line(), self.spread_line()]
        return "\n".join(lines)

    def split_line(self) -> str:
        parts = ", ".join(f"{k} {len(v)} ({', '.join(v)})" for k, v in self.split.items() if v)
        return (f"store {self.store}; split: {parts}; ridge lambda {self.ridge_lambda:g} on "
                f"{self.descriptor_scaling} descriptors, {self.n_train_points} training points")

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store, "split": self.split, "ridge_lambda": self.ridge_lambda,
            "descriptor_scaling": self.descriptor_scaling, "ldos_scaling": self.ldos_scaling,
            "n_train_points": self.n_train_points, **{k: _none_if_nan(v) for k, v in self.metrics().items()},
            "band_energy_spread_mev_per_atom": {k: _none_if_nan(v) for k, v in
                                                self.band_energy_spread_mev_per_atom.items()},
            "evaluations": {p: {part: ev.to_dict() for part, ev in parts.items()}
                            for p, parts in self.evaluations.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineReport:
        """Inverse of :meth:`to_dict` (the flat metrics are recomputed)."""
        try:
            return cls(
                store=str(data["store"]), split={k: list(v) for k, v in data["split"].items()},
                ridge_lambda=float(data["ridge_lambda"]), descriptor_scaling=str(data["descriptor_scaling"]),
                ldos_scaling=str(data["ldos_scaling"]), n_train_points=int(data["n_train_points"]),
                evaluations={p: {part: Evaluation.from_dict(ev) for part, ev in parts.items()}
                             for p, parts in data["evaluations"].items()},
                band_energy_spread_mev_per_atom={k: float(v) if v is not None else math.nan
                                                 for k, v in data["band_energy_spread_mev_per_atom"].items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"baseline record lacks or mangles {exc}: was it written by BaselineReport.to_dict()?") \
                from exc
