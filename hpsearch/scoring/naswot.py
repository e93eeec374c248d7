"""The NASWOT training-free score of a network at initialisation (paper eq. 13 and 14).

J holds one row per sample of the batch: the gradient of the sum of the network's outputs with
respect to that sample (N x n_in, as the paper's software computes it). C is the correlation
matrix of the rows of J (N x N, clipped to [-1, 1]) and lambda_i its eigenvalues (symmetric
eigensolver). The score is eq. 13, ``S = sum_i [log(lambda_i + k) + 1 / (lambda_i + k)]``; the
paper (and its software) maximises it: ``convention="paper"``. The first version of the original
NASWOT paper used ``-S`` (``convention="v1"``, also maximised), which favours the opposite
direction. Eq. 14 averages over T initialisations: ``S' = mean + std`` (ddof 0) of the T scores.

Everything on the score path is float64: the network is evaluated in float64 (its float32
weights are cast exactly), so J, C and the eigenvalues carry no float32 rounding.

One backward pass of ``out.sum()`` gives all N rows of J at once: this assumes the network
treats samples independently (a feed-forward MLP; it is evaluated in eval mode, so dropout is
the identity and batch-norm would use running statistics).

Degenerate cases (NaNs, a dead network, constant gradients) give :data:`WORST_SCORE` and a
reason, never an exception or a NaN.

Example:
    >>> net = build_network(NetworkSpec(n_in=91, n_out=11, widths=(64,)), seed=0)
    >>> naswot_score(net, batch)  # batch: (64, 91) scaled descriptors
    >>> naswot_mean_score(spec, batch, n_init=5, seed=0).score
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import numpy as np
import torch

from hpsearch.errors import ConfigError, DataError

if TYPE_CHECKING:
    from hpsearch.model.network import NetworkSpec

__all__ = [
    "WORST_SCORE",
    "Convention",
    "combine_scores",
    "correlation_matrices",
    "NaswotResult",
    "init_seeds",
    "mean_score",
    "naswot_jacobian",
    "naswot_mean_score",
    "naswot_result",
    "naswot_score",
    "score_jacobians",
    "scores_from_correlations",
    "validate_batch",
]

log = logging.getLogger(__name__)

Convention = Literal["paper", "v1"]
_CONVENTIONS: tuple[str, ...] = get_args(Convention)

#: The score of a degenerate network (both conventions maximise). Finite, so that means,
#: percentiles or thresholds over many scores never turn into NaN; far below any real score
#: (|S| <= N (1/k + |log k| + log N) < 1e30 for k >= 1e-12).
WORST_SCORE: Final[float] = -1.0e30
_MIN_K: Final[float] = 1e-12
#: A row of J whose centred norm is below this fraction of the largest one counts as constant.
_DEAD_ROW_RTOL: Final[float] = 1e-12
#: A largest eigenvalue within this fraction of N (the trace) means C has rank 1: every row of J
#: is the same up to scale.
_CONSTANT_RTOL: Final[float] = 1e-10

BuildFn = Callable[["NetworkSpec", int], torch.nn.Module]


@dataclasses.dataclass(frozen=True)
class NaswotResult:
    """NASWOT mean score of one architecture (eq. 14), its per-initialisation scores (eq. 13).

    ``reason`` is None for a valid score, else why the score is :data:`WORST_SCORE`.

    Example:
        >>> result = naswot_mean_score(spec, batch)
        >>> result.score if result.ok else result.reason
    """

    score: float
    scores: tuple[float, ...]
    reason: str | None = None
    seeds: tuple[int, ...] = ()
    convention: Convention = "paper"
    k: float = 1e-4

    @property
    def ok(self) -> bool:
        """True when the score is a real score, not the degenerate worst value."""
        return self.reason is None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_options(k: float, convention: str) -> None:
    """ConfigError unless ``k`` is a usable stabiliser and ``convention`` is known."""
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k >= _MIN_K):
        raise ConfigError(
            f"k={k!r} is not a valid NASWOT stabiliser: use a finite k >= {_MIN_K} "
            "(the paper uses 1e-4)"
        )
    if convention not in _CONVENTIONS:
        raise ConfigError(
            f"convention={convention!r} is unknown: use 'paper' (eq. 13, maximised, the default) "
            "or 'v1' (the negative sum of the first NASWOT paper)"
        )


def validate_batch(batch: torch.Tensor | np.ndarray, n_in: int | None = None) -> torch.Tensor:
    """The batch as a float64 tensor of shape (N, n_in); ConfigError/DataError if unusable.

    N must be between 2 and the number of input features n_in. C has rank at most n_in - 1 (its
    rows are centred): N = n_in gives one structural zero eigenvalue, the same constant (about
    1/k) for every network; each sample beyond n_in adds another, worth 1/k = 1e4 for the
    default k, which swamps the differences between networks (in float32 arithmetic the
    "zero" eigenvalues are noise of order 1e-6, turning 1/k into noise of a few hundred).
    """
    tensor = torch.as_tensor(batch)
    if tensor.ndim != 2:
        raise DataError(
            f"the NASWOT batch must be 2-D (samples, features), got shape {tuple(tensor.shape)}: "
            "flatten the grid points first"
        )
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
        raise DataError(f"the NASWOT batch must hold real numbers, got dtype {tensor.dtype}")
    n_samples, n_features = tensor.shape
    if n_in is not None and n_features != n_in:
        raise DataError(
            f"the batch has {n_features} features but the network expects n_in={n_in}: "
            "use descriptors of the same settings as the search space"
        )
    if n_samples < 2:
        raise ConfigError(f"a NASWOT batch needs at least 2 samples, got {n_samples}")
    if n_samples > n_features:
        raise ConfigError(
            f"NASWOT batch size {n_samples} exceeds the {n_features} input features: the "
            f"correlation matrix of the Jacobian then has at least {n_samples - n_features} zero "
            "eigenvalues, each adding 1/k (1e4 for k=1e-4) to the score and swamping every "
            f"difference between networks; use a batch of at most {n_features} samples "
            "(the paper's software uses its training mini-batch, 40-64)"
        )
    return tensor.to(torch.float64)


def naswot_jacobian(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor | None:
    """d(sum of outputs)/d(input), one row per sample, in float64; None if outputs ignore x.

    The model is evaluated functionally with float64 copies of its parameters and buffers in eval
    mode; the model itself is left unchanged (weights, dtype and train/eval flag).
    """
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else batch.device
    params = {n: p.detach().to(device=device, dtype=torch.float64) for n, p in model.named_parameters()}
    buffers = {
        n: b.to(device=device, dtype=torch.float64) if b.is_floating_point() else b.to(device)
        for n, b in model.named_buffers()
    }
    x = batch.to(device=device, dtype=torch.float64).clone().requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        out = torch.func.functional_call(model, (params, buffers), (x,))
    except RuntimeError as exc:
        raise DataError(
            f"the network could not evaluate the NASWOT batch of shape {tuple(batch.shape)}: {exc}"
        ) from exc
    finally:
        model.train(was_training)
    if not out.requires_grad:
        return None
    (grad,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    return grad


def _reason(finite: bool, dead: int, n_samples: int) -> str | None:
    if not finite:
        return "non-finite Jacobian (NaN or inf): the network's output or gradient overflowed"
    if dead == n_samples:
        return (
            "dead network: every sample has a constant gradient across features (the output does "
            "not depend on the input, e.g. all ReLUs inactive), so the correlation is undefined"
        )
    if dead:
        return (
            f"dead network for {dead} of {n_samples} samples: their gradient rows are constant "
            "(e.g. every unit inactive for them), so their correlation is undefined"
        )
    return None


def correlation_matrices(jacobians: torch.Tensor) -> tuple[torch.Tensor, list[str | None]]:
    """Correlation matrices (B, N, N) of the rows of each Jacobian, clipped to [-1, 1], and for
    each a reason why it is degenerate (None when it is fine). Computed in float64."""
    jac = jacobians.to(torch.float64)
    finite = torch.isfinite(jac.sum(dim=(1, 2)))  # one pass: NaN or inf anywhere spoils the sum
    # unconditional (no `if finite.all()`): asking would wait for the GPU once per call
    jac = torch.where(finite[:, None, None], jac, torch.zeros((), dtype=jac.dtype, device=jac.device))
    centred = jac - jac.mean(dim=2, keepdim=True)
    norms = torch.linalg.vector_norm(centred, dim=2)
    largest = norms.max(dim=1, keepdim=True).values
    dead = (norms <= _DEAD_ROW_RTOL * largest).sum(dim=1)
    unit = centred / torch.where(norms > 0, norms, torch.ones_like(norms)).unsqueeze(2)
    corr = torch.clamp(torch.bmm(unit, unit.transpose(1, 2)), -1.0, 1.0)
    n_samples = jac.shape[1]
    flags = zip(*torch.stack([finite.to(dead.dtype), dead]).tolist(), strict=True)  # one transfer
    return corr, [_reason(f, d, n_samples) for f, d in flags]


def score_jacobians(
    jacobians: torch.Tensor, k: float = 1e-4, convention: Convention = "paper"
) -> list[tuple[float, str | None]]:
    """Eq. 13 for each Jacobian of a stack (B, N, n_in): (score, None) or (WORST_SCORE, reason)."""
    check_options(k, convention)
    if jacobians.ndim != 3:
        raise DataError(f"expected a stack of Jacobians (B, N, n_in), got shape {tuple(jacobians.shape)}")
    corr, reasons = correlation_matrices(jacobians)
    return scores_from_correlations(corr, reasons, k, convention)


def scores_from_correlations(
    corr: torch.Tensor, reasons: Sequence[str | None], k: float = 1e-4, convention: Convention = "paper"
) -> list[tuple[float, str | None]]:
    """Eq. 13 from correlation matrices (B, N, N) with one batched symmetric eigensolver call;
    entries with a reason (degenerate) get WORST_SCORE without being decomposed."""
    results: list[tuple[float, str | None]] = [(WORST_SCORE, r) for r in reasons]
    slots = [i for i, reason in enumerate(reasons) if reason is None]
    if slots:
        eigenvalues = torch.linalg.eigvalsh(corr[slots] if len(slots) < len(reasons) else corr)
        shifted = eigenvalues + k
        sums = (torch.log(shifted) + 1.0 / shifted).sum(dim=1)
        # eigenvalues ascend: the smallest and the largest; one transfer from the device
        sums, minima, maxima = torch.stack([sums, eigenvalues[:, 0], eigenvalues[:, -1]]).tolist()
        n_samples = corr.shape[1]
        for slot, lam_min, lam_max, total in zip(slots, minima, maxima, sums, strict=True):
            results[slot] = _finish(total, lam_min, lam_max, n_samples, k, convention)
    return results


def _finish(
    total: float, lam_min: float, lam_max: float, n_samples: int, k: float, convention: Convention
) -> tuple[float, str | None]:
    if lam_max >= n_samples * (1.0 - _CONSTANT_RTOL):  # C = s s^T: every |correlation| is 1
        return WORST_SCORE, (
            f"constant gradients: all {n_samples} samples have the same gradient up to scale "
            "(a linear network or identical samples), so the network cannot tell them apart"
        )
    if lam_min + k <= 0.0:
        return WORST_SCORE, f"eigenvalue {lam_min:.3e} <= -k={-k:.1e}: increase k"
    if not math.isfinite(total):
        return WORST_SCORE, f"non-finite score {total}"
    return (total if convention == "paper" else -total), None


def naswot_result(
    model: torch.nn.Module, batch: torch.Tensor | np.ndarray, k: float = 1e-4,
    convention: Convention = "paper",
) -> NaswotResult:
    """Eq. 13 for one network, with the reason when it is degenerate."""
    check_options(k, convention)
    x = validate_batch(batch)
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        return NaswotResult(WORST_SCORE, (WORST_SCORE,), f"the batch holds {bad} non-finite values",
                            convention=convention, k=k)
    jac = naswot_jacobian(model, x)
    if jac is None:
        return NaswotResult(WORST_SCORE, (WORST_SCORE,), "dead network: the output does not depend "
                            "on the input", convention=convention, k=k)
    ((score, reason),) = score_jacobians(jac.unsqueeze(0), k, convention)
    return NaswotResult(score, (score,), reason, convention=convention, k=k)


def naswot_score(
    model: torch.nn.Module, batch: torch.Tensor | np.ndarray, k: float = 1e-4,
    convention: Convention = "paper",
) -> float:
    """Eq. 13 for one network on one batch (higher is better); WORST_SCORE if degenerate.

    The reason for a worst score is logged as a warning; :func:`naswot_result` returns it.
    """
    result = naswot_result(model, batch, k, convention)
    if not result.ok:
        log.warning("NASWOT score is the worst value %g: %s", WORST_SCORE, result.reason)
    return result.score


def init_seeds(seed: int, n_init: int) -> tuple[int, ...]:
    """Distinct, reproducible seeds of the ``n_init`` initialisations derived from ``seed``.

    The same seeds are used for every architecture (common random numbers), so differences
    between architectures are not differences between random draws.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(n_init, (int, np.integer)) or n_init < 1:
        raise ConfigError(f"n_init must be a positive integer (the paper uses 5), got {n_init!r}")
    seeds: list[int] = []
    child = 0
    while len(seeds) < n_init:
        sequence = np.random.SeedSequence(int(seed), spawn_key=(child,))
        value = int(sequence.generate_state(1, dtype=np.uint32)[0])
        if value not in seeds:
            seeds.append(value)
        child += 1
    return tuple(seeds)


