"""Paired ratios and their bootstrap confidence intervals: the one definition of a speedup.

A method's speedup over its baseline is computed from pairs: the method's and the baseline's
measurement of the same prompt in the same repeat (``prompt_id``, ``repeat``), which the
interleaved protocol measures seconds apart (``decodebench.harness``).

    ratios = paired_ratios(method_records, baseline_records)           # {prompt_id: [r_rep0, ...]}
    s = summarise_ratios(ratios)                                       # PairedStat
    s.estimate, s.low, s.high                                          # 1.31 [1.22, 1.40]

- ratio of a pair = method tokens/s / baseline tokens/s (``higher_is_better``); for wall-time
  metrics (multi-sample: the time to produce all samples) baseline / method, so > 1 is faster;
- per prompt: the mean of its repeats' ratios; the estimate: the mean (or median) of the
  per-prompt values over prompts;
- the interval: a two-level (hierarchical) percentile bootstrap, ``N_BOOT`` resamples with a
  fixed seed: prompts are resampled with replacement, then each drawn prompt's repeats with
  replacement; the statistic of each resample gives the distribution, its 2.5 % and 97.5 %
  quantiles the 95 % interval. With one pair there is no interval (None).

Prompts are the population the study samples; repeats measure the machine's noise. The
bootstrap carries both, so an interval is wide when prompts disagree or when the timing was
noisy. With few prompts (3 on the embedded default) the interval is itself uncertain: the
percentile bootstrap under-covers on small samples; the tables say how many prompts and
repeats every interval rests on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
LEVEL = 0.95
STATISTICS = ("mean", "median")


@dataclass(frozen=True)
class PairedStat:
    estimate: float | None
    low: float | None
    high: float | None
    prompts: int
    pairs: int
    statistic: str = "mean"


def paired_ratios(records: list[dict], baseline: list[dict], metric: str = "tokens_per_s",
                  higher_is_better: bool = True) -> dict[str, list[float]]:
    """{prompt_id: [ratio of each repeat both measured]} over the pairs (prompt_id, repeat)."""
    base = {(r["prompt_id"], r["repeat"]): r.get(metric) for r in baseline}
    out: dict[str, list[float]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r["prompt_index"], r["repeat"])):
        b, m = base.get((r["prompt_id"], r["repeat"])), r.get(metric)
        if b is None or m is None or b <= 0 or m <= 0:
            continue
        out[r["prompt_id"]].append(m / b if higher_is_better else b / m)
    return dict(out)


def _statistic(values: np.ndarray, statistic: str, axis: int = -1) -> np.ndarray:
    return np.median(values, axis=axis) if statistic == "median" else np.mean(values, axis=axis)


def summarise_ratios(per_prompt: dict[str, list[float]], statistic: str = "mean", n_boot: int = N_BOOT,
                     seed: int = 0, level: float = LEVEL) -> PairedStat:
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    groups = [np.asarray(v, dtype=float) for _, v in sorted(per_prompt.items()) if len(v)]
    pairs = sum(len(g) for g in groups)
    if not groups:
        return PairedStat(None, None, None, 0, 0, statistic)
    prompt_means = np.array([g.mean() for g in groups])
    estimate = float(_statistic(prompt_means, statistic))
    if pairs < 2:
        return PairedStat(estimate, None, None, len(groups), pairs, statistic)
    rng = np.random.default_rng(seed)
    k, width = len(groups), max(len(g) for g in groups)
    padded = np.zeros((k, width))
    sizes = np.array([len(g) for g in groups])
    for j, g in enumerate(groups):
        padded[j, :len(g)] = g
    chosen = rng.integers(0, k, size=(n_boot, k))  # [boot, slots]: the prompt drawn into each slot
    # each slot's repeats resampled from its prompt's own repeats: [boot, slots, width]
    draws = (rng.random((n_boot, k, width)) * sizes[chosen][..., None]).astype(int)
    values = padded[chosen[..., None], draws]
    used = np.arange(width)[None, None, :] < sizes[chosen][..., None]  # a prompt with fewer repeats
    boot_means = (values * used).sum(-1) / sizes[chosen]  # [boot, slots]
    dist = _statistic(boot_means, statistic, axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(dist, [alpha, 1 - alpha])
    return PairedStat(estimate, float(low), float(high), len(groups), pairs, statistic)


def paired_speedup(records: list[dict], baseline: list[dict], multi_sample: bool = False) -> PairedStat:
    """The speedup of `records` over `baseline`: tokens/s ratios, or for multi-sample results
    (the time to produce all samples) baseline wall time / method wall time; summarised."""
    metric, higher = ("wall_time_s", False) if multi_sample else ("tokens_per_s", True)
    return summarise_ratios(paired_ratios(records, baseline, metric, higher))


def within_prompt_cv(records: list[dict], metric: str = "tokens_per_s") -> float | None:
    """Pooled coefficient of variation across the repeats of each prompt:
    sqrt(mean over prompts of the sample variance of its repeats) / mean of all values.
    None without a prompt measured twice."""
    by_prompt: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.get(metric) is not None:
            by_prompt[r["prompt_id"]].append(float(r[metric]))
    variances = [np.var(v, ddof=1) for v in by_prompt.values() if len(v) >= 2]
    values = [x for v in by_prompt.values() for x in v]
    if not variances or not values or np.mean(values) <= 0:
        return None
    return float(np.sqrt(np.mean(variances)) / np.mean(values))


def across_prompt_cv(records: list[dict], metric: str = "tokens_per_s") -> float | None:
    """Coefficient of variation of the per-prompt means (repeats averaged first)."""
    by_prompt: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.get(metric) is not None:
            by_prompt[r["prompt_id"]].append(float(r[metric]))
    means = np.array([np.mean(v) for v in by_prompt.values()])
    if len(means) < 2 or means.mean() <= 0:
        return None
    return float(means.std(ddof=1) / means.mean())
