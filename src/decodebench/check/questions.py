"""Rules over imported per-question records (``questions``: Spec-Bench / FastChat answer files).

- values: impossible values in a record (non-positive wall time, negative or zero tokens in
  positive time, fewer tokens than decoding steps, an accepted length below 1);
- arithmetic: accepted lengths that do not sum to the new tokens, or are not one per step;
  a summary tokens/s that does not follow from the questions;
- lossless: a greedy lossless method whose text (SHA-256 per turn) differs from the baseline's;
- run-agreement: runs of the same setup whose per-question tokens/s disagree beyond noise;
- no-baseline: a leaderboard without a (usable) baseline, shown in absolute tokens/s;
- comparability (not applicable, a note): the baseline's tokens are new_tokens as written.

One finding per (file, rule, kind of problem): the count and the first question ids.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict

from .. import leaderboard
from ..config import CHECK_DEFAULTS
from .per_result import REL_TOL, Result
from .report import Report

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
RUN_TOLERANCE = CHECK_DEFAULTS["run_tolerance"]  # relative difference of mean tokens/s between runs
RUN_Z = 3.0  # and a paired difference this many standard errors from 0: beyond noise
HALF_DTYPES = {"float16", "bfloat16"}


def has_questions(res: Result) -> bool:
    return bool(res.data.get("questions"))


def _first(ids: list, n: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:n])
    return shown + (f" (+{len(ids) - n} more)" if len(ids) > n else "")


def _rate(q: dict) -> float | None:
    t = sum(q["wall_time_s"])
    return sum(q["new_tokens"]) / t if t > 0 else None


def rule_values(res: Result, report: Report) -> None:
    if not has_questions(res):
        return
    f = res.path
    report.ran(f, "values")
    problems: dict[str, list] = defaultdict(list)
    for q in res.data["questions"]:
        qid = q["question_id"]
        turns = list(zip(q["new_tokens"], q["wall_time_s"], q["steps"] or [None] * len(q["new_tokens"]),
                         q["output_sha256"]))
        if any(t <= 0 for _, t, _, _ in turns):
            problems["wall_time_s is not positive"].append(qid)
        if any(k < 0 for k, _, _, _ in turns):
            problems["new_tokens is negative"].append(qid)
        if any(k == 0 and t > 0 for k, t, _, _ in turns):
            text = any(k == 0 and h != EMPTY_SHA256 for k, _, _, h in turns)
            problems["new_tokens is 0 although wall_time_s is positive"
                     + (" and the turn's text is not empty" if text else "")].append(qid)
        if any(s is not None and s > k for k, _, s, _ in turns):
            problems["more decoding steps than new tokens (every step commits at least one token)"].append(qid)
        if any(s is not None and s <= 0 for _, _, s, _ in turns):
            problems["decoding steps not positive"].append(qid)
        if q["accept_lengths"] is not None and any(a < 1 for a in q["accept_lengths"]):
            problems["an accepted length below 1 (a decoding step commits at least the target's own "
                     "token)"].append(qid)
    n = len(res.data["questions"])
    for what, ids in problems.items():
        report.error(f, "values", f"questions: {what} in {len(ids)} of {n} questions (expected none; "
                                  f"first question_id {_first(ids)})")


def question_arithmetic(res: Result, report: Report) -> None:
    """The arithmetic rule on per-question records (check_paths calls it for imported results with
    questions; rule_arithmetic leaves them to it)."""
    f, qs = res.path, res.data["questions"]
    mism, steps = [], []
    for q in qs:
        acc = q["accept_lengths"]
        if acc is None:
            continue
        if sum(acc) != sum(q["new_tokens"]):
            mism.append((q["question_id"], sum(q["new_tokens"]), sum(acc)))
        if q["steps"] is not None and len(acc) != sum(q["steps"]):
            steps.append((q["question_id"], sum(q["steps"]), len(acc)))
    if mism:
        diffs = sorted({k - a for _, k, a in mism})
        report.error(f, "arithmetic", f"questions: accepted lengths do not sum to new_tokens in {len(mism)} of "
                                      f"{len(qs)} questions (expected sum(accept_lengths) = sum(new_tokens); "
                                      f"first question_id {mism[0][0]}: expected {mism[0][1]}, found {mism[0][2]}; "
                                      f"new_tokens - sum: {_first(diffs)})")
    if steps:
        report.error(f, "arithmetic", f"questions: not one accepted length per decoding step in {len(steps)} of "
                                      f"{len(qs)} questions (first question_id {steps[0][0]}: expected "
                                      f"{steps[0][1]} entries, found {steps[0][2]})")
    rates = [r for r in map(_rate, qs) if r is not None]
    stored = res.summary_mean("tokens_per_s")
    if rates and stored is not None and not math.isclose(stored, statistics.fmean(rates), rel_tol=REL_TOL):
        report.error(f, "arithmetic", f"summary.tokens_per_s is not the mean over questions of sum(new_tokens) / "
                                      f"sum(wall_time_s) (expected {statistics.fmean(rates):.6g}, found {stored:.6g})")
    # Overall follows from the task columns: the question-weighted mean of their rates.
    stats = leaderboard.task_stats(res.data)
    parts = [(stats[f"task_{t}_n"], stats[f"task_{t}_tokens_per_s"]) for t, _ in leaderboard.COLUMNS[:-1]]
    other = [r for q in qs if leaderboard.task_of(q["category"]) is None and (r := _rate(q)) is not None]
    n = sum(k for k, _ in parts) + len(other)
    if n and stats["task_overall_tokens_per_s"] is not None:
        combined = (sum(k * v for k, v in parts if k) + sum(other)) / n
        if not math.isclose(combined, stats["task_overall_tokens_per_s"], rel_tol=1e-9):
            report.error(f, "arithmetic", f"the Overall column does not follow from the task columns (expected "
                                          f"{combined:.6g}, found {stats['task_overall_tokens_per_s']:.6g})")


def question_lossless(res: Result, base: Result | None, report: Report) -> None:
    """Text hashes per turn against the baseline's, on the questions both answered."""
    f = res.path
    if base is None or not has_questions(base):
        report.not_applicable(f, "lossless", "no baseline with per-question text hashes in this experiment "
                                             "and dataset to compare outputs with")
        return
    expected = {q["question_id"]: q["output_sha256"] for q in base.data["questions"]}
    turns = same = 0
    differing = []
    for q in res.data["questions"]:
        ref = expected.get(q["question_id"])
        if ref is None:
            continue
        pairs = list(zip(ref, q["output_sha256"]))
        turns += max(len(ref), len(q["output_sha256"]))
        same += sum(a == b for a, b in pairs)
        if ref != q["output_sha256"]:
            differing.append(q["question_id"])
    if not turns:
        report.not_applicable(f, "lossless", f"no question in common with {base.path}")
        return
    if not differing:
        return
    dtype = res.data["environment"].get("dtype")
    msg = (f"greedy outputs differ from the baseline's ({base.path}): {same} of {turns} turns identical "
           f"({same / turns:.1%}), {len(differing)} questions differ, first question_id {_first(differing)} "
           "(text SHA-256 per turn)")
    if dtype == "float32":
        report.error(f, "lossless", msg + "; in float32 a lossless method must reproduce the baseline exactly")
    elif dtype in HALF_DTYPES:
        report.warning(f, "lossless", msg + f"; in {dtype}, batched verification rounds differently and can "
                                            "flip a greedy choice")
    else:
        report.warning(f, "lossless", msg + "; the source does not state the dtype (in half precision "
                                            "rounding can flip a greedy choice)")


