"""Quality of multi-sample outputs (decodebench.quality) against hand-computed examples."""

import math

import pytest

from decodebench.quality import bleu, distinct_n, identical_samples, reference_error, sample_quality, self_bleu


def test_distinct_n_pools_the_samples():
    samples = [[1, 2, 3], [1, 2, 4]]
    assert distinct_n(samples, 1) == pytest.approx(4 / 6)  # {1, 2, 3, 4} of 1 2 3 1 2 4
    assert distinct_n(samples, 2) == pytest.approx(3 / 4)  # (1,2) twice, (2,3), (2,4)
    assert distinct_n([[7, 7, 7]], 1) == pytest.approx(1 / 3)
    assert distinct_n([[5], [6]], 2) is None  # no bigram at all


def test_bleu_hand_computed():
    # p1 = 3/4, p2 = 2/3 ((1,2), (2,3) of (1,2), (2,3), (3,4)); same length: no brevity penalty
    assert bleu([1, 2, 3, 4], [[1, 2, 3, 5]], max_n=2) == pytest.approx(math.sqrt(3 / 4 * 2 / 3))
    # shorter than the closest reference: p1 = p2 = 1, brevity penalty exp(1 - 4/2)
    assert bleu([1, 2], [[1, 2, 3, 4]], max_n=2) == pytest.approx(math.exp(-1))
    # clipping: 7 occurs once in the reference, four times in the hypothesis
    assert bleu([7, 7, 7, 7], [[7, 1, 2, 3]], max_n=1) == pytest.approx(1 / 4)
    # no matching bigram: 0.1 / 3 (smoothing method 1); p1 = 1
    assert bleu([1, 2, 3, 4], [[4, 3, 2, 1]], max_n=2) == pytest.approx(math.sqrt(0.1 / 3))
    assert bleu([1, 2, 3, 4], [[5, 6, 7, 8]]) == 0.0  # no unigram in common
    assert bleu([1, 2, 3, 4, 5], [[9], [1, 2, 3, 4, 5]]) == pytest.approx(1.0)  # the best reference counts
    # closest reference length 3 (|5-3| < |5-9|): no penalty since the hypothesis is longer
    assert bleu([1, 2, 3, 4, 5], [[1, 2, 3], [9] * 9], max_n=1) == pytest.approx(3 / 5)


def test_self_bleu_is_each_sample_against_the_others():
    assert self_bleu([[1, 2, 3, 4], [1, 2, 3, 5]], max_n=2) == pytest.approx(math.sqrt(1 / 2))
    a, b = [1, 2, 3, 4], [9, 8, 7, 6]
    assert self_bleu([a, a, b]) == pytest.approx(2 / 3)  # a: 1 (its copy), a: 1, b: 0
    assert self_bleu([a, b]) == 0.0
    assert self_bleu([a]) is None


def test_sample_quality_and_reference_error():
    q = sample_quality([[1, 2], [3, 4], [1, 2]], [-2.0, -4.0, -6.0])
    assert q["sample_logprob_mean"] == pytest.approx(-4.0)
    assert q["sample_logprob_std"] == pytest.approx(2.0)  # sqrt((4 + 0 + 4) / 2)
    assert q["nll_per_token"] == pytest.approx(12 / 6)
    assert q["distinct_1"] == pytest.approx(4 / 6) and q["distinct_2"] == pytest.approx(2 / 3)
    # [1, 2] against its copy: p1 = p2 = 1, no 3- or 4-grams (0.1 / 1 each); [3, 4]: no match
    assert q["self_bleu"] == pytest.approx(2 * math.sqrt(0.1) / 3)
    assert reference_error(q, 2.5) == {"nll_per_token_reference": 2.5, "nll_per_token_error": pytest.approx(-0.5)}
    assert reference_error(q, None) == {"nll_per_token_reference": None, "nll_per_token_error": None}
    one = sample_quality([[1, 2]], [-1.0])
    assert one["sample_logprob_std"] is None and one["self_bleu"] is None
    with pytest.raises(ValueError, match="2 samples but 1 log-probabilities"):
        sample_quality([[1], [2]], [-1.0])


def test_identical_samples_compares_sample_by_sample_per_prompt_and_repeat():
    a = [{"prompt_index": 0, "repeat": 0, "sample_sha256": ["x", "y", "z"]},
         {"prompt_index": 1, "repeat": 0, "sample_sha256": ["u", "v", "w"]},
         {"prompt_index": 2, "repeat": 0, "sample_sha256": ["p"]}]  # no counterpart: not compared
    b = [{"prompt_index": 1, "repeat": 0, "sample_sha256": ["u", "V", "w"]},
         {"prompt_index": 0, "repeat": 0, "sample_sha256": ["x", "y", "Z"]},
         {"prompt_index": 0, "repeat": 1, "sample_sha256": ["q", "q", "q"]}]
    assert identical_samples(a, b) == (4, 6)
    assert identical_samples(a, []) == (0, 0)
