"""Spec-Bench's leaderboard definitions, over results with per-question records (``questions``).

Spec-Bench (hemingkx/Spec-Bench, evaluation/speed.py) computes, per task column:

- a question's rate: sum(new_tokens) / sum(wall_time) over its turns;
- the column's speedup: mean over the column's questions of the method's rates divided by the
  mean over the same questions of the baseline's rates (``mean_of_rates``, the default);
- "#Mean Accepted Tokens": the mean of all accepted lengths of the method (every step of
  every question).

``ratio_of_totals`` (config ``leaderboard: {speedup: ratio_of_totals}``) instead divides the
method's total tokens / total time by the baseline's; it is never used unless configured.

Task columns: the eight MT-bench categories form "Multi-turn Conversation"; translation,
summarization, qa, math_reasoning and rag are one column each; Overall is every question. A
category outside these counts in Overall only. Spec-Bench counts the baseline's tokens by
re-tokenising its text; offline we take ``new_tokens`` as written (the table says so).
"""

from __future__ import annotations

import statistics

from .config import schema_defaults

DEFINITIONS = ("mean_of_rates", "ratio_of_totals")
DEFAULT_DEFINITION = schema_defaults("leaderboard")["speedup"]
MT_BENCH_CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
# (column id, header as in Spec-Bench's Leaderboard.md, categories)
TASKS = (
    ("multi_turn", "Multi-turn Conversation", MT_BENCH_CATEGORIES),
    ("translation", "Translation", ("translation",)),
    ("summarization", "Summarization", ("summarization",)),
    ("qa", "Question Answering", ("qa",)),
    ("math_reasoning", "Mathematical Reasoning", ("math_reasoning",)),
    ("rag", "Retrieval-aug. Generation", ("rag",)),
)
OVERALL = ("overall", "Overall")
COLUMNS = tuple((t, h) for t, h, _ in TASKS) + (OVERALL,)
BASELINE_TOKENS_NOTE = ("the baseline's tokens are its new_tokens as written: Spec-Bench counts them by "
                        "re-tokenising the baseline's text, which needs the model's tokenizer (not available offline)")


def task_of(category: str | None) -> str | None:
    for task, _, categories in TASKS:
        if category in categories:
            return task
    return None


def definition(cfg: dict | None) -> str:
    return ((cfg or {}).get("leaderboard") or {}).get("speedup", DEFAULT_DEFINITION)


def task_stats(result: dict) -> dict:
    """Per task column (and overall) of one result: ``task_<t>_tokens_per_s`` (mean over
    questions of the question's rate), ``task_<t>_n`` (questions with a positive wall time),
    ``task_<t>_tokens`` and ``task_<t>_time_s`` (totals); and ``mean_accepted_tokens``."""
    per_task: dict[str, list[tuple[float, float]]] = {t: [] for t, _ in COLUMNS}
    for q in result["questions"]:
        tokens, time = float(sum(q["new_tokens"])), float(sum(q["wall_time_s"]))
        if time <= 0:
            continue  # no rate (check's rule 'values' reports the question)
        for task in (task_of(q["category"]), OVERALL[0]):
            if task is not None:
                per_task[task].append((tokens, time))
    out: dict = {}
    for task, pairs in per_task.items():
        out[f"task_{task}_n"] = len(pairs)
        out[f"task_{task}_tokens_per_s"] = statistics.fmean(k / t for k, t in pairs) if pairs else None
        out[f"task_{task}_tokens"] = sum(k for k, _ in pairs) if pairs else None
        out[f"task_{task}_time_s"] = sum(t for _, t in pairs) if pairs else None
    accepted = [a for q in result["questions"] for a in (q["accept_lengths"] or [])]
    out["mean_accepted_tokens"] = statistics.fmean(accepted) if accepted else None
    return out


def speedup(row: dict, base: dict, task: str, how: str = DEFAULT_DEFINITION) -> float | None:
    """The column's speedup of `row` over `base` (aggregated rows holding task_stats)."""
    if how == "mean_of_rates":
        num, den = row.get(f"task_{task}_tokens_per_s"), base.get(f"task_{task}_tokens_per_s")
    elif how == "ratio_of_totals":
        num, den = _rate(row, task), _rate(base, task)
    else:
        raise ValueError(f"leaderboard.speedup: '{how}' is not one of {', '.join(DEFINITIONS)}")
    if num is None or den is None or _nan(num) or _nan(den) or den == 0:
        return None
    return float(num) / float(den)


def _rate(row: dict, task: str) -> float | None:
    k, t = row.get(f"task_{task}_tokens"), row.get(f"task_{task}_time_s")
    return None if k is None or t is None or _nan(k) or _nan(t) or t == 0 else float(k) / float(t)


def _nan(x) -> bool:
    try:
        return x != x
    except TypeError:
        return False
