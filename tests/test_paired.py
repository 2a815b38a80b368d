"""Paired ratios and their bootstrap intervals against hand-computed examples."""

from __future__ import annotations

import pytest

from decodebench.paired import across_prompt_cv, paired_ratios, summarise_ratios, within_prompt_cv


def rec(prompt: int, repeat: int, tps: float, wall: float = 1.0) -> dict:
    return {"prompt_index": prompt, "prompt_id": f"p{prompt}", "repeat": repeat, "tokens_per_s": tps,
            "wall_time_s": wall}


def test_ratios_pair_the_same_prompt_and_repeat_only():
    base = [rec(0, 0, 10.0), rec(0, 1, 20.0), rec(1, 0, 5.0)]
    method = [rec(0, 0, 15.0), rec(0, 1, 30.0), rec(1, 0, 10.0), rec(2, 0, 99.0)]  # p2 has no baseline
    assert paired_ratios(method, base) == {"p0": [1.5, 1.5], "p1": [2.0]}
    # wall-time metrics: baseline / method, so > 1 is faster
    slow = [rec(0, 0, 1.0, wall=4.0)]
    assert paired_ratios(slow, [rec(0, 0, 1.0, wall=2.0)], "wall_time_s", higher_is_better=False) == {"p0": [0.5]}


def test_estimate_averages_repeats_then_prompts():
    s = summarise_ratios({"p0": [1.0, 2.0], "p1": [3.0]})
    assert s.estimate == pytest.approx((1.5 + 3.0) / 2)
    assert (s.prompts, s.pairs) == (2, 3)
    assert summarise_ratios({"p0": [1.0, 2.0], "p1": [3.0], "p2": [10.0]}, "median").estimate == pytest.approx(3.0)


def test_bootstrap_interval_of_two_prompts_matches_the_exact_distribution():
    # Two prompts with one pair each, ratios 1 and 3. A resample draws 2 prompts with
    # replacement: mean 1 (p=1/4), 2 (p=1/2), 3 (p=1/4), so the 2.5 % and 97.5 % quantiles
    # are 1 and 3.
    s = summarise_ratios({"a": [1.0], "b": [3.0]}, n_boot=4000)
    assert s.estimate == pytest.approx(2.0)
    assert (s.low, s.high) == (pytest.approx(1.0), pytest.approx(3.0))
    # at the 40 % level the interval is [2, 2]: 30 % .. 70 % quantiles of that distribution
    s = summarise_ratios({"a": [1.0], "b": [3.0]}, n_boot=4000, level=0.4)
    assert (s.low, s.high) == (pytest.approx(2.0), pytest.approx(2.0))


def test_agreeing_pairs_give_a_point_interval_and_one_pair_none():
    s = summarise_ratios({"a": [1.2, 1.2], "b": [1.2]})
    assert s.low == pytest.approx(1.2) and s.high == pytest.approx(1.2)
    one = summarise_ratios({"a": [1.3]})
    assert one.estimate == pytest.approx(1.3) and one.low is None and one.high is None
    assert summarise_ratios({}).estimate is None


def test_repeat_noise_widens_the_interval_of_a_single_prompt():
    # One prompt, four repeats: the interval comes from the repeats alone.
    s = summarise_ratios({"a": [1.0, 1.0, 2.0, 2.0]})
    assert s.estimate == pytest.approx(1.5)
    assert 1.0 <= s.low < 1.5 < s.high <= 2.0


def test_the_interval_is_deterministic():
    ratios = {"a": [1.1, 1.3], "b": [0.9, 1.0], "c": [1.5, 1.4]}
    assert summarise_ratios(ratios) == summarise_ratios(ratios)


def test_within_and_across_prompt_variation_are_told_apart():
    # repeats agree, prompts differ: stable baseline, prompt-to-prompt variation
    steady = [rec(0, 0, 10.0), rec(0, 1, 10.0), rec(1, 0, 20.0), rec(1, 1, 20.0)]
    assert within_prompt_cv(steady) == pytest.approx(0.0)
    assert across_prompt_cv(steady) == pytest.approx(0.4714, rel=1e-3)  # std(10, 20) / 15
    noisy = [rec(0, 0, 10.0), rec(0, 1, 20.0), rec(1, 0, 10.0), rec(1, 1, 20.0)]
    assert within_prompt_cv(noisy) == pytest.approx(7.0711 / 15, rel=1e-3)
    assert across_prompt_cv(noisy) == pytest.approx(0.0)
    assert within_prompt_cv([rec(0, 0, 10.0), rec(1, 0, 20.0)]) is None  # no prompt measured twice
