"""The experiments' LaTeX tables, one renderer per kind (``decodebench.kinds`` names them).

A renderer gets the experiment's aggregated table (``Aggregated``: per-dataset rows, rows of
means over datasets, headline picks) and only lays it out: rows and columns come from the data
in the config's order, so a method configuration added to the config appears everywhere without
code changes.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from markupsafe import Markup

from ..config import TUNE_EXPERIMENT
from ..headlines import base_label, params_shown
from .context import Aggregated, Context, datasets_of, methods_of
from .figures import figure_lines, figure_main, figure_multisample, figure_multisample_sweep, figure_sweep
from .latex import Cell, Formats, bold_best, latex_escape, missing

# ----------------------------------------------------------------------------- table helpers

def _rows_by_label(df, methods: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    """One table row per label: configurations that share a label and were run on disjoint
    datasets (a method tuned per dataset, as the DynaTree paper's Linear and DynaTree rows)
    become one row; otherwise each configuration keeps its own row."""
    by_label: dict[str, list[str]] = {}
    for m, label in methods:
        by_label.setdefault(label, []).append(m)
    rows, done = [], set()
    for m, label in methods:
        if m in done:
            continue
        names = by_label[label]
        seen = [set(df.loc[df["method"] == n, "dataset"]) for n in names]
        disjoint = sum(len(s) for s in seen) == len(set().union(*seen))
        group = names if len(names) > 1 and disjoint else [m]
        done.update(group)
        rows.append((group, label))
    return rows


def grouped_table(df, fmt: Formats, columns: list[tuple[str, Callable, str | None]],
                  average: list[tuple[str, Callable, str | None]] | None = None,
                  method_filter: Callable | None = None, across: pd.DataFrame | None = None) -> dict:
    """A method x (dataset x metric) table: `columns` = (header, cell(row) -> Cell, best).

    `average`: extra columns from `across`, the experiment's rows of means over datasets."""
    datasets = datasets_of(df)
    methods = [(m, lab) for m, lab in methods_of(df) if method_filter is None or method_filter(df, m)]
    avg = across
    rows, best = [], {}
    for names, label in _rows_by_label(df, methods):
        cells = [Cell(latex_escape(label))]
        for d, _ in datasets:
            sel = df[(df["dataset"] == d) & df["method"].isin(names)]
            r = sel.iloc[0] if not sel.empty else None
            for _, make, _ in columns:
                cells.append(make(r) if r is not None else Cell(Markup("--")))
        if average:
            # Averages only over one configuration: a row merged from several has none.
            assert avg is not None, "an average column needs the experiment's rows of means (across=)"
            sel = avg[avg["method"] == names[0]] if len(names) == 1 else avg.iloc[0:0]
            r = sel.iloc[0] if not sel.empty else None
            for _, make, _ in average:
                cells.append(make(r) if r is not None else Cell(Markup("--")))
        rows.append(cells)
    col = 1
    for _ in datasets:
        for _, _, direction in columns:
            if direction:
                best[col] = direction
            col += 1
    for _, _, direction in average or []:
        if direction:
            best[col] = direction
        col += 1
    return {
        "datasets": [latex_escape(lab) for _, lab in datasets],
        "subheaders": [Markup(h) for h, _, _ in columns],
        "average": [Markup(h) for h, _, _ in average or []],
        "per_dataset": len(columns),
        # more than five numbers a row: span both columns (table*); narrower tables are
        # shrunk to the column width when they do not fit (adjustbox max width)
        "float": "table*" if len(datasets) * len(columns) + len(average or []) > 5 else "table",
        "colspec": "l" + " ".join("r" * len(columns) for _ in datasets) + (" " + "r" * len(average) if average else ""),
        "rows": [[c.tex for c in r] for r in bold_best(rows, best)],
        "empty": not rows,
    }


def _cell(fmt: Formats, kind: str, col: str, std: bool = False, scale: float = 1.0, sign=False):
    def make(r):
        v = r.get(col) if r is not None else None
        v = None if missing(v) else float(v) * scale
        s = r.get(col.replace("_mean", "_std")) if std and col.endswith("_mean") else None
        s = None if missing(s) else float(s) * scale
        return Cell(fmt.num(v, kind, std=s, sign=sign), fmt.text(v, kind, sign))
    return make


def _speedup_cell(fmt: Formats, col: str = "speedup"):
    """The speedup with its interval (columns ``<col>_low`` / ``<col>_high``, when present)."""
    def make(r):
        v, lo, hi = (r.get(c) for c in (col, f"{col}_low", f"{col}_high"))
        v, lo, hi = (None if missing(x) else float(x) for x in (v, lo, hi))
        return Cell(fmt.speedup(v, lo, hi), fmt.text(v, "speedup"))
    return make


def row_speedup(fmt: Formats, row) -> Markup:
    """A row's speedup with its interval (rows of across-dataset means have none)."""
    get = row.get
    return fmt.speedup(*(None if missing(get(c)) else float(get(c)) for c in ("speedup", "speedup_low", "speedup_high")))


def _pct_cell(fmt: Formats, col: str):
    def make(r):
        v = r.get(col)
        v = None if missing(v) else float(v)
        return Cell(fmt.pct(v), fmt.text(v, "relative_change_pct", sign=True))
    return make


def _has(col):
    return lambda df, m: col in df and df[df["method"] == m][col].notna().any()



# ----------------------------------------------------------------------------- experiments

def _protocol(df) -> dict:
    first = df.iloc[0]
    return {"max_new_tokens": int(first["max_new_tokens"]) if not missing(first["max_new_tokens"]) else None,
            "prompts": int(df["prompts_measured"].max()) if not df["prompts_measured"].isna().all() else None}


def render_main(ctx: Context, experiment: str, t: Aggregated) -> None:
    """Throughput ± std and speedup per dataset (+ mean speedup over datasets); latency; acceptance."""
    fmt, df = ctx.fmt, t.wide
    multi = len(datasets_of(df)) > 1
    ctx.write_table("main", "main.tex", experiment=experiment, caption_kind=experiment,
                    table=grouped_table(df, fmt, [
                        (r"tokens/s", _cell(fmt, "tokens_per_s", "tokens_per_s_mean", std=True), "max"),
                        (r"speedup", _speedup_cell(fmt), "max")],
                        average=[(r"mean speedup", _speedup_cell(fmt), "max")] if multi else None,
                        across=t.across),
                    protocol=_protocol(df))
    ctx.write_table("latency", "latency.tex", table=grouped_table(df, fmt, [
        (r"TTFT (ms)", _cell(fmt, "time_ms", "ttft_s_mean", std=True, scale=1000), "min"),
        (r"tokens at TTFT", _cell(fmt, "rate", "tokens_at_first_commit_mean"), None),
        (r"TPOT (ms)", _cell(fmt, "time_ms", "tpot_s_mean", std=True, scale=1000), "min"),
        (r"TPOT p90 (ms)", _cell(fmt, "time_ms", "tpot_p90_s_mean", scale=1000), "min")]))
    # tokens per target forward is the one cross-family metric (bold best); acceptance and tokens
    # per round are counted differently by chains and trees, so they are never ranked
    table = grouped_table(df, fmt, [
        (r"tokens/target fwd", _cell(fmt, "rate", "tokens_per_target_forward_mean", std=True), "max"),
        (r"tokens/round", _cell(fmt, "rate", "tokens_per_round_mean", std=True), None),
        (r"acceptance", _cell(fmt, "rate", "acceptance_rate_mean", std=True), None),
        (r"rounds", _cell(fmt, "count", "rounds_mean"), None)], method_filter=_has("rounds_mean"))
    if not table["empty"]:
        ctx.flags.append("acceptance")
    ctx.write_table("acceptance", "acceptance.tex", table=table)
    figure_main(ctx, df)


def render_memory(ctx: Context, experiment: str, t: Aggregated) -> None:
    """The seed paper's layout: method | peak MiB per dataset | average | relative change."""
    fmt, df = ctx.fmt, t.wide
    multi = len(datasets_of(df)) > 1

    def layout(value: str, change: str, header: str) -> dict:
        """Several datasets: value per dataset, then its average and the average's relative
        change; one dataset: the value and its relative change (an average would repeat it)."""
        cell = _cell(fmt, "memory_mib", value)
        if multi:
            return grouped_table(df, fmt, [(header, cell, "min")], across=t.across, average=[
                ("average (MiB)", cell, "min"), ("rel. change", _pct_cell(fmt, change), None)])
        return grouped_table(df, fmt, [(header, cell, "min"), ("rel. change", _pct_cell(fmt, change), None)])

    ctx.write_table("memory", "memory.tex", multi=multi,
                    table=layout("peak_memory_mib_mean", "peak_memory_change_pct", "peak (MiB)"),
                    # Imported results often record only the total peak: no overhead table then.
                    overhead=None if "peak_memory_overhead_mib_mean" not in df
                    or df["peak_memory_overhead_mib_mean"].isna().all()
                    else layout("peak_memory_overhead_mib_mean", "overhead_change_pct", "overhead (MiB)"))


def render_length(ctx: Context, experiment: str, t: Aggregated) -> None:
    """Generation-length scaling: method variants <m>_t<T> -> throughput and speedup vs T."""
    figure_lines(ctx, t.wide, "length", x="max_new_tokens", xlabel="new tokens", line=base_label)


def render_prompt_length(ctx: Context, experiment: str, t: Aggregated) -> None:
    """Prompt-length sensitivity: dataset variants <d>_p<L> -> speedup vs L."""
    imported = (t.wide["kind"] == "imported").all()
    xlabel = "prompt length (source's unit)" if imported else "prompt tokens"
    figure_lines(ctx, t.wide, "prompt_length", x="prompt_tokens_config", xlabel=xlabel,
                 line=lambda r: r["method_label"], group="dataset_base")


def render_sweep(ctx: Context, experiment: str, t: Aggregated) -> None:
    """The best configuration per (dataset, swept method) (the aggregation's picks without a
    macro), and heatmaps of the grid."""
    fmt, df = ctx.fmt, t.wide
    grids = ctx.cfg["experiments"].get(experiment, {}).get("sweep", {})
    labels = dict(datasets_of(df))
    rows = []
    for _, p in t.picks[t.picks["macro"].isna()].iterrows():
        best = df[(df["dataset"] == p["dataset"]) & (df["method"] == p["method"])].iloc[0]
        rows.append([Cell(latex_escape(labels[best["dataset"]])), Cell(latex_escape(best["method_id"])),
                     Cell(latex_escape(params_shown(best, grids))), Cell(Markup(str(int(p["n"])))),
                     Cell(fmt.num(best["tokens_per_s_mean"], "tokens_per_s", std=best.get("tokens_per_s_std")),
                          fmt.text(best["tokens_per_s_mean"], "tokens_per_s")),
                     Cell(row_speedup(fmt, best), fmt.text(best.get("speedup"), "speedup")),
                     Cell(fmt.num(best.get("tokens_per_round_mean"), "rate"))])
    ctx.write_table("sweep", "sweep.tex", rows=[[c.tex for c in r] for r in bold_best(rows, {5: "max"})],
                    empty=not rows)
    # the tuning stage's grid on its own prompts (disjoint from the reported ones), where the
    # tuned configurations were picked: its rows of the figure, for the methods both sweep
    tune = ctx.tables.get(TUNE_EXPERIMENT)
    if tune is not None:
        shared = [m for m in grids if m in ctx.cfg["tune"]["grid"]]
        tuning = tune.wide[tune.wide["method_id"].isin(shared)].copy()
        tuning["dataset_label"] = [lab if "tuning set" in lab else f"{lab} (tuning set)"
                                   for lab in tuning["dataset_label"].astype(str)]
        df = pd.concat([df, tuning], ignore_index=True)
    figure_sweep(ctx, df, grids)


def render_ablation(ctx: Context, experiment: str, t: Aggregated) -> None:
    fmt = ctx.fmt
    ctx.write_table("ablation", "ablation.tex", table=grouped_table(t.wide, fmt, [
        ("tokens/s", _cell(fmt, "tokens_per_s", "tokens_per_s_mean", std=True), "max"),
        ("speedup", _speedup_cell(fmt), "max"),
        ("tokens/round", _cell(fmt, "rate", "tokens_per_round_mean"), "max")]))


def _multisample_columns(fmt: Formats) -> list[tuple[str, Callable, str | None]]:
    """Speedup (baseline time / method time) and memory ratios, each next to the quality of the
    samples (decodebench.quality): distinct-2, self-BLEU and the error of the NLL-per-token
    estimate against the independent reference sample."""
    ratio = lambda col: (lambda r: Cell(fmt.num(r.get(col), "ratio"), fmt.text(r.get(col), "ratio")))  # noqa: E731
    return [("speedup", _speedup_cell(fmt), "max"),
            ("memory", ratio("memory_ratio"), "min"),
            ("overhead", ratio("overhead_ratio"), "min"),
            ("distinct-2", _cell(fmt, "rate", "distinct_2_mean"), None),
            ("self-BLEU", _cell(fmt, "rate", "self_bleu_mean"), None),
            ("NLL err.", _cell(fmt, "rate", "nll_per_token_error_mean", std=True, sign=True), None)]


def render_multisample(ctx: Context, experiment: str, t: Aggregated) -> None:
    """The ladder per prompt length: ``_multisample_columns`` for every method."""
    ctx.write_table("multisample", "multisample.tex", table=grouped_table(t.wide, ctx.fmt, _multisample_columns(ctx.fmt)))
    figure_multisample(ctx, t.wide)


def render_multisample_sweep(ctx: Context, experiment: str, t: Aggregated) -> None:
    """Every configuration of the sweep (the experiment's own, then each varied setting's
    variants) with ``_multisample_columns``, and one figure per varied setting: speedup and the
    samples' quality against the setting's value."""
    ctx.write_table("multisample_sweep", "multisample_sweep.tex",
                    table=grouped_table(t.wide, ctx.fmt, _multisample_columns(ctx.fmt)))
    for dimension in ctx.cfg["experiments"][experiment].get("vary", {}):
        figure_multisample_sweep(ctx, t.wide, dimension)
        ctx.flags.append(f"multisample_sweep_{dimension}")


def render_generic(ctx: Context, experiment: str, t: Aggregated) -> None:
    """Throughput, speedup and peak memory (kind ``generic``: a table named after the experiment)."""
    fmt = ctx.fmt
    ctx.write_table(experiment, "generic.tex", experiment=experiment, table=grouped_table(t.wide, fmt, [
        ("tokens/s", _cell(fmt, "tokens_per_s", "tokens_per_s_mean", std=True), "max"),
        ("speedup", _speedup_cell(fmt), "max"),
        ("peak (MiB)", _cell(fmt, "memory_mib", "peak_memory_mib_mean"), "min")]))