def mean_score(scores: Sequence[float]) -> float:
    """Eq. 14: the mean plus the standard deviation (ddof 0) of per-initialisation scores."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise DataError("eq. 14 needs at least one score")
    return float(values.mean() + values.std())


def combine_scores(
    per_init: Sequence[tuple[float, str | None]], seeds: Sequence[int], k: float, convention: Convention,
) -> NaswotResult:
    """NaswotResult of T per-initialisation scores: eq. 14, or the worst value if any is degenerate."""
    scores = tuple(score for score, _ in per_init)
    for (_, reason), seed in zip(per_init, seeds, strict=True):
        if reason is not None:
            return NaswotResult(WORST_SCORE, scores, f"initialisation seed {seed}: {reason}",
                                tuple(seeds), convention, k)
    return NaswotResult(mean_score(scores), scores, None, tuple(seeds), convention, k)


def default_build_fn() -> BuildFn:
    from hpsearch.model.network import build_network

    return build_network


def naswot_mean_score(
    spec: NetworkSpec, batch: torch.Tensor | np.ndarray, n_init: int = 5, seed: int = 0,
    k: float = 1e-4, convention: Convention = "paper", *, build_fn: BuildFn | None = None,
) -> NaswotResult:
    """Eq. 14 over ``n_init`` initialisations of ``spec``, one network at a time (the reference).

    ``build_fn(spec, seed)`` builds one network (default: ``hpsearch.model.build_network``).
    :func:`hpsearch.scoring.score_architectures` computes the same, faster, for many specs.
    """
    check_options(k, convention)
    build = build_fn or default_build_fn()
    x = validate_batch(batch, getattr(spec, "n_in", None))
    seeds = init_seeds(seed, n_init)
    per_init: list[tuple[float, str | None]] = []
    for init_seed in seeds:
        result = naswot_result(build(spec, init_seed), x, k, convention)
        per_init.append((result.score, result.reason))
    return combine_scores(per_init, seeds, k, convention)