def _setup(res: Result) -> tuple:
    d = res.data
    params = {k: v for k, v in d["method"]["params"].items() if k != "run"}
    return (d["study"], d["experiment"], d["dataset"]["name"], d["method"]["id"], repr(sorted(params.items())),
            d["models"]["target"]["name"], d["environment"].get("dtype"))


def rule_run_agreement(results: list[Result], cfg: dict | None, report: Report) -> None:
    """Runs of one setup (same method, parameters but the run number, model, dtype): their
    per-question tokens/s must agree within noise."""
    tolerance = ((cfg or {}).get("check") or {}).get("run_tolerance", RUN_TOLERANCE)
    by_setup: dict[tuple, list[Result]] = defaultdict(list)
    for r in results:
        if has_questions(r):
            by_setup[_setup(r)].append(r)
    for runs in by_setup.values():
        if len(runs) < 2:
            continue
        runs = sorted(runs, key=lambda r: r.path)
        rates = [{q["question_id"]: _rate(q) for q in r.data["questions"]} for r in runs]
        for i, a in enumerate(runs):
            report.ran(a.path, "run-agreement")
            for j in range(i + 1, len(runs)):
                b = runs[j]
                pairs = [(x, y) for k, x in rates[i].items() if x is not None and (y := rates[j].get(k)) is not None]
                if len(pairs) < 2:
                    continue
                ra, rb = [x for x, _ in pairs], [y for _, y in pairs]
                rel = statistics.fmean(ra) / statistics.fmean(rb) - 1 if statistics.fmean(rb) > 0 else math.inf
                diff = [x - y for x, y in zip(ra, rb)]
                sd = statistics.stdev(diff)
                z = statistics.fmean(diff) / (sd / math.sqrt(len(diff))) if sd > 0 else math.inf
                if abs(rel) > tolerance and abs(z) > RUN_Z:
                    report.warning(a.path, "run-agreement",
                                   f"run of the same setup as {b.path} disagrees beyond noise: mean tokens/s "
                                   f"{statistics.fmean(ra):.4g} vs {statistics.fmean(rb):.4g} ({rel:+.1%}) over "
                                   f"{len(pairs)} shared questions, paired difference {z:+.1f} standard errors "
                                   f"(expected within {tolerance:.0%} or within {RUN_Z:g} standard errors)")


def rule_leaderboard_baseline(group: list[Result], base_of, cfg: dict | None, report: Report) -> None:
    """no-baseline, and the comparability note on how the baseline's tokens are counted."""
    for res in group:
        if not has_questions(res):
            continue
        base = base_of(res)
        report.ran(res.path, "no-baseline")
        if base is None:
            report.warning(res.path, "no-baseline", "no baseline result in this experiment and dataset: the "
                                                    "leaderboard shows absolute tokens/s instead of speedups "
                                                    "(expected the experiment's baseline among the results)")
            continue
        tps = base.summary_mean("tokens_per_s")
        if tps is None or tps <= 0:
            report.warning(res.path, "no-baseline", f"the baseline {base.path} has a mean of {tps} tokens/s: no "
                                                    "speedup can be computed, the leaderboard shows absolute "
                                                    "tokens/s (expected a positive baseline rate)")
        if base is not res:
            report.not_applicable(res.path, "comparability", "comparability note: " + leaderboard.BASELINE_TOKENS_NOTE)
