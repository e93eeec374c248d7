"""Evaluation in physical units: LDOS error and band-energy error (meV/atom) per test snapshot.

The objective of a trial is the mean absolute band-energy error over the test snapshots (paper
eq. 12 with the band energy in place of the free energy). Predictions are made in chunks and
reduced to a DOS on the fly, so no predicted LDOS of a whole snapshot is ever held; Fermi levels
and band energies of all snapshots are computed in one batched call of ``hpsearch.physics``.

Example:
    >>> ev = evaluate(result.model, result.scalers, data.test)
    >>> ev.mean_band_energy_error_mev_per_atom
    >>> retrain(spec, settings, data, n_seeds=5).mean
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hpsearch.errors import DataError
from hpsearch.model.data import TrainingData
from hpsearch.model.network import NetworkSpec
from hpsearch.model.scaling import Scalers
from hpsearch.model.sources import SnapshotPoints
from hpsearch.model.training import TrainingResult, TrainingSettings, resolve_device, train

__all__ = ["Evaluation", "RetrainResult", "evaluate", "retrain"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Per-snapshot errors (in test-snapshot order) and their means; the objective is the MAE.

    ``signed_band_energy_errors_mev_per_atom`` keeps the sign (predicted - reference, per atom):
    a network's error is mostly the sign and size of its total-DOS bias, which averages out only
    over snapshots and seeds when the sign is kept.
    """

    names: list[str]
    band_energy_errors_mev_per_atom: list[float]
    mean_band_energy_error_mev_per_atom: float
    ldos_rmse: list[float]  # per snapshot, in the LDOS's own units
    mean_ldos_rmse: float
    band_energies_ev: list[float]  # from the predicted LDOS
    reference_band_energies_ev: list[float]  # from the test LDOS, same physics
    signed_band_energy_errors_mev_per_atom: list[float] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly values (NaN stays NaN)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_dict` (files written before the signed errors existed load too)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclasses.dataclass(frozen=True)
class RetrainResult:
    """The objective of one configuration retrained with several seeds (paper, fig. 3 antennas).

    ``mean``/``std`` (sample std, ddof=1; 0 for a single run) are over the runs that completed;
    diverged or failed runs appear in ``values`` as NaN and are counted in ``n_failed``.
    """

    values: list[float]
    mean: float
    std: float
    seeds: list[int]
    statuses: list[str]
    n_failed: int
    evaluations: list[Evaluation | None]


def _predict_dos(
    model: torch.nn.Module, scalers: Scalers, snap: SnapshotPoints, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(predicted DOS, reference DOS, LDOS RMSE) of one snapshot; DOS float64 on the CPU (NaN if
    the prediction is not finite)."""
    from hpsearch.physics import dos_from_ldos

    n_e = snap.n_energies
    sum_pred = torch.zeros(n_e, dtype=torch.float64, device=device)
    sum_true = torch.zeros_like(sum_pred)
    sq = torch.zeros((), dtype=torch.float64, device=device)
    for x, y in snap.chunks(_CHUNK, device):
        y = y.to(torch.float64)
        pred = scalers.inverse_ldos(model(scalers.transform_descriptors(x))).double()
        sum_pred += pred.sum(dim=0)
        sum_true += y.sum(dim=0)
        sq += ((pred - y) ** 2).sum()
    rmse = math.sqrt(float(sq) / (snap.n_points * n_e))
    dos_true = dos_from_ldos(sum_true.cpu()[None, :], snap.voxel_volume_angstrom3)
    if not bool(torch.isfinite(sum_pred).all()):
        return torch.full_like(dos_true, math.nan), dos_true, rmse
    return dos_from_ldos(sum_pred.cpu()[None, :], snap.voxel_volume_angstrom3), dos_true, rmse


def _band_energies_ev(dos: torch.Tensor, n_electrons: torch.Tensor, grid: object, temperature_k: float) -> torch.Tensor:
    """Band energy (eV) of each row of ``dos`` (B, n_e), each at its own Fermi level; NaN where a
    row is not finite or cannot hold its electrons."""
    from hpsearch.physics import band_energy, fermi_energy

    fermi = torch.as_tensor(fermi_energy(dos, grid, n_electrons, temperature_k, strict=False)).reshape(-1)
    energies = torch.full_like(fermi, math.nan)
    ok = torch.isfinite(fermi)
    if bool(ok.any()):
        energies[ok] = torch.as_tensor(
            band_energy(dos[ok], grid, fermi[ok], temperature_k), dtype=torch.float64
        ).reshape(-1)
    return energies


def evaluate(
    model: torch.nn.Module, scalers: Scalers, test_snapshots: Sequence[SnapshotPoints],
    device: torch.device | str | None = None,
) -> Evaluation:
    """Errors of ``model`` on each test snapshot; each LDOS gets its own self-consistent Fermi level.

    A snapshot whose predicted DOS is not finite, or cannot hold its electrons, gets a NaN error
    (and the mean is NaN): a bad network is a bad trial, not an exception.
    """
    if not test_snapshots:
        raise DataError("no test snapshots to evaluate on: give the split at least one test snapshot")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        predicted = [_predict_dos(model, scalers, snap, dev) for snap in test_snapshots]
    dos_pred = torch.stack([p[0] for p in predicted])
    dos_true = torch.stack([p[1] for p in predicted])
    e_pred = torch.full((len(test_snapshots),), math.nan, dtype=torch.float64)
    e_true = e_pred.clone()
    groups: dict[tuple[object, float], list[int]] = {}
    for i, snap in enumerate(test_snapshots):
        groups.setdefault((snap.energy_grid, snap.temperature_k), []).append(i)
    for (grid, temperature_k), rows in groups.items():
        electrons = torch.tensor([test_snapshots[i].n_electrons for i in rows], dtype=torch.float64)
        both = torch.cat([dos_pred[rows], dos_true[rows]])
        energies = _band_energies_ev(both, torch.cat([electrons, electrons]), grid, temperature_k)
        e_pred[rows], e_true[rows] = energies[: len(rows)], energies[len(rows) :]
    bad = [test_snapshots[i].name for i in torch.nonzero(~torch.isfinite(e_true)).flatten().tolist()]
    if bad:
        raise DataError(f"reference LDOS of test snapshots {bad} give no Fermi level for their electron "
                        "count: check n_electrons, the voxel volume and the energy grid of the store")
    n_atoms = torch.tensor([s.n_atoms for s in test_snapshots], dtype=torch.float64)
    signed = (e_pred - e_true) / n_atoms * 1000.0
    errors = signed.abs().tolist()
    rmses = [p[2] for p in predicted]
    return Evaluation(
        names=[s.name for s in test_snapshots],
        band_energy_errors_mev_per_atom=errors,
        mean_band_energy_error_mev_per_atom=float(np.mean(errors)),
        ldos_rmse=rmses,
        mean_ldos_rmse=float(np.mean(rmses)),
        band_energies_ev=e_pred.tolist(),
        reference_band_energies_ev=e_true.tolist(),
        signed_band_energy_errors_mev_per_atom=signed.tolist(),
    )


def retrain(
    spec: NetworkSpec, settings: TrainingSettings, data: TrainingData, n_seeds: int = 5,
    seeds: Sequence[int] | None = None, device: torch.device | str | None = None,
) -> RetrainResult:
    """Train ``spec`` with ``n_seeds`` seeds (``settings.seed + i`` unless given) and evaluate each."""
    seeds = list(seeds) if seeds is not None else [settings.seed + i for i in range(n_seeds)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise DataError(f"retrain needs distinct seeds, got {seeds}: identical seeds repeat one network")
    data = data.to(resolve_device(device))  # once, not once per seed
    values: list[float] = []
    statuses: list[str] = []
    evaluations: list[Evaluation | None] = []
    for seed in seeds:
        result: TrainingResult = train(spec, settings.model_copy(update={"seed": seed}), data, device=device)
        statuses.append(result.status)
        if result.ok:
            ev = evaluate(result.model, result.scalers, data.test)
            evaluations.append(ev)
            values.append(ev.mean_band_energy_error_mev_per_atom)
        else:
            evaluations.append(None)
            values.append(math.nan)
        log.info("retrain seed %d: %s, %.4g meV/atom", seed, result.status, values[-1])
    good = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    return RetrainResult(
        values=values,
        mean=float(good.mean()) if good.size else math.nan,
        std=float(good.std(ddof=1)) if good.size > 1 else (0.0 if good.size else math.nan),
        seeds=seeds,
        statuses=statuses,
        n_failed=len(values) - int(good.size),
        evaluations=evaluations,
    )
