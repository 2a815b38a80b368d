"""Spec-Bench's leaderboard definitions against a hand-computed example, the ratio-of-totals
option, and the rendered table (LaTeX and Markdown) with and without a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decodebench import analysis, leaderboard, render
from decodebench.importers import convert, write_results

REPO = Path(__file__).resolve().parents[1]


def q(qid, category, tokens, times, accept=None):
    return {"question_id": qid, "category": category, "answer_id": "a", "model_id": "m", "tstamp": 0,
            "choices": [{"index": 0, "turns": [f"text {qid} {i}" for i in range(len(tokens))],
                         "new_tokens": tokens, "wall_time": times, "decoding_steps": [1] * len(tokens),
                         **({"accept_lengths": accept} if accept is not None else {})}]}


# Three questions: two MT-bench ones (writing, math) and one translation.
# Baseline rates: q1 (10+10)/(1+1) = 10, q2 20/1 = 20, q3 30/2 = 15.
# Method rates:   q1 (20+20)/(1+1) = 20, q2 60/1 = 60, q3 30/1 = 30.
BASELINE = [q(1, "writing", [10, 10], [1.0, 1.0]), q(2, "math", [20], [1.0]), q(3, "translation", [30], [2.0])]
METHOD = [q(1, "writing", [20, 20], [1.0, 1.0], accept=[4, 4, 4, 4, 4, 4, 4, 4, 4, 4]),
          q(2, "math", [60], [1.0], accept=[3, 3]), q(3, "translation", [30], [1.0], accept=[1, 2])]
# Multi-turn Conversation (q1, q2): mean(20, 60) / mean(10, 20) = 40 / 15 = 2.6667
# Translation (q3): 30 / 15 = 2.0
# Overall: mean(20, 60, 30) / mean(10, 20, 15) = (110/3) / 15 = 2.4444
# ratio of totals, overall: (40+60+30)/(2+1+1) = 32.5 over (20+20+30)/(2+1+2) = 14 -> 2.3214
# #Mean Accepted Tokens: (10*4 + 3+3 + 1+2) / 14 = 49/14 = 3.5
HAND = {"multi_turn": 40 / 15, "translation": 2.0, "overall": (110 / 3) / 15}


def study(tmp_path: Path, how: str | None = None, with_baseline: bool = True) -> tuple[dict, object]:
    src = tmp_path / "src"
    src.mkdir(parents=True, exist_ok=True)
    files = {"vicuna-7b-v1.3-eagle-float16-temperature-0.0": METHOD}
    if with_baseline:
        files["vicuna-7b-v1.3-vanilla-float16-temp-0.0"] = BASELINE
    converted = []
    for name, recs in files.items():
        path = src / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
        converted += convert("spec-bench", path, "lb").results
    write_results(converted, tmp_path / "results/raw/lb")
    cfg = {"study": "lb", "import": {"format": "spec-bench", "path": "src"},
           "datasets": {"spec_bench": {"label": "Spec-Bench"}},
           "experiments": {"leaderboard": {"baseline": "ar" if with_baseline else None, "datasets": ["spec_bench"],
                                           "methods": {**({"ar": {"method": "ar", "label": "Vanilla"}}
                                                          if with_baseline else {}),
                                                       "eagle": {"method": "eagle", "label": "EAGLE"}}}}}
    if how:
        cfg["leaderboard"] = {"speedup": how}
    table = analysis.wide_table(analysis.aggregate_files(cfg, "leaderboard", sorted((tmp_path / "results/raw/lb").rglob("*.json"))))
    return cfg, table


def test_definitions_against_the_hand_computed_example(tmp_path):
    _, table = study(tmp_path)
    eagle = table[table["method"] == "eagle"].iloc[0]
    for task, value in HAND.items():
        assert eagle[f"task_{task}_speedup"] == pytest.approx(value)
    assert eagle["mean_accepted_tokens"] == pytest.approx(3.5)
    assert eagle["task_multi_turn_n"] == 2 and eagle["task_translation_n"] == 1
    assert pd_missing(eagle["task_rag_speedup"])  # no rag question: no value, not 0
    # Overall equals the ordinary speedup column (ratio of the mean per-question rates)
    assert eagle["speedup"] == pytest.approx(HAND["overall"])
    base = table[table["method"] == "ar"].iloc[0]
    assert base["task_overall_speedup"] == pytest.approx(1.0)
    assert base["mean_accepted_tokens"] is None or pd_missing(base["mean_accepted_tokens"])


def test_ratio_of_totals_is_an_option_never_the_default(tmp_path):
    _, table = study(tmp_path, "ratio_of_totals")
    eagle = table[table["method"] == "eagle"].iloc[0]
    assert eagle["task_overall_speedup"] == pytest.approx(32.5 / 14)
    assert eagle["task_translation_speedup"] == pytest.approx(2.0)
    assert eagle["task_multi_turn_speedup"] == pytest.approx((100 / 3) / (40 / 3))
    with pytest.raises(ValueError, match="leaderboard.speedup: 'bogus'"):
        leaderboard.speedup({}, {}, "overall", "bogus")


def test_leaderboard_table_layout_and_markdown(tmp_path):
    cfg, table = study(tmp_path)
    t = render.leaderboard_table(table, render.Formats(cfg), leaderboard.definition(cfg))
    (d,) = t["datasets"]
    assert d["headers_plain"] == ["Multi-turn Conversation", "Translation", "#Mean Accepted Tokens", "Overall"]
    assert d["md_rows"] == [["EAGLE", "2.67x", "2.00x", "3.50", "2.44x"]]  # one row: nothing to bold
    md = render.leaderboard_markdown(t)
    assert "| Models | Multi-turn Conversation | Translation | #Mean Accepted Tokens | Overall |" in md
    assert "re-tokenising" in md and "Spec-Bench's evaluation/speed.py" in md


def test_rows_sorted_by_overall_best_bold_and_no_baseline_shows_tokens_per_s(tmp_path):
    cfg, table = study(tmp_path)
    extra = table[table["method"] == "eagle"].copy()
    extra["method"], extra["method_label"] = "sps", "SpS"
    extra["task_overall_speedup"], extra["task_translation_speedup"] = 3.0, 1.0
    two = analysis.pd.concat([table, extra], ignore_index=True)
    (d,) = render.leaderboard_table(two, render.Formats(cfg), "mean_of_rates")["datasets"]
    assert [r[0] for r in d["md_rows"]] == ["SpS", "EAGLE"]
    assert d["md_rows"][0][-1] == "**3.00x**" and d["md_rows"][1][-1] == "2.44x"
    assert d["md_rows"][1][2] == "**2.00x**" and d["md_rows"][0][2] == "1.00x"
    cfg, table = study(tmp_path / "nobase", with_baseline=False)
    t = render.leaderboard_table(table, render.Formats(cfg), "mean_of_rates")
    (d,) = t["datasets"]
    assert not d["has_baseline"] and d["md_rows"][0][-1] == f"{110 / 3:.1f}"
    assert any("no baseline run is among the source files" in n for n in render.leaderboard_notes(t))


def pd_missing(x) -> bool:
    return render.missing(x)
