"""Training-free scores of networks at initialisation (NASWOT, paper eq. 13-14, and the proxy zoo
of :mod:`hpsearch.scoring.proxies`), rank statistics, the proxy calibration study and the
automatic choice of a proxy.

Example:
    >>> from hpsearch.scoring import naswot_mean_score, score_architectures, kendall_tau
    >>> results = score_architectures(specs, batch, n_init=5, seed=0)  # many specs, fast
    >>> naswot_mean_score(specs[0], batch).score == results[0].score  # up to rounding
"""

from __future__ import annotations

from hpsearch.scoring.auto import ProxyChoice, choice_scores, choose_proxy, select_proxy
from hpsearch.scoring.batched import default_init_params, score_architectures, score_architectures_parallel
from hpsearch.scoring.experiment import ArchitectureSpace, run_naswot_study, sample_architectures
from hpsearch.scoring.naswot import (
    WORST_SCORE,
    Convention,
    NaswotResult,
    init_seeds,
    mean_score,
    naswot_jacobian,
    naswot_mean_score,
    naswot_result,
    naswot_score,
    score_jacobians,
    validate_batch,
)
from hpsearch.scoring.proxies import PROXIES, proxy_result, proxy_score, score_proxies
from hpsearch.scoring.proxy_study import ProxyStudy, ProxyStudyConfig, run_proxy_study
from hpsearch.scoring.ranking import KendallResult, kendall_tau, kendall_test
from hpsearch.scoring.study import NaswotErrorStudy, naswot_error_study

__all__ = [
    "PROXIES",
    "WORST_SCORE",
    "ProxyChoice",
    "ProxyStudy",
    "ProxyStudyConfig",
    "choice_scores",
    "choose_proxy",
    "proxy_result",
    "proxy_score",
    "run_proxy_study",
    "score_proxies",
    "select_proxy",
    "ArchitectureSpace",
    "Convention",
    "KendallResult",
    "NaswotErrorStudy",
    "NaswotResult",
    "default_init_params",
    "init_seeds",
    "kendall_tau",
    "kendall_test",
    "mean_score",
    "naswot_jacobian",
    "naswot_mean_score",
    "naswot_error_study",
    "naswot_result",
    "naswot_score",
    "run_naswot_study",
    "sample_architectures",
    "score_architectures",
    "score_architectures_parallel",
    "score_jacobians",
    "validate_batch",
]
