"""Statistics of repeated studies against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.bench.stats import bootstrap_ci, paired_comparison, summarize


def test_wilcoxon_all_pairs_one_way_is_two_over_two_to_the_n() -> None:
    # three ratios above 1: W- = 0; P(W- = 0) = 1/8 under H0, two-sided 2/8
    assert paired_comparison([2.0, 4.0, 6.0], [1.0, 1.0, 1.0]).p_value == pytest.approx(0.25)
    # six pairs, A always better: 2 / 64
    six = paired_comparison([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.5, 3.0, 4.0, 9.0, 5.5, 7.0])
    assert six.p_value == pytest.approx(2 / 64) and six.n_better == 6


def test_wilcoxon_mixed_signs_by_hand() -> None:
    # log ratios +1, -2, +3, +4 -> ranks 1..4, W- = 2. Subsets of {1,2,3,4} with rank sum <= 2:
    # {}, {1}, {2}: P(W- <= 2) = 3/16, two-sided 6/16
    e = math.e
    result = paired_comparison([e**1, e**-2, e**3, e**4], [1.0, 1.0, 1.0, 1.0])
    assert result.p_value == pytest.approx(6 / 16)
    assert result.n_pairs == 4 and result.n_better == 1
    assert result.ratio.median == pytest.approx(float(np.median([e**1, e**-2, e**3, e**4])))


def test_pairs_with_a_missing_value_are_dropped() -> None:
    result = paired_comparison([2.0, math.nan, 6.0], [1.0, 1.0, 3.0])
    assert result.n_pairs == 2 and result.ratio.median == pytest.approx(2.0)
    assert math.isnan(paired_comparison([1.0], [2.0]).p_value)  # one pair: no test
    with pytest.raises(ValueError, match="same repeats"):
        paired_comparison([1.0, 2.0], [1.0])


def test_bootstrap_ci_brackets_the_median_and_is_reproducible() -> None:
    values = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0]
    low, high = bootstrap_ci(values)
    assert low <= float(np.median(values)) <= high and low >= 1.0 and high <= 9.0
    assert bootstrap_ci(values) == (low, high)  # seeded
    # the percentile bootstrap of the median of {1, 2} can only give 1, 1.5 or 2
    assert bootstrap_ci([1.0, 2.0]) == (1.0, 2.0)
    summary = summarize([3.1, 2.4, 5.0, math.nan])
    assert summary.median == pytest.approx(3.1) and summary.n == 3 and summary.n_total == 4
    assert math.isnan(summarize([]).median) and summarize([]).text() == "n/a"
