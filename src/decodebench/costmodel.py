"""The speculative cost model, fitted in place from what one run recorded (numpy only).

    fit = fit_method(records)                     # Fit: verify and draft phase costs
    check = realised_over_predicted(method_records, ar_records)   # PairedStat per method

Every speculative record carries, per round, the tokens fed to the target's verification
(``verify_tokens_per_round``), the draft forwards and draft tokens fed
(``draft_forwards_per_round``, ``draft_tokens_fed_per_round``) and the measured time of the
two phases (``verify_time_per_round_s``, ``draft_time_per_round_s``), plus the prefill's
time (``prefill_time_s``). From the same run:

- **verify cost** c_v(w) = a + b w: least squares of each round's verify time on its width
  (the first round of linear/hf_assisted/pld encodes the prompt: width = prompt + drafts);
- **draft cost** c_d(f, t) = c + d f + e t: least squares of each round's draft time on its
  draft forwards f and draft tokens fed t (pld: a lookup, no model; f = t = 0 gives c);
- **AR's per-token cost** c_ar: AR's decode time (wall - TTFT) / (new tokens - 1) of the same
  prompt and repeat, and its prefill: AR's TTFT.

Predicted time of a method's generation = its measured prefill + sum over its rounds of
c_d(f_r, t_r) + c_v(w_r); predicted AR time = AR's TTFT + (N - 1) c_ar. The predicted speedup
is their ratio; the realised one is AR's wall time / the method's. Their ratio per (prompt,
repeat), summarised like every speedup (``paired.summarise_ratios``: mean over prompts, 95 %
bootstrap interval), says how much of the measured speedup the model of costs explains: near
1, the time is where the model puts it (drafting and verifying at the fitted per-width cost);
below 1, time goes elsewhere (the loop's own work between phases: cache cropping, acceptance,
host syncs), which the model does not charge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .paired import PairedStat, summarise_ratios

ROUND_FIELDS = ("verify_tokens_per_round", "verify_time_per_round_s", "draft_forwards_per_round",
                "draft_tokens_fed_per_round", "draft_time_per_round_s")


@dataclass(frozen=True)
class Fit:
    verify: tuple[float, float]  # a, b: seconds, seconds per token of width
    draft: tuple[float, float, float]  # c, d, e: seconds, per forward, per token fed
    rounds: int

    def verify_s(self, width: float) -> float:
        return self.verify[0] + self.verify[1] * width

    def draft_s(self, forwards: float, tokens: float) -> float:
        return self.draft[0] + self.draft[1] * forwards + self.draft[2] * tokens


def _has_rounds(record: dict) -> bool:
    values = [v for f in ROUND_FIELDS if (v := record.get(f)) is not None]
    return len(values) == len(ROUND_FIELDS) and len({len(v) for v in values}) == 1 and len(values[0]) > 0


def _lstsq(columns: list[np.ndarray], y: np.ndarray) -> np.ndarray:
    """Least squares with the columns that vary (a constant column is folded into the intercept)."""
    x = np.column_stack([np.ones_like(y)] + columns)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef


def fit_method(records: list[dict]) -> Fit | None:
    """Fit the verify and draft costs over every round of `records` (None without rounds)."""
    rows = [r for r in records if _has_rounds(r)]
    if not rows:
        return None
    col = {f: np.concatenate([np.asarray(r[f], dtype=float) for r in rows]) for f in ROUND_FIELDS}
    verify = _lstsq([col["verify_tokens_per_round"]], col["verify_time_per_round_s"])
    draft = _lstsq([col["draft_forwards_per_round"], col["draft_tokens_fed_per_round"]],
                   col["draft_time_per_round_s"])
    return Fit(verify=(float(verify[0]), float(verify[1])),
               draft=(float(draft[0]), float(draft[1]), float(draft[2])), rounds=len(col["verify_tokens_per_round"]))


def predicted_time_s(record: dict, fit: Fit) -> float | None:
    """The method's prefill as measured (null for the families whose first round encodes the
    prompt) + every round at the fitted costs."""
    if not _has_rounds(record):
        return None
    rounds = zip(record["draft_forwards_per_round"], record["draft_tokens_fed_per_round"],
                 record["verify_tokens_per_round"])
    return (record.get("prefill_time_s") or 0.0) + sum(fit.draft_s(f, t) + fit.verify_s(w) for f, t, w in rounds)


def ar_predicted_time_s(record: dict) -> float | None:
    """AR's TTFT + (N - 1) x its mean decode step, i.e. its wall time through its own costs."""
    if record.get("ttft_s") is None or record["new_tokens"] < 1:
        return None
    step = record.get("tpot_s") or 0.0
    return record["ttft_s"] + (record["new_tokens"] - 1) * step


def speedup_pairs(records: list[dict], ar_records: list[dict], fit: Fit) -> list[tuple[dict, float, float]]:
    """(record, realised speedup, predicted speedup) of every record AR measured on the same
    (prompt, repeat), where both times can be predicted."""
    ar = {(r["prompt_id"], r["repeat"]): r for r in ar_records}
    out = []
    for r in records:
        a = ar.get((r["prompt_id"], r["repeat"]))
        predicted, ar_predicted = predicted_time_s(r, fit), ar_predicted_time_s(a) if a else None
        if a is None or not predicted or not ar_predicted:
            continue
        out.append((r, a["wall_time_s"] / r["wall_time_s"], ar_predicted / predicted))
    return out


def realised_over_predicted(records: list[dict], ar_records: list[dict], fit: Fit | None = None) -> PairedStat | None:
    """Realised / predicted speedup over AR, per (prompt, repeat), summarised over prompts."""
    fit = fit or fit_method(records)
    if fit is None:
        return None
    per_prompt: dict[str, list[float]] = {}
    for r, realised, predicted in speedup_pairs(records, ar_records, fit):
        per_prompt.setdefault(r["prompt_id"], []).append(realised / predicted)
    return summarise_ratios(per_prompt) if per_prompt else None
