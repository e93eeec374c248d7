"""The verdict: TPE against the null (no search) with the exact paired test; strategy claims and
the target's met/missed only when it decides. p-values checked by counting sign patterns."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from hpsearch.bench.report import TargetCheck, verdict_markdown
from hpsearch.bench.verdict import check_verdict, strategy_claims


def _runs(tpe: list[float], null: list[float]) -> pd.DataFrame:
    rows = [{"strategy": label, "repeat": r, "test_ldos_rmse": v}
            for label, values in (("tpe", tpe), ("no search", null)) for r, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_six_repeats_all_in_tpes_favour_decide() -> None:
    verdict = check_verdict(_runs([1.0, 2.0, 3.0, 1.5, 2.5, 0.5], [2.0, 3.0, 4.5, 2.0, 5.0, 1.1]))
    # 2 of the 2**6 equally likely sign patterns are as extreme: all plus, all minus
    assert verdict.p_value == pytest.approx(2 / 64) and verdict.n_better == 6 and verdict.n_pairs == 6
    assert verdict.decidable and verdict.state == "decidable"
    assert "tells searches apart" in verdict.text and "6 of 6 repeat(s)" in verdict.text
    assert verdict.to_dict()["decidable"] is True


def test_one_repeat_against_tpe_is_not_decidable() -> None:
    # TPE better in 5 of 6; the one loss is the smallest |log ratio| (rank 1): W- = 1,
    # P(W- <= 1) = 2/64 (W- = 0 or 1), two-sided 4/64
    tpe = [1.0, 1.0, 1.0, 1.0, 1.0, 1.01]
    null = [2.0, 3.0, 4.0, 5.0, 6.0, 1.0]
    verdict = check_verdict(_runs(tpe, null))
    assert verdict.p_value == pytest.approx(4 / 64) and verdict.n_better == 5
    assert not verdict.decidable and "cannot tell searches apart on this data" in verdict.text
    assert "cannot go below" not in verdict.text  # 6 repeats could have decided


def test_five_repeats_can_never_decide_and_say_so() -> None:
    verdict = check_verdict(_runs([1.0] * 5, [2.0, 3.0, 4.0, 5.0, 6.0]))
    assert verdict.p_value == pytest.approx(2 / 32) and verdict.smallest_p == pytest.approx(0.0625)
    assert not verdict.decidable and "p cannot go below 0.0625" in verdict.text and "--repeats 6" in verdict.text


def test_the_null_beating_tpe_does_not_decide() -> None:
    verdict = check_verdict(_runs([2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [1.0] * 6))
    assert verdict.p_value == pytest.approx(2 / 64) and verdict.n_better == 0 and not verdict.decidable


def test_missing_null_or_tpe_is_not_decidable() -> None:
    runs = _runs([1.0] * 6, [2.0] * 6)
    verdict = check_verdict(runs[runs["strategy"] == "tpe"])
    assert not verdict.decidable and verdict.missing is not None and "'no search'" in verdict.text
    assert math.isnan(verdict.p_value)


def _table(p_vs_tpe: float, ratio: float) -> pd.DataFrame:
    return pd.DataFrame([
        {"strategy": "tpe", "repeats": 6, "ldos_p_vs_tpe": math.nan, "ldos_ratio_vs_tpe": 1.0},
        {"strategy": "oat", "repeats": 6, "ldos_p_vs_tpe": p_vs_tpe, "ldos_ratio_vs_tpe": ratio},
        {"strategy": "no search", "repeats": 6, "ldos_p_vs_tpe": 0.5, "ldos_ratio_vs_tpe": 1.1},
    ])


def test_claims_only_when_the_verdict_decides() -> None:
    decided = check_verdict(_runs([1.0] * 6, [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]))
    undecided = check_verdict(_runs([1.0] * 5, [2.0] * 5))
    claims = strategy_claims(_table(0.03, 1.4), ["tpe"], decided)
    assert claims[0].startswith("tpe beats oat on the test LDOS RMSE") and "p = 0.03" in claims[0]
    assert claims[-1].startswith("1 other pair")
    assert strategy_claims(_table(0.03, 0.7), ["tpe"], decided)[0].startswith("oat beats tpe")
    assert strategy_claims(_table(0.03, 1.4), ["tpe"], undecided) == []


def _target(decidable: bool) -> TargetCheck:
    return TargetCheck(1.5, (1.2, 1.9), 0.01, (0.008, 0.015), 6, 3.0, 2.0, 10.0, 1000.0, decidable=decidable)


def test_target_and_markdown_say_not_decidable() -> None:
    target = _target(decidable=False)
    assert target.verdict.startswith("target not decidable") and "PASS" not in target.verdict
    assert "missed" not in target.verdict and " ok" not in target.verdict
    judged = target.to_dict()
    assert judged["passed"] is None and judged["error_ok"] is None and judged["error_ratio"] == 1.5
    assert _target(decidable=True).to_dict()["passed"] is True and "PASS" in _target(True).verdict
    undecided = check_verdict(_runs([1.0] * 5, [2.0] * 5))
    text = verdict_markdown(undecided, [], target)
    assert "Strategy claims: not decidable" in text and "cannot tell searches apart" in text
    decided = check_verdict(_runs([1.0] * 6, [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]))
    text = verdict_markdown(decided, ["tpe beats oat"], dataclasses.replace(target, decidable=True))
    assert "- tpe beats oat" in text and "target PASS" in text and "not decidable" not in text
