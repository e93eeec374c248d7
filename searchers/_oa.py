"""Mixed-level orthogonal arrays of strength 2 for OAT, always verified.

Two constructions, the smaller array wins:

- *linear*: for every prime p, a factor with p^a among its levels gets an a x n matrix M over
  GF(p); the rows are all x in GF(p)^n and the factor's p-part is M x. Two factors are
  orthogonal when their stacked matrices have full rank, so the matrices are drawn (seeded)
  until every pair has; the p-parts of all primes combine by the Chinese remainder (mixed
  radix) into the factor's level. This always succeeds (at worst the full factorial) and often
  reaches the smallest possible run size.
- *oapackage*: where a smaller run size may exist (e.g. Plackett-Burman-like 12-run arrays),
  a depth-first extension of oapackage's root array, column by column, under a budget of calls
  and seconds; levels sorted in decreasing order, as oapackage requires. It runs in a
  subprocess, since oapackage crashes or hangs for some level sets.

Candidates of the chosen size are ranked by their generalized word-length pattern (GWLP,
smaller is better: less aliasing of main effects with interactions), and every array is
checked for strength 2 (:func:`is_strength2`) before it is returned.

Example:
    >>> array = orthogonal_array((4, 4, 3, 3, 2, 2))
    >>> array.n_rows, array.method
    (144, 'linear')
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hpsearch.errors import ConfigError

logger = logging.getLogger(__name__)

_LINEAR_CANDIDATES = 3
_OAPACKAGE_CALLS = 400
_OAPACKAGE_BRANCH = 4
_SUBPROCESS_GRACE_S = 3.0
#: oapackage overflows, crashes or hangs for factors with more levels (seen with 7, 8 and 9)
_OAPACKAGE_MAX_LEVEL = 6


@dataclass(frozen=True)
class OrthogonalArray:
    """Rows of level indices, one column per factor in the order the factors were given."""

    rows: tuple[tuple[int, ...], ...]
    levels: tuple[int, ...]
    method: str
    gwlp: tuple[float, ...] | None = None

    @property
    def n_rows(self) -> int:
        return len(self.rows)


def _prime_factors(n: int) -> dict[int, int]:
    factors: dict[int, int] = {}
    p = 2
    while p * p <= n:
        while n % p == 0:
            factors[p] = factors.get(p, 0) + 1
            n //= p
        p += 1
    if n > 1:
        factors[n] = factors.get(n, 0) + 1
    return factors


def run_size_step(levels: Sequence[int]) -> int:
    """Every strength-2 array's run size is a multiple of this (lcm of the level pair products)."""
    step = 1
    for i, s in enumerate(levels):
        step = math.lcm(step, s)
        for t in levels[i + 1 :]:
            step = math.lcm(step, s * t)
    return step


def min_run_size(levels: Sequence[int]) -> int:
    """A lower bound of the run size: a multiple of :func:`run_size_step` and >= 1 + sum(s - 1)."""
    step = run_size_step(levels)
    rao = 1 + sum(s - 1 for s in levels)
    return step * max(1, math.ceil(rao / step))


