"""Spec-Bench's leaderboard layout (its Leaderboard.md), in LaTeX and Markdown."""

from __future__ import annotations

from .. import leaderboard
from ..headlines import no_speedup_reason
from ..layout import GENERATED
from ..results import atomic_write_text
from .context import Aggregated, Context, datasets_of
from .figures import figure_leaderboard
from .latex import Cell, Formats, bold_best, latex_escape, missing


def leaderboard_table(df, fmt: Formats, how: str) -> dict:
    """Spec-Bench's Leaderboard.md layout, per dataset: one row per method (the baseline
    left out), the task columns that have questions, #Mean Accepted Tokens, Overall; sorted by
    Overall, best bold. Without a baseline: absolute tokens/s (mean over questions) instead.
    Every value comes from the aggregated table (analysis: task_<t>_speedup, ...)."""
    out = []
    for d, dlabel in datasets_of(df):
        sub = df[df["dataset"] == d]
        absolute = no_speedup_reason(sub)
        has_base = absolute is None
        rows = sub[sub["method"] != sub["baseline"]] if has_base else sub
        cols = [(t, h) for t, h in leaderboard.COLUMNS[:-1]
                if f"task_{t}_n" in sub and (sub[f"task_{t}_n"].fillna(0) > 0).any()]
        cols.append(leaderboard.OVERALL)
        value = (lambda t: f"task_{t}_speedup") if has_base else (lambda t: f"task_{t}_tokens_per_s")
        kind = "speedup" if has_base else "tokens_per_s"
        order = rows.assign(_key=rows[value("overall")].astype(float)).sort_values(
            "_key", ascending=False, kind="stable", na_position="last")
        latex, markdown = [], []
        for _, r in order.iterrows():
            cells = [Cell(latex_escape(r["method_label"]))]
            md = [str(r["method_label"])]
            for t, _ in cols[:-1]:
                v = None if missing(r.get(value(t))) else float(r[value(t)])
                cells.append(Cell(fmt.speedup(v) if has_base else fmt.num(v, kind), fmt.text(v, kind)))
                md.append(_md_value(fmt, v, kind))
            acc = None if missing(r.get("mean_accepted_tokens")) else float(r["mean_accepted_tokens"])
            cells.append(Cell(fmt.num(acc, "rate"), fmt.text(acc, "rate")))
            md.append(fmt.text(acc, "rate") or "--")
            v = None if missing(r.get(value("overall"))) else float(r[value("overall")])
            cells.append(Cell(fmt.speedup(v) if has_base else fmt.num(v, kind), fmt.text(v, kind)))
            md.append(_md_value(fmt, v, kind))
            latex.append(cells)
            markdown.append(md)
        best = {i: "max" for i in range(1, len(cols) + 2)}
        bold = bold_best(latex, best)
        md_bold = [[f"**{c}**" if i and bold[j][i].tex.startswith(r"\textbf") else c for i, c in enumerate(row)]
                   for j, row in enumerate(markdown)]
        headers = [h for _, h in cols[:-1]] + ["#Mean Accepted Tokens", cols[-1][1]]
        base = sub[sub["method"] == sub["baseline"]]
        out.append({
            "dataset": latex_escape(dlabel), "dataset_plain": dlabel, "has_baseline": has_base,
            "baseline": latex_escape(base.iloc[0]["method_label"]) if has_base else None,
            "baseline_plain": str(base.iloc[0]["method_label"]) if has_base else None,
            "headers": [latex_escape(h) for h in headers], "headers_plain": headers,
            "colspec": "l" + "r" * len(headers),
            "rows": [[c.tex for c in r] for r in bold], "md_rows": md_bold,
            "questions": int(sub["task_overall_n"].max()) if "task_overall_n" in sub else None,
            "absolute_reason": absolute,
            "accepted_missing": [str(r["method_label"]) for _, r in rows.iterrows()
                                 if missing(r.get("mean_accepted_tokens"))],
        })
    return {"datasets": out, "definition": how}


def _md_value(fmt: Formats, v, kind: str) -> str:
    t = fmt.text(v, kind)
    return "--" if t is None else (f"{t}x" if kind == "speedup" else t)


LEADERBOARD_NOTES = {
    "mean_of_rates": "Speedup per column: mean over the column's questions of the method's tokens/s "
                     "divided by the mean over the same questions of the baseline's (Spec-Bench's "
                     "evaluation/speed.py); a question's tokens/s is its new tokens over its wall time, "
                     "summed over its turns.",
    "ratio_of_totals": "Speedup per column (config leaderboard.speedup: ratio_of_totals, not Spec-Bench's "
                       "definition): the method's total new tokens over its total wall time in the "
                       "column, divided by the baseline's.",
}


def leaderboard_notes(table: dict) -> list[str]:
    notes = [LEADERBOARD_NOTES[table["definition"]],
             "#Mean Accepted Tokens: the mean of all accepted lengths (tokens per decoding step).",
             "Comparability: " + leaderboard.BASELINE_TOKENS_NOTE + "."]
    for d in table["datasets"]:
        where = f" ({d['dataset_plain']})" if len(table["datasets"]) > 1 else ""
        if d["absolute_reason"]:
            notes.append(f"Absolute tokens/s (mean over questions) instead of speedups{where}: "
                         f"{d['absolute_reason']}.")
        if d["accepted_missing"]:
            notes.append(f"No accepted lengths in the source files of {', '.join(d['accepted_missing'])}{where} "
                         "(shown as --).")
    return notes


def leaderboard_markdown(table: dict) -> str:
    lines = ["<!-- Generated by decodebench.render; do not edit. -->", ""]
    for d in table["datasets"]:
        what = f"speedup over {d['baseline_plain']}" if d["has_baseline"] else "tokens/s, no speedup: see the notes"
        lines += [f"### {d['dataset_plain']} ({d['questions']} questions; {what})", ""]
        lines.append("| Models | " + " | ".join(d["headers_plain"]) + " |")
        lines.append("| --- | " + " | ".join(":---:" for _ in d["headers_plain"]) + " |")
        lines += ["| " + " | ".join(r) + " |" for r in d["md_rows"]]
        lines.append("")
    lines += [f"- {n}" for n in leaderboard_notes(table)]
    return "\n".join(lines) + "\n"


def render_leaderboard(ctx: Context, experiment: str, t: Aggregated) -> None:
    """Spec-Bench's leaderboard (LaTeX and Markdown) and the per-category speedup figure."""
    table = leaderboard_table(t.wide, ctx.fmt, leaderboard.definition(ctx.cfg))
    ctx.write_table("leaderboard", "leaderboard.tex", table=table,
                    notes=[latex_escape(n) for n in leaderboard_notes(table)])
    atomic_write_text(ctx.out / GENERATED / "tables" / "leaderboard.md", leaderboard_markdown(table))
    figure_leaderboard(ctx, t.wide)
