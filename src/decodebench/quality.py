"""What N samples of one prompt are worth: diversity, likelihood, and an entropy estimate's error.

Per prompt, from the N samples (lists of token ids) and each sample's log-probability under the
target's sampling distribution (``softmax(logits / temperature)``, recorded by every
multi-sample method as ``extra.sample_logprob``):

- ``distinct_1``, ``distinct_2``: distinct n-grams / all n-grams, pooled over the N samples
  (Li et al. 2016); 1 = no n-gram repeats, near 0 = the samples repeat each other.
- ``self_bleu``: the mean over samples of the BLEU of that sample against the other N - 1 as
  references (Zhu et al. 2018, Texygen): n = 1..4, uniform weights, clipped n-gram precisions,
  brevity penalty with the closest reference length, a zero precision counted as 0.1 / the
  n-gram count (NLTK's smoothing method 1) and 0 when no unigram matches (as NLTK's
  ``sentence_bleu``). 1 = every sample is a copy of another; lower = more diverse. Null for
  N = 1.
- ``sample_logprob_mean``, ``sample_logprob_std``: mean and sample std (ddof 1) of the N
  log-probabilities (a sample's sum over its tokens).
- ``nll_per_token``: the Monte-Carlo estimate of the per-token entropy rate of the sampling
  distribution, - sum of log-probabilities / sum of sample lengths. From independent samples it
  is unbiased for the length-weighted entropy; EAB's samples share prefixes and are selected
  for high likelihood, so its estimate can be biased low.
- ``nll_per_token_reference``, ``nll_per_token_error``: the same estimate from a larger
  independent reference sample of the same prompt (``reference_samples`` of the protocol; see
  ``decodebench.harness``), and estimate - reference (signed: negative = the method's samples
  are likelier than independent draws).

Every function works on token ids, so it needs no tokenizer and no text.
"""

from __future__ import annotations

import math
from collections import Counter

SELF_BLEU_MAX_N = 4
ZERO_PRECISION = 0.1  # NLTK's smoothing method 1: a zero count becomes 0.1


def ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(samples: list[list[int]], n: int) -> float | None:
    """Distinct n-grams over all n-grams of the samples, pooled; None without any n-gram."""
    grams = [g for s in samples for g in ngrams(s, n)]
    return len(set(grams)) / len(grams) if grams else None


def bleu(hypothesis: list[int], references: list[list[int]], max_n: int = SELF_BLEU_MAX_N) -> float:
    """Sentence BLEU of `hypothesis` against `references` (see the module docstring)."""
    if not hypothesis or not references:
        return 0.0
    log_precision = 0.0
    for n in range(1, max_n + 1):
        counts = Counter(ngrams(hypothesis, n))
        total = max(1, sum(counts.values()))  # a hypothesis shorter than n: 0 / 1, smoothed
        most: Counter[tuple[int, ...]] = Counter()
        for ref in references:
            for gram, c in Counter(ngrams(ref, n)).items():
                most[gram] = max(most[gram], c)
        clipped = sum(min(c, most[gram]) for gram, c in counts.items())
        if n == 1 and clipped == 0:
            return 0.0
        log_precision += math.log((clipped or ZERO_PRECISION) / total) / max_n
    length = len(hypothesis)
    closest = min((abs(len(r) - length), len(r)) for r in references)[1]
    brevity = 1.0 if length > closest else math.exp(1 - closest / length)
    return brevity * math.exp(log_precision)


def self_bleu(samples: list[list[int]], max_n: int = SELF_BLEU_MAX_N) -> float | None:
    """Mean BLEU of each sample against the others; None for fewer than two samples."""
    if len(samples) < 2:
        return None
    scores = [bleu(s, samples[:i] + samples[i + 1:], max_n) for i, s in enumerate(samples)]
    return sum(scores) / len(scores)


def nll_per_token(samples: list[list[int]], logprobs: list[float]) -> float | None:
    tokens = sum(len(s) for s in samples)
    return -sum(logprobs) / tokens if tokens else None


def sample_quality(samples: list[list[int]], logprobs: list[float]) -> dict:
    """The record fields of one prompt's samples (all but the reference's)."""
    if len(logprobs) != len(samples):
        raise ValueError(f"{len(samples)} samples but {len(logprobs)} log-probabilities")
    mean = sum(logprobs) / len(logprobs) if logprobs else None
    std = (math.sqrt(sum((x - mean) ** 2 for x in logprobs) / (len(logprobs) - 1))
           if mean is not None and len(logprobs) > 1 else None)
    return {"distinct_1": distinct_n(samples, 1), "distinct_2": distinct_n(samples, 2),
            "self_bleu": self_bleu(samples), "sample_logprob_mean": mean, "sample_logprob_std": std,
            "nll_per_token": nll_per_token(samples, logprobs)}


def reference_error(record: dict, reference_nll: float | None) -> dict:
    """The reference fields of a record whose ``nll_per_token`` is set."""
    estimate = record.get("nll_per_token")
    error = None if estimate is None or reference_nll is None else estimate - reference_nll
    return {"nll_per_token_reference": reference_nll, "nll_per_token_error": error}


def identical_samples(records: list[dict], other: list[dict]) -> tuple[int, int]:
    """(identical, compared): samples with the same ids in two results' records of the same
    (prompt, repeat), sample by sample (``sample_sha256``); e.g. two KV stores in bf16."""
    theirs = {(r["prompt_index"], r["repeat"]): r.get("sample_sha256") for r in other}
    same = total = 0
    for r in records:
        mine, match = r.get("sample_sha256"), theirs.get((r["prompt_index"], r["repeat"]))
        if mine is None or match is None:
            continue
        total += max(len(mine), len(match))
        same += sum(a == b for a, b in zip(mine, match))
    return same, total
