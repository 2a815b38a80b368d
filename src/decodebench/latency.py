"""Per-token latency from a generation's commit log (numpy only, so ``check`` can recompute
it without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass
class Latency:
    """Latency of one generation, from its commit times (seconds since the region's start).

    Each committed token gets the time of the commit that produced it: T_1 <= ... <= T_N.

    - ``ttft_s`` = time of the first commit; ``tokens_at_first_commit`` = tokens it committed
      (1 for AR; more when the first round of a speculative method commits several);
    - inter-token latencies d_i = T_i - T_(i-1) for the tokens after the first commit
      (i > tokens_at_first_commit): a commit of n tokens gives its first token the gap since
      the previous commit and the other n - 1 a gap of 0;
    - ``tpot_s`` = mean(d_i) = (T_N - T_first) / (N - tokens_at_first_commit), None when the
      first commit held every token; ``tpot_p50_s`` / ``p90`` / ``p99``: percentiles of d_i
      (numpy's linear interpolation).
    """

    ttft_s: float | None
    tokens_at_first_commit: int | None
    tpot_s: float | None
    tpot_p50_s: float | None
    tpot_p90_s: float | None
    tpot_p99_s: float | None

    @classmethod
    def from_commits(cls, times_s: list[float], tokens: list[int]) -> Latency:
        commits = [(t, n) for t, n in zip(times_s, tokens) if n > 0]
        if not commits:
            return cls(None, None, None, None, None, None)
        first_t, first_n = commits[0]
        gaps, previous = [], first_t
        for t, n in commits[1:]:
            gaps += [t - previous] + [0.0] * (n - 1)
            previous = t
        if not gaps:
            return cls(first_t, first_n, None, None, None, None)
        p50, p90, p99 = (float(v) for v in np.percentile(np.array(gaps), PERCENTILES))
        return cls(first_t, first_n, (previous - first_t) / len(gaps), p50, p90, p99)