def is_strength2(rows: Sequence[Sequence[int]], levels: Sequence[int]) -> bool:
    """True when every column is balanced and every pair of columns holds every level pair
    equally often (strength 2)."""
    array = np.asarray(rows, dtype=np.int64).reshape(len(rows), len(levels))
    n = array.shape[0]
    for j, s in enumerate(levels):
        column = array[:, j]
        if n % s or column.min(initial=0) < 0 or column.max(initial=0) >= s:
            return False
        if np.any(np.bincount(column, minlength=s) != n // s):
            return False
    for i, j in itertools.combinations(range(len(levels)), 2):
        si, sj = levels[i], levels[j]
        if n % (si * sj):
            return False
        counts = np.bincount(array[:, i] * sj + array[:, j], minlength=si * sj)
        if np.any(counts != n // (si * sj)):
            return False
    return True


# -- linear construction ---------------------------------------------------------------------
def _span_codes(matrix: np.ndarray, p: int) -> np.ndarray:
    """Integer codes of every vector of the row space of `matrix` over GF(p), zero first."""
    a, n = matrix.shape
    coefficients = np.array(list(itertools.product(range(p), repeat=a)), dtype=np.int64).reshape(-1, a)
    return ((coefficients @ matrix) % p) @ (p ** np.arange(n, dtype=np.int64))


def _pairwise_full_rank(
    exponents: Sequence[int], p: int, n: int, rng: np.random.Generator, budget: int = 3000
) -> list[np.ndarray] | None:
    """Matrices M_i (a_i x n over GF(p)) with [M_i; M_j] of full rank for every pair, or None.

    Equivalently the row spaces have full dimension and share only the zero vector; random
    draws (at most `budget` of them, restarting on dead ends) keep the nonzero vectors of all
    chosen row spaces disjoint.
    """
    order = sorted(range(len(exponents)), key=lambda i: -exponents[i])
    draws = 0
    while draws < budget:
        chosen: dict[int, np.ndarray] = {}
        covered: set[int] = set()
        for i in order:
            a = exponents[i]
            for _ in range(50):
                draws += 1
                m = rng.integers(0, p, size=(a, n))
                codes = _span_codes(m, p)[1:]
                if codes.all() and len(set(codes.tolist())) == codes.size and covered.isdisjoint(codes.tolist()):
                    chosen[i] = m
                    covered.update(codes.tolist())
                    break
            else:
                break
        if len(chosen) == len(exponents):
            return [chosen[i] for i in range(len(exponents))]
    return None


def _prime_part(exponents: Sequence[int], p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(points (p^n x n), values (p^n x factors)) of the p-part; exponent 0 gives a zero column."""
    used = [a for a in exponents if a > 0]
    pairs = [a + b for a, b in itertools.combinations(used, 2)]
    n = max(pairs + used)
    # the factors' subspaces meet only in 0, so their nonzero vectors must fit into GF(p)^n
    while sum(p**a - 1 for a in used) > p**n - 1:
        n += 1
    while True:
        matrices = _pairwise_full_rank(used, p, n, rng) if n < sum(used) else None
        if matrices is None and n >= sum(used):  # block identity: the full factorial of the p-part
            matrices, offset = [], 0
            for a in used:
                block = np.zeros((a, n), dtype=np.int64)
                block[:, offset : offset + a] = np.eye(a, dtype=np.int64)
                matrices.append(block)
                offset += a
        if matrices is not None:
            break
        n += 1
    points = np.array(list(itertools.product(range(p), repeat=n)), dtype=np.int64).reshape(-1, n)
    values = np.zeros((points.shape[0], len(exponents)), dtype=np.int64)
    it = iter(matrices)
    for col, a in enumerate(exponents):
        if a:
            digits = (points @ next(it).T) % p
            values[:, col] = digits @ (p ** np.arange(a))
    return points, values


def _linear_array(levels: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    factorised = [_prime_factors(s) for s in levels]
    primes = sorted({p for f in factorised for p in f})
    result = np.zeros((1, len(levels)), dtype=np.int64)
    radix = np.ones(len(levels), dtype=np.int64)
    for p in primes:
        exponents = [f.get(p, 0) for f in factorised]
        _, values = _prime_part(exponents, p, rng)
        # every row of the array so far combined with every row of this prime part
        result = (np.repeat(result, values.shape[0], axis=0) + np.tile(values, (result.shape[0], 1)) * radix)
        radix = radix * np.array([p**a for a in exponents], dtype=np.int64)
    return result


# -- oapackage -------------------------------------------------------------------------------
def _oapackage_array(levels: Sequence[int], n_rows: int, deadline: float) -> np.ndarray | None:
    """A strength-2 array with `n_rows` rows from oapackage's extension, columns in the given
    order, or None (none found within the budget)."""
    import oapackage  # noqa: PLC0415 - optional and heavy

    order = sorted(range(len(levels)), key=lambda i: -levels[i])
    s = [levels[i] for i in order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no orthogonal arrays exist ..." for impossible sizes
        arrayclass = oapackage.arraydata_t(s, n_rows, 2, len(s))
        options = oapackage.OAextend()
        options.setAlgorithmAuto(arrayclass)
        calls = 0

        def extend(array: object) -> np.ndarray | None:
            nonlocal calls
            if array.n_columns == len(s):  # type: ignore[attr-defined]
                return np.array(array)
            if calls >= _OAPACKAGE_CALLS or time.monotonic() > deadline:
                return None
            calls += 1
            options.maximum_duration = max(0.05, deadline - time.monotonic())
            for child in list(oapackage.extend_array(array, arrayclass, options))[:_OAPACKAGE_BRANCH]:
                found = extend(child)
                if found is not None:
                    return found
            return None

        found = extend(arrayclass.create_root())
    if found is None:
        return None
    out = np.zeros_like(found)
    out[:, order] = found
    return out


def _worker() -> None:
    """Subprocess entry: read {"levels", "sizes", "seconds"} as JSON from stdin, print the rows of
    the first array found as JSON (nothing when none is found)."""
    request = json.loads(sys.stdin.read())
    deadline = time.monotonic() + float(request["seconds"])
    for n_rows in request["sizes"]:
        found = _oapackage_array(request["levels"], int(n_rows), deadline)
        if found is not None:
            print(json.dumps(found.tolist()), flush=True)
            return
        if time.monotonic() > deadline:
            return


def _oapackage_search(levels: Sequence[int], sizes: list[int], seconds: float) -> np.ndarray | None:
    """The first of `sizes` for which oapackage finds an array, searched in a subprocess: oapackage
    can crash (segmentation fault) or ignore its time limit for some level sets (e.g. three
    6-level factors), which must not take the study down."""
    try:
        import oapackage  # noqa: F401, PLC0415
    except ImportError:
        logger.info("oapackage is not installed: OAT uses the linear construction "
                    "(pip install oapackage for smaller arrays)")
        return None
    code = f"from {__name__} import _worker; _worker()"  # the installed name (hpsearch_searchers)
    request = json.dumps({"levels": list(levels), "sizes": sizes, "seconds": seconds})
    try:
        done = subprocess.run([sys.executable, "-c", code], input=request, capture_output=True, text=True,
                              timeout=seconds + _SUBPROCESS_GRACE_S, check=False)
    except subprocess.TimeoutExpired:
        logger.info("oapackage did not answer within %.0f s for levels %s", seconds, tuple(levels))
        return None
    if done.returncode != 0:
        logger.info("oapackage failed (exit code %s) for levels %s", done.returncode, tuple(levels))
        return None
    return np.array(json.loads(done.stdout), dtype=np.int64) if done.stdout.strip() else None


def _gwlp(array: np.ndarray, levels: Sequence[int]) -> tuple[float, ...] | None:
    """oapackage's GWLP (invariant to column order; computed with levels in decreasing order)."""
    try:
        import oapackage  # noqa: PLC0415
    except ImportError:
        return None
    order = sorted(range(len(levels)), key=lambda i: -levels[i])
    link = oapackage.array_link(np.ascontiguousarray(array[:, order]).astype(np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(round(float(x), 9) for x in oapackage.GWLP(link))


def _best_linear(levels: tuple[int, ...], seed: int) -> tuple[np.ndarray, tuple[float, ...] | None]:
    rng = np.random.default_rng(seed)
    candidates = [_linear_array(levels, rng) for _ in range(_LINEAR_CANDIDATES)]
    smallest = min(c.shape[0] for c in candidates)
    ranked = [(c, _gwlp(c, levels)) for c in candidates if c.shape[0] == smallest and is_strength2(c, levels)]
    if not ranked:  # pragma: no cover - the construction is orthogonal by design
        raise RuntimeError(f"the linear construction failed strength 2 for levels {levels}")
    ranked.sort(key=lambda item: item[1] or ())
    return ranked[0]


@functools.lru_cache(maxsize=64)
def orthogonal_array(levels: tuple[int, ...], seed: int = 0, search_seconds: float = 2.0) -> OrthogonalArray:
    """A verified strength-2 array for factors with these numbers of levels (cached).

    Single-level factors get a constant column; one factor alone gets its levels once each.
    """
    levels = tuple(int(s) for s in levels)
    if any(s < 1 for s in levels):
        raise ConfigError(f"every factor needs at least one level, got levels {levels}")
    active = [i for i, s in enumerate(levels) if s > 1]
    sub = tuple(levels[i] for i in active)
    if len(sub) <= 1:
        rows = [[0] * len(levels) for _ in range(sub[0] if sub else 1)]
        for r, row in enumerate(rows):
            for i in active:
                row[i] = r
        return OrthogonalArray(tuple(map(tuple, rows)), levels, "full-factorial")
    array, gwlp = _best_linear(sub, seed)
    method = "linear"
    lower, step = min_run_size(sub), run_size_step(sub)
    if lower < array.shape[0] and max(sub) <= _OAPACKAGE_MAX_LEVEL:
        found = _oapackage_search(sub, list(range(lower, array.shape[0], step)), search_seconds)
        if found is not None and is_strength2(found, sub):
            array, gwlp, method = found, _gwlp(found, sub), "oapackage"
    full = np.zeros((array.shape[0], len(levels)), dtype=np.int64)
    full[:, active] = array
    if not is_strength2(full, levels):  # pragma: no cover - checked above
        raise RuntimeError(f"orthogonal array for levels {levels} failed the strength-2 check")
    logger.info("orthogonal array for levels %s: %d runs (%s; lower bound %d)",
                levels, full.shape[0], method, lower)
    return OrthogonalArray(tuple(tuple(int(x) for x in row) for row in full), levels, method, gwlp)
