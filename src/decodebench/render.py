"""Rendering: aggregated tables -> LaTeX tables, figures, numbers.tex, setup.tex, MANIFEST.

    manifest_artifacts = render_all(cfg, Path("."))   # writes ./paper/generated/...

Presentation only: every number shown comes from ``results/tables/<study>/<experiment>.csv``
(written by ``decodebench.analysis``) or, for the setup section, from the result files'
provenance; nothing is measured or recomputed here beyond choosing, averaging over datasets
(``analysis.across_datasets``) and formatting.

Which artifacts exist depends on the config only (``layout.artifacts``), so Snakemake knows
them before anything runs: each experiment id has a renderer (``RENDERERS``); an id without
one gets the generic results table. Inside a table the rows and columns come from the data, in
the config's order, so a method configuration added to the config appears everywhere
without code changes.

Templates (``templates/*.tex``) use LaTeX-safe delimiters: ``\\VAR{x}``, ``\\BLOCK{...}``,
``\\#{comment}``. Every string that reaches a template is LaTeX-escaped unless it is a
``Markup`` built here (numbers in ``\\num{}``, bold cells). The best value of a column is
bold (all values that equal it once formatted).

Output is deterministic (byte-identical re-renders): sorted inputs, fixed float formats,
matplotlib with fixed fonts and without dates in the files.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from . import analysis, layout, leaderboard
from .layout import GENERATED, MANIFEST, artifacts
from .results import atomic_write_text, file_sha256

MANIFEST_VERSION = "1.0"

# Decimal places per kind of number; a config's `formats` overrides them.
DEFAULT_FORMATS = {"tokens_per_s": 1, "speedup": 2, "memory_mb": 1, "relative_change_pct": 2,
                   "ratio": 2, "time_ms": 1, "rate": 2, "count": 1}
SPECULATIVE_IDS = ("linear", "tree", "dynatree", "hf_assisted", "pld")


# ----------------------------------------------------------------------------- formatting

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}"}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))


def latex_escape(value) -> Markup:
    """Text safe in LaTeX: every special character escaped; Markup passes unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(_LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], str(value)))


def _missing(x) -> bool:
    """None, NaN or pandas' NA."""
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


class Formats:
    """Number formatting with the config's decimal places (``formats``)."""

    def __init__(self, cfg: dict):
        self.digits = {**DEFAULT_FORMATS, **cfg.get("formats", {})}

    def text(self, x, kind: str, sign: bool = False) -> str | None:
        """Plain number text (rounded), or None when missing."""
        if _missing(x):
            return None
        return f"{float(x):{'+' if sign else ''}.{self.digits[kind]}f}"

    def num(self, x, kind: str, std=None, sign: bool = False) -> Markup:
        """``\\num{12.3 \\pm 0.4}``; ``--`` when missing."""
        t = self.text(x, kind, sign)
        if t is None:
            return Markup("--")
        s = self.text(std, kind)
        return Markup(rf"\num{{{t} \pm {s}}}" if s is not None else rf"\num{{{t}}}")

    def speedup(self, x, low=None, high=None) -> Markup:
        """``1.23x``, with its 95 % interval ``[1.10, 1.35]`` in small type when there is one."""
        t = self.text(x, "speedup")
        if t is None:
            return Markup("--")
        lo, hi = self.text(low, "speedup"), self.text(high, "speedup")
        interval = rf" {{\scriptsize[\num{{{lo}}}, \num{{{hi}}}]}}" if lo is not None and hi is not None else ""
        return Markup(rf"\num{{{t}}}\(\times\){interval}")

    def pct(self, x) -> Markup:
        t = self.text(x, "relative_change_pct", sign=True)
        return Markup("--") if t is None else Markup(rf"\num{{{t}}}\,\%")


@dataclass
class Cell:
    """One table cell: its LaTeX, and the value that decides 'best' (None: not compared)."""
    tex: Markup
    key: str | None = None  # the rounded value compared for bold

    def bold(self) -> Cell:
        return Cell(Markup(rf"\textbf{{{self.tex}}}"), self.key)


def bold_best(rows: list[list[Cell]], columns: dict[int, str]) -> list[list[Cell]]:
    """Bold the best cell(s) of each column index in `columns` ('max' or 'min');
    ties (equal once rounded) are all bold."""
    rows = [list(r) for r in rows]
    for col, direction in columns.items():
        keys = [float(r[col].key) for r in rows if r[col].key is not None]
        if len(keys) < 2:
            continue
        best = max(keys) if direction == "max" else min(keys)
        for r in rows:
            if r[col].key is not None and float(r[col].key) == best:
                r[col] = r[col].bold()
    return rows


# ----------------------------------------------------------------------------- templates

def template_env(root: Path):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(root) / "templates")),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        line_comment_prefix="%#", trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False, undefined=jinja2.StrictUndefined,
        finalize=latex_escape,  # every \VAR{} output is escaped unless it is Markup
    )
    env.filters["tex"] = Markup  # template text (captions), never data
    env.filters["csname"] = _csname
    env.filters["macro"] = _macro
    return env


def _csname(value) -> Markup:
    """A name used inside \\csname (experiment, dataset, method ids): checked, not escaped."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", str(value)):
        raise ValueError(f"'{value}' cannot be used in a LaTeX macro key (letters, digits, _ . + - only)")
    return Markup(str(value))


def _macro(value) -> Markup:
    if not re.fullmatch(r"[A-Za-z]+", str(value)):
        raise ValueError(f"'{value}' is not a LaTeX macro name (letters only)")
    return Markup(str(value))


# ----------------------------------------------------------------------------- table helpers

def _datasets(df) -> list[tuple[str, str]]:
    """(name, label) in table order; variants of one dataset (same label, prompt_lengths)
    are told apart by their prompt length."""
    seen, tokens = {}, {}
    for _, r in df.iterrows():
        seen.setdefault(r["dataset"], r["dataset_label"])
        tokens.setdefault(r["dataset"], r.get("prompt_tokens_config"))
    labels = list(seen.values())
    return [(d, f"{lab}, {int(tokens[d])} tokens" if labels.count(lab) > 1 and not _missing(tokens[d]) else lab)
            for d, lab in seen.items()]


def _methods(df) -> list[tuple[str, str]]:
    seen = {}
    for _, r in df.sort_values(["method_order"], kind="stable").iterrows():
        seen.setdefault(r["method"], r["method_label"])
    return list(seen.items())


def _get(df, dataset, method, col):
    sel = df[(df["dataset"] == dataset) & (df["method"] == method)]
    if sel.empty or col not in sel:
        return None
    v = sel.iloc[0][col]
    return None if _missing(v) else v


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
                  method_filter: Callable | None = None) -> dict:
    """A method x (dataset x metric) table: `columns` = (header, cell(row) -> Cell, best).

    `average`: extra columns over datasets, computed from analysis.across_datasets rows."""
    datasets = _datasets(df)
    methods = [(m, lab) for m, lab in _methods(df) if method_filter is None or method_filter(df, m)]
    avg = analysis.across_datasets(df) if average else None
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
        v = None if _missing(v) else float(v) * scale
        s = r.get(col.replace("_mean", "_std")) if std and col.endswith("_mean") else None
        s = None if _missing(s) else float(s) * scale
        return Cell(fmt.num(v, kind, std=s, sign=sign), fmt.text(v, kind, sign))
    return make


def _speedup_cell(fmt: Formats, col: str = "speedup"):
    """The speedup with its interval (columns ``<col>_low`` / ``<col>_high``, when present)."""
    def make(r):
        v, lo, hi = (r.get(c) for c in (col, f"{col}_low", f"{col}_high"))
        v, lo, hi = (None if _missing(x) else float(x) for x in (v, lo, hi))
        return Cell(fmt.speedup(v, lo, hi), fmt.text(v, "speedup"))
    return make


def _row_speedup(fmt: Formats, row) -> Markup:
    """A row's speedup with its interval (rows of across-dataset means have none)."""
    get = row.get
    return fmt.speedup(*(None if _missing(get(c)) else float(get(c)) for c in ("speedup", "speedup_low", "speedup_high")))


def _pct_cell(fmt: Formats, col: str):
    def make(r):
        v = r.get(col)
        v = None if _missing(v) else float(v)
        return Cell(fmt.pct(v), fmt.text(v, "relative_change_pct", sign=True))
    return make


def _has(col):
    return lambda df, m: col in df and df[df["method"] == m][col].notna().any()


# ----------------------------------------------------------------------------- experiments

@dataclass
class Context:
    cfg: dict
    root: Path
    out: Path
    fmt: Formats
    env: object
    tables: dict  # experiment -> DataFrame
    numbers: list  # (macro name, Markup value, comment)
    flags: list  # names of non-empty artifacts

    def write_table(self, name: str, template: str, **data) -> None:
        text = self.env.get_template(template).render(fmt=self.fmt, **data)
        atomic_write_text(self.out / GENERATED / "tables" / f"{name}.tex", text)

    def number(self, name: str, value, comment: str = "") -> None:
        self.numbers.append((name, latex_escape(value), comment))


def macro_prefix(experiment: str) -> str:
    """Experiment id -> the letters-only prefix of its macros (prompt_length -> PromptLength)."""
    words = re.split(r"[^A-Za-z0-9]+", experiment)
    digits = "Zero One Two Three Four Five Six Seven Eight Nine".split()
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    return re.sub(r"[0-9]", lambda m: digits[int(m.group())], name)


def _best_row(df, col: str):
    """The row with the largest `col` (ties: first in config order) among the methods compared
    with a baseline: a headline pick never names the baseline itself as "the best" (it is
    chosen only when it is the only row)."""
    cand = df[df[col].notna()] if col in df else df.iloc[0:0]
    is_base = (cand["speedup_kind"] == "baseline") if "speedup_kind" in cand else (cand["method"] == cand["baseline"])
    if (~is_base).any():
        cand = cand[~is_base]
    if cand.empty:
        return None
    return cand.loc[cand[col].astype(float).idxmax()]


def _value_numbers(ctx: Context, experiment: str, df) -> None:
    """\\dbdef{experiment}{dataset}{method}{metric}{value}: every aggregated number, citable
    as \\dbval{experiment}{dataset}{method}{metric}."""
    fmt = ctx.fmt
    kinds = {"tokens_per_s_mean": ("tokens_per_s", 1), "ttft_s_mean": ("time_ms", 1000),
             "tpot_s_mean": ("time_ms", 1000), "peak_memory_mb_mean": ("memory_mb", 1),
             "peak_memory_overhead_mb_mean": ("memory_mb", 1), "acceptance_rate_mean": ("rate", 1),
             "tokens_per_round_mean": ("rate", 1), "token_steps_mean": ("count", 1)}
    for _, r in df.iterrows():
        for col, (kind, scale) in kinds.items():
            if col in r and not _missing(r[col]):
                ctx.numbers.append(((experiment, r["dataset"], r["method"], col.removesuffix("_mean")),
                                    Markup(fmt.num(float(r[col]) * scale, kind)), ""))
        if not _missing(r.get("speedup")):
            ctx.numbers.append(((experiment, r["dataset"], r["method"], "speedup"), fmt.speedup(r["speedup"]), ""))
        for col in ("speedup_low", "speedup_high"):
            if not _missing(r.get(col)):
                ctx.numbers.append(((experiment, r["dataset"], r["method"], col), fmt.speedup(r[col]), ""))
        for col in ("peak_memory_change_pct", "overhead_change_pct"):
            if not _missing(r.get(col)):
                ctx.numbers.append(((experiment, r["dataset"], r["method"], col), fmt.pct(r[col]), ""))
        if not _missing(r.get("memory_ratio")):
            ctx.numbers.append(((experiment, r["dataset"], r["method"], "memory_ratio"),
                                fmt.num(r["memory_ratio"], "ratio"), ""))


def render_speed(ctx: Context, experiment: str, df, table_name: str | None = None) -> None:
    """Throughput ± std and speedup per dataset (+ average speedup); latency; acceptance."""
    fmt = ctx.fmt
    p = macro_prefix(experiment)
    name = table_name or experiment
    multi = len(_datasets(df)) > 1
    ctx.write_table(name, "main.tex", experiment=experiment, caption_kind=experiment,
                    table=grouped_table(df, fmt, [
                        (r"tokens/s", _cell(fmt, "tokens_per_s", "tokens_per_s_mean", std=True), "max"),
                        (r"speedup", _speedup_cell(fmt), "max")],
                        average=[(r"mean speedup", _speedup_cell(fmt), "max")] if multi else None),
                    protocol=_protocol(df))
    best = _best_row(analysis.across_datasets(df), "speedup")
    if best is not None:
        ctx.number(f"{p}BestMethod", best["method_label"], "fastest configuration (mean speedup over datasets)")
        ctx.number(f"{p}BestSpeedup", _row_speedup(fmt, best))
        ctx.number(f"{p}BestThroughput", fmt.num(best["tokens_per_s_mean"], "tokens_per_s"))
    base = df[df["method"] == df["baseline"]]
    if not base.empty:
        ctx.number(f"{p}BaselineMethod", base.iloc[0]["method_label"])
        ctx.number(f"{p}BaselineThroughput", fmt.num(base["tokens_per_s_mean"].astype(float).mean(), "tokens_per_s"),
                   "baseline tokens/s, mean over datasets")
    top = _best_row(df, "speedup")
    if top is not None:
        ctx.number(f"{p}TopSpeedup", _row_speedup(fmt, top), "largest speedup of any (dataset, method)")
        ctx.number(f"{p}TopSpeedupMethod", top["method_label"])
        ctx.number(f"{p}TopSpeedupDataset", top["dataset_label"])
    ctx.number(f"{p}NumMethods", str(len(_methods(df))))
    ctx.number(f"{p}NumDatasets", str(len(_datasets(df))))


def _protocol(df) -> dict:
    first = df.iloc[0]
    return {"max_new_tokens": int(first["max_new_tokens"]) if not _missing(first["max_new_tokens"]) else None,
            "prompts": int(df["prompts_measured"].max()) if not df["prompts_measured"].isna().all() else None}


def render_latency(ctx: Context, experiment: str, df) -> None:
    fmt = ctx.fmt
    ctx.write_table("latency", "latency.tex", table=grouped_table(df, fmt, [
        (r"TTFT (ms)", _cell(fmt, "time_ms", "ttft_s_mean", std=True, scale=1000), "min"),
        (r"tokens at TTFT", _cell(fmt, "rate", "tokens_at_first_commit_mean"), None),
        (r"TPOT (ms)", _cell(fmt, "time_ms", "tpot_s_mean", std=True, scale=1000), "min"),
        (r"TPOT p90 (ms)", _cell(fmt, "time_ms", "tpot_p90_s_mean", scale=1000), "min")]))


def render_acceptance(ctx: Context, experiment: str, df) -> None:
    fmt = ctx.fmt
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


def render_main(ctx: Context, experiment: str, df) -> None:
    render_speed(ctx, experiment, df)
    render_latency(ctx, experiment, df)
    render_acceptance(ctx, experiment, df)
    figure_main(ctx, df)


def render_memory(ctx: Context, experiment: str, df) -> None:
    """The seed paper's layout: method | peak MB per dataset | average | relative change."""
    fmt = ctx.fmt
    p = macro_prefix(experiment)
    def layout(value: str, change: str, header: str) -> dict:
        """Several datasets: value per dataset, then its average and the average's relative
        change; one dataset: the value and its relative change (an average would repeat it)."""
        cell = _cell(fmt, "memory_mb", value)
        if len(_datasets(df)) > 1:
            return grouped_table(df, fmt, [(header, cell, "min")], average=[
                ("average (MiB)", cell, "min"), ("rel. change", _pct_cell(fmt, change), None)])
        return grouped_table(df, fmt, [(header, cell, "min"), ("rel. change", _pct_cell(fmt, change), None)])

    multi = len(_datasets(df)) > 1
    ctx.write_table("memory", "memory.tex", multi=multi,
                    table=layout("peak_memory_mb_mean", "peak_memory_change_pct", "peak (MiB)"),
                    # Imported results often record only the total peak: no overhead table then.
                    overhead=None if "peak_memory_overhead_mb_mean" not in df
                    or df["peak_memory_overhead_mb_mean"].isna().all()
                    else layout("peak_memory_overhead_mb_mean", "overhead_change_pct", "overhead (MiB)"))
    avg = analysis.across_datasets(df)
    base = avg[avg["method"] == avg["baseline"]]
    if not base.empty:
        ctx.number(f"{p}BaselinePeak", fmt.num(base.iloc[0]["peak_memory_mb_mean"], "memory_mb"),
                   "baseline peak memory (MB), mean over datasets")
    others = avg[avg["peak_memory_change_pct"].notna()]  # the baseline (+0 %) included
    if not others.empty:
        hi = others.loc[others["peak_memory_change_pct"].astype(float).idxmax()]
        lo = others.loc[others["peak_memory_change_pct"].astype(float).idxmin()]
        ctx.number(f"{p}LargestIncreaseMethod", hi["method_label"])
        ctx.number(f"{p}LargestIncrease", fmt.pct(hi["peak_memory_change_pct"]))
        ctx.number(f"{p}SmallestIncreaseMethod", lo["method_label"])
        ctx.number(f"{p}SmallestIncrease", fmt.pct(lo["peak_memory_change_pct"]))


def _base_label(r) -> str:
    """A length variant's label without its budget suffix (a config label has none)."""
    if r["method_label"] != r["method"]:
        return r["method_label"]
    return r["method"].rsplit("_t", 1)[0] if "_t" in r["method"] else r["method"]


def _range_numbers(ctx: Context, experiment: str, df, column: str) -> None:
    """<P>Shortest/<P>Longest values of `column`, and the best speedup (and its method) at each."""
    fmt, p = ctx.fmt, macro_prefix(experiment)
    lengths = sorted(int(x) for x in df[column].dropna().unique())
    if not lengths:
        return
    ctx.number(f"{p}Shortest", str(lengths[0]))
    ctx.number(f"{p}Longest", str(lengths[-1]))
    for tag, length in (("Shortest", lengths[0]), ("Longest", lengths[-1])):
        best = _best_row(df[df[column] == length], "speedup")
        if best is not None:
            ctx.number(f"{p}BestSpeedupAt{tag}", _row_speedup(fmt, best))
            ctx.number(f"{p}BestMethodAt{tag}", _base_label(best))


def render_length(ctx: Context, experiment: str, df) -> None:
    """Generation-length scaling: method variants <m>_t<T> -> throughput and speedup vs T."""
    figure_lines(ctx, df, "length", x="max_new_tokens", xlabel="new tokens", line=_base_label)
    _range_numbers(ctx, experiment, df, "max_new_tokens")


def render_prompt_length(ctx: Context, experiment: str, df) -> None:
    """Prompt-length sensitivity: dataset variants <d>_p<L> -> speedup vs L."""
    imported = (df["kind"] == "imported").all()
    xlabel = "prompt length (source's unit)" if imported else "prompt tokens"
    figure_lines(ctx, df, "prompt_length", x="prompt_tokens_config", xlabel=xlabel,
                 line=lambda r: r["method_label"], group="dataset_base")
    _range_numbers(ctx, experiment, df, "prompt_tokens_config")


def render_sweep(ctx: Context, experiment: str, df) -> None:
    """Best configuration per (dataset, method) of the sweep, and heatmaps of the grid."""
    fmt = ctx.fmt
    p = macro_prefix(experiment)
    grids = ctx.cfg["experiments"].get(experiment, {}).get("sweep", {})
    rows = []
    for d, dlabel in _datasets(df):
        sub = df[df["dataset"] == d]
        base = sub[sub["method"] == sub["baseline"]]
        for method_id in sorted(sub["method_id"].unique(), key=lambda m: list(grids).index(m) if m in grids else -1):
            cand = sub[(sub["method_id"] == method_id) & (sub["method"] != sub["baseline"])]
            if cand.empty:
                continue
            best = cand.loc[cand["tokens_per_s_mean"].astype(float).idxmax()]
            params = json.loads(best["params"])
            shown = {k: params[k] for k in grids.get(method_id, params)}
            rows.append([Cell(latex_escape(dlabel)), Cell(latex_escape(method_id)),
                         Cell(latex_escape(", ".join(f"{k}={v}" for k, v in shown.items()))),
                         Cell(Markup(str(len(cand)))),
                         Cell(fmt.num(best["tokens_per_s_mean"], "tokens_per_s", std=best.get("tokens_per_s_std")),
                              fmt.text(best["tokens_per_s_mean"], "tokens_per_s")),
                         Cell(_row_speedup(fmt, best), fmt.text(best.get("speedup"), "speedup")),
                         Cell(fmt.num(best.get("tokens_per_round_mean"), "rate"))])
            ctx.number(("sweep-best", d, method_id, "config"), latex_escape(best["method_label"]), "")
        if not base.empty:
            ctx.number(("sweep-baseline", d, str(base.iloc[0]["method"]), "tokens_per_s"),
                       fmt.num(base.iloc[0]["tokens_per_s_mean"], "tokens_per_s"), "")
    ctx.write_table("sweep", "sweep.tex", rows=[[c.tex for c in r] for r in bold_best(rows, {5: "max"})],
                    empty=not rows)
    best = _best_row(df, "speedup")
    if best is not None:
        ctx.number(f"{p}BestConfig", best["method_label"])
        ctx.number(f"{p}BestSpeedup", _row_speedup(fmt, best))
        ctx.number(f"{p}BestDataset", best["dataset_label"])
    ctx.number(f"{p}NumConfigs", str(int((df["method"] != df["baseline"]).sum())))
    figure_sweep(ctx, df, grids)


def render_ablation(ctx: Context, experiment: str, df) -> None:
    fmt = ctx.fmt
    p = macro_prefix(experiment)
    ctx.write_table("ablation", "ablation.tex", table=grouped_table(df, fmt, [
        ("tokens/s", _cell(fmt, "tokens_per_s", "tokens_per_s_mean", std=True), "max"),
        ("speedup", _speedup_cell(fmt), "max"),
        ("tokens/round", _cell(fmt, "rate", "tokens_per_round_mean"), "max")]))
    avg = analysis.across_datasets(df)
    steps = [r for _, r in avg.iterrows() if r["method"] != r["baseline"]] or [r for _, r in avg.iterrows()]
    if steps:
        ctx.number(f"{p}FirstMethod", steps[0]["method_label"])
        ctx.number(f"{p}FirstSpeedup", _row_speedup(fmt, steps[0]))
        ctx.number(f"{p}LastMethod", steps[-1]["method_label"])
        ctx.number(f"{p}LastSpeedup", _row_speedup(fmt, steps[-1]))


def render_multisample(ctx: Context, experiment: str, df) -> None:
    """Speedup (baseline time / method time) and memory ratio per prompt length, each next to
    the quality of the samples (decodebench.quality): distinct-2, self-BLEU and the error of
    the NLL-per-token estimate against the independent reference sample."""
    fmt = ctx.fmt
    p = macro_prefix(experiment)
    ratio = lambda col: (lambda r: Cell(fmt.num(r.get(col), "ratio"), fmt.text(r.get(col), "ratio")))  # noqa: E731
    ctx.write_table("multisample", "multisample.tex", table=grouped_table(df, fmt, [
        ("speedup", _speedup_cell(fmt), "max"),
        ("memory", ratio("memory_ratio"), "min"),
        ("overhead", ratio("overhead_ratio"), "min"),
        ("distinct-2", _cell(fmt, "rate", "distinct_2_mean"), None),
        ("self-BLEU", _cell(fmt, "rate", "self_bleu_mean"), None),
        ("NLL err.", _cell(fmt, "rate", "nll_per_token_error_mean", std=True, sign=True), None)]))
    figure_multisample(ctx, df)
    best = _best_row(df, "speedup")
    if best is not None:
        ctx.number(f"{p}BestMethod", best["method_label"])
        ctx.number(f"{p}BestSpeedup", _row_speedup(fmt, best))
        ctx.number(f"{p}BestDataset", best["dataset_label"])
        ctx.number(f"{p}BestMemoryRatio", fmt.num(best.get("memory_ratio"), "ratio"))
        ctx.number(f"{p}BestOverheadRatio", fmt.num(best.get("overhead_ratio"), "ratio"))
        ctx.number(f"{p}BestSelfBleu", fmt.num(best.get("self_bleu_mean"), "rate"))
        ctx.number(f"{p}BestNllError", fmt.num(best.get("nll_per_token_error_mean"), "rate", sign=True))
    base = df[df["method"] == df["baseline"]]
    if not base.empty:
        ctx.number(f"{p}BaselineMethod", base.iloc[0]["method_label"])


def render_generic(ctx: Context, experiment: str, df) -> None:
    """An experiment id without its own renderer: throughput, speedup and memory."""
    fmt = ctx.fmt
    ctx.write_table(experiment, "generic.tex", experiment=experiment, table=grouped_table(df, fmt, [
        ("tokens/s", _cell(fmt, "tokens_per_s", "tokens_per_s_mean", std=True), "max"),
        ("speedup", _speedup_cell(fmt), "max"),
        ("peak (MB)", _cell(fmt, "memory_mb", "peak_memory_mb_mean"), "min")]))


def leaderboard_table(df, fmt: Formats, how: str) -> dict:
    """Spec-Bench's Leaderboard.md layout, per dataset: one row per method (the baseline
    left out), the task columns that have questions, #Mean Accepted Tokens, Overall; sorted by
    Overall, best bold. Without a baseline: absolute tokens/s (mean over questions) instead.
    Every value comes from the aggregated table (analysis: task_<t>_speedup, ...)."""
    out = []
    for d, dlabel in _datasets(df):
        sub = df[df["dataset"] == d]
        absolute = _no_speedup_reason(sub)
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
                v = None if _missing(r.get(value(t))) else float(r[value(t)])
                cells.append(Cell(fmt.speedup(v) if has_base else fmt.num(v, kind), fmt.text(v, kind)))
                md.append(_md_value(fmt, v, kind))
            acc = None if _missing(r.get("mean_accepted_tokens")) else float(r["mean_accepted_tokens"])
            cells.append(Cell(fmt.num(acc, "rate"), fmt.text(acc, "rate")))
            md.append(fmt.text(acc, "rate") or "--")
            v = None if _missing(r.get(value("overall"))) else float(r[value("overall")])
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
                                 if _missing(r.get("mean_accepted_tokens"))],
        })
    return {"datasets": out, "definition": how}


def _no_speedup_reason(sub) -> str | None:
    """Why a dataset's leaderboard shows absolute tokens/s instead of speedups (None: it does not)."""
    base = sub[sub["method"] == sub["baseline"]]
    if base.empty:
        return "no baseline run is among the source files, so no speedup can be computed"
    tps = base.iloc[0].get("task_overall_tokens_per_s")
    if _missing(tps) or float(tps) <= 0:
        return (f"the baseline ({base.iloc[0]['method_label']}) has a mean of 0 tokens/s (its files record "
                "no new tokens; check rule values), so no speedup can be computed")
    return None


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


def render_leaderboard(ctx: Context, experiment: str, df) -> None:
    """Spec-Bench's leaderboard (LaTeX and Markdown) and the per-category speedup figure."""
    fmt = ctx.fmt
    p = macro_prefix(experiment)
    table = leaderboard_table(df, fmt, leaderboard.definition(ctx.cfg))
    ctx.write_table("leaderboard", "leaderboard.tex", table=table,
                    notes=[latex_escape(n) for n in leaderboard_notes(table)])
    atomic_write_text(ctx.out / GENERATED / "tables" / "leaderboard.md", leaderboard_markdown(table))
    figure_leaderboard(ctx, df)
    best = _best_row(df, "task_overall_speedup") if _no_speedup_reason(df) is None else None
    ctx.number(f"{p}HasBaseline", "yes" if best is not None else "no")
    if best is not None:
        ctx.number(f"{p}BestMethod", best["method_label"], "highest Overall speedup")
        ctx.number(f"{p}BestSpeedup", fmt.speedup(best["task_overall_speedup"]))
    fastest = _best_row(df, "task_overall_tokens_per_s")
    if fastest is not None:
        ctx.number(f"{p}FastestMethod", fastest["method_label"], "highest tokens/s, mean over questions")
        ctx.number(f"{p}FastestThroughput", fmt.num(fastest["task_overall_tokens_per_s"], "tokens_per_s"))
    ctx.number(f"{p}NumMethods", str(len(_methods(df))))
    ctx.number(f"{p}NumQuestions", str(int(df["task_overall_n"].max())))


# experiment id -> renderer; the files each writes are listed in layout.EXPERIMENT_ARTIFACTS
RENDERERS: dict[str, Callable] = {
    "main": render_main, "memory": render_memory, "length": render_length,
    "prompt_length": render_prompt_length, "sweep": render_sweep, "ablation": render_ablation,
    "multisample": render_multisample, "leaderboard": render_leaderboard,
}


# ----------------------------------------------------------------------------- figures

STYLE = {
    "font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
    "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.frameon": False,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "lines.linewidth": 1.2, "lines.markersize": 3.5, "errorbar.capsize": 2,
    "pdf.fonttype": 42, "svg.hashsalt": "decodebench", "savefig.dpi": 200, "figure.dpi": 100,
}
COLUMN_WIDTH_IN = 3.4  # one column of a two-column article
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}
PNG_METADATA = {"Software": None}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _text(s) -> str:
    """Plain text for matplotlib (no mathtext)."""
    return str(s).replace("$", r"\$")


def _colors(cfg: dict) -> dict[str, str]:
    """One colour per method configuration name (and its base name), stable across figures."""
    names = []
    for exp in cfg["experiments"].values():
        for m in exp["methods"]:
            for n in (m, m.rsplit("_t", 1)[0]):
                if n not in names:
                    names.append(n)
    palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
               "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6"]
    return {n: palette[i % len(palette)] for i, n in enumerate(names)}


def save_figure(ctx: Context, fig, name: str) -> None:
    base = ctx.out / GENERATED / "figures" / name
    base.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(base.with_suffix(".pdf"), metadata=PDF_METADATA, bbox_inches="tight")
    fig.savefig(base.with_suffix(".png"), metadata=PNG_METADATA, bbox_inches="tight")
    _plt().close(fig)


def _figure(nrows=1, ncols=1, height=2.2):
    plt = _plt()
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(COLUMN_WIDTH_IN, height * nrows), squeeze=False)
    return fig, axes


def figure_main(ctx: Context, df) -> None:
    """Throughput per dataset and method: bars with ± sample std error bars."""
    plt = _plt()
    colors = _colors(ctx.cfg)
    with plt.rc_context(STYLE):
        fig, axes = _figure()
        ax = axes[0][0]
        datasets, methods = _datasets(df), _methods(df)
        width = 0.8 / max(len(methods), 1)
        for j, (m, label) in enumerate(methods):
            xs, ys, es = [], [], []
            for i, (d, _) in enumerate(datasets):
                v = _get(df, d, m, "tokens_per_s_mean")
                if v is not None:
                    xs.append(i + (j - (len(methods) - 1) / 2) * width)
                    ys.append(float(v))
                    es.append(float(_get(df, d, m, "tokens_per_s_std") or 0.0))
            ax.bar(xs, ys, width, yerr=es, label=_text(label), color=colors.get(m))
        ax.set_xticks(range(len(datasets)), [_text(lab) for _, lab in datasets])
        ax.set_ylabel("tokens/s")
        ax.grid(axis="x", visible=False)
        ax.legend(ncols=min(3, len(methods)), loc="upper center", bbox_to_anchor=(0.5, -0.15))
        save_figure(ctx, fig, "main")


def figure_lines(ctx: Context, df, name: str, x: str, xlabel: str, line: Callable, group: str | None = None):
    """Throughput (left) and speedup (right) against `x`, one line per `line(row)` label (and
    dataset); colours by base method name."""
    plt = _plt()
    colors = _colors(ctx.cfg)
    df = df.copy()
    df["line"] = [line(r) for _, r in df.iterrows()]
    df["color"] = [colors.get(r["method"].rsplit("_t", 1)[0]) for _, r in df.iterrows()]
    if group == "dataset_base":
        df["group"] = [re.sub(r"_p\d+$", "", d) for d in df["dataset"]]
    else:
        df["group"] = df["dataset"]
    groups = list(dict.fromkeys(df["group"]))
    styles = ["-", "--", ":", "-."]
    with plt.rc_context(STYLE):
        fig, axes = _figure(1, 2, height=2.0)
        for gi, g in enumerate(groups):
            sub = df[df["group"] == g]
            glabel = sub.iloc[0]["dataset_label"]
            for name_ in dict.fromkeys(sub["line"]):
                pts = sub[sub["line"] == name_].sort_values(x)
                xs = pts[x].astype(float).tolist()
                label = _text(name_) + (f" ({_text(glabel)})" if len(groups) > 1 else "")
                axes[0][0].errorbar(xs, pts["tokens_per_s_mean"].astype(float).tolist(),
                                    yerr=pts["tokens_per_s_std"].astype(float).fillna(0).tolist()
                                    if "tokens_per_s_std" in pts else None,
                                    marker="o", ls=styles[gi % 4], color=pts.iloc[0]["color"], label=label)
                axes[0][1].plot(xs, pts["speedup"].astype(float).tolist(), marker="o", ls=styles[gi % 4],
                                color=pts.iloc[0]["color"])
        axes[0][0].set_ylabel("tokens/s")
        axes[0][1].set_ylabel("speedup vs. baseline")
        for ax in axes[0]:
            ax.set_xlabel(xlabel)
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncols=3,
                   bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout()
        save_figure(ctx, fig, name)


def figure_sweep(ctx: Context, df, grids: dict) -> None:
    """Per (dataset, swept method): speedup heatmap over the first two swept parameters (best
    over the others), or speedup against the single swept parameter."""
    plt = _plt()
    datasets = _datasets(df)
    ids = [m for m in grids if (df["method_id"] == m).any()]
    with plt.rc_context(STYLE):
        fig, axes = _figure(max(len(datasets), 1), max(len(ids), 1), height=1.9)
        for i, (d, dlabel) in enumerate(datasets):
            for j, mid in enumerate(ids):
                ax = axes[i][j]
                sub = df[(df["dataset"] == d) & (df["method_id"] == mid)]
                names = list(grids[mid])
                cols = [f"param_{n}" for n in names]
                ax.set_title(_text(f"{mid}, {dlabel}"))
                if len(names) >= 2:
                    best = sub.groupby(cols[:2])["speedup"].max()
                    ys, xs = sorted(sub[cols[0]].unique()), sorted(sub[cols[1]].unique())
                    grid = [[float(best.get((y, x), float("nan"))) for x in xs] for y in ys]
                    im = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
                    for yi, row in enumerate(grid):
                        for xi, v in enumerate(row):
                            if not math.isnan(v):
                                ax.text(xi, yi, ctx.fmt.text(v, "speedup"), ha="center", va="center",
                                        fontsize=6, color="white")
                    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
                    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
                    ax.set_xlabel(names[1])
                    ax.set_ylabel(names[0])
                    ax.grid(False)
                    fig.colorbar(im, ax=ax, label="speedup")
                else:
                    pts = sub.sort_values(cols[0])
                    ax.plot(pts[cols[0]].astype(float).tolist(), pts["speedup"].astype(float).tolist(), marker="o")
                    ax.set_xlabel(names[0])
                    ax.set_ylabel("speedup")
        fig.tight_layout()
        save_figure(ctx, fig, "sweep")


FIGURE_TASK_LABELS = {"multi_turn": "Multi-turn", "translation": "Transl.", "summarization": "Summ.",
                      "qa": "QA", "math_reasoning": "Math", "rag": "RAG", "overall": "Overall"}


def figure_leaderboard(ctx: Context, df) -> None:
    """Speedup per task column (tokens/s where the dataset has no baseline), one bar per method."""
    plt = _plt()
    colors = _colors(ctx.cfg)
    has_base = _no_speedup_reason(df) is None
    sub = df[df["method"] != df["baseline"]] if has_base else df
    cols = [(t, h) for t, h in leaderboard.COLUMNS if f"task_{t}_n" in df and (df[f"task_{t}_n"].fillna(0) > 0).any()]
    value = "task_{}_speedup" if has_base else "task_{}_tokens_per_s"
    methods = _methods(sub)
    with plt.rc_context(STYLE):
        fig, axes = _figure(height=2.4)
        ax = axes[0][0]
        width = 0.8 / max(len(methods), 1)
        for j, (m, label) in enumerate(methods):
            row = sub[sub["method"] == m].iloc[0]
            ys = [float(row[value.format(t)]) if not _missing(row.get(value.format(t))) else float("nan")
                  for t, _ in cols]
            ax.bar([i + (j - (len(methods) - 1) / 2) * width for i in range(len(cols))], ys, width,
                   label=_text(label), color=colors.get(m))
        if has_base:
            ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
        ax.set_xticks(range(len(cols)), [FIGURE_TASK_LABELS[c] for c, _ in cols], fontsize=6)
        ax.set_ylabel("speedup vs. baseline" if has_base else "tokens/s (no baseline)")
        ax.grid(axis="x", visible=False)
        ax.legend(ncols=min(3, len(methods)), loc="upper center", bbox_to_anchor=(0.5, -0.25))
        save_figure(ctx, fig, "leaderboard")


def figure_multisample(ctx: Context, df) -> None:
    """Speedup and memory ratio vs the baseline against prompt length, one line per method."""
    plt = _plt()
    colors = _colors(ctx.cfg)
    with plt.rc_context(STYLE):
        fig, axes = _figure(1, 2, height=2.0)
        for m, label in _methods(df):
            pts = df[(df["method"] == m) & (df["method"] != df["baseline"])].sort_values("prompt_tokens_config")
            if pts.empty:
                continue
            xs = pts["prompt_tokens_config"].astype(float).tolist()
            axes[0][0].plot(xs, pts["speedup"].astype(float).tolist(), marker="o", color=colors.get(m),
                            label=_text(label))
            axes[0][1].plot(xs, pts["memory_ratio"].astype(float).tolist(), marker="o", color=colors.get(m))
        for ax in axes[0]:
            ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
            ax.set_xlabel("prompt tokens")
        axes[0][0].set_ylabel("speedup vs. baseline")
        axes[0][1].set_ylabel("memory ratio vs. baseline")
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncols=3, bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout()
        save_figure(ctx, fig, "multisample")


# ----------------------------------------------------------------------------- setup, numbers

def _unique(values) -> str:
    """Distinct values, joined; numbers in numeric order."""
    def key(v: str):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)
    vals = sorted({str(v) for v in values if v not in (None, "")}, key=key)
    return ", ".join(vals) if vals else "not recorded"


def setup_values(results: list[dict]) -> dict[str, str]:
    """The setup section's values, from the result files' provenance (distinct values joined)."""
    env = [r["environment"] for r in results]
    models = [r["models"] for r in results]
    prov = [r["provenance"] for r in results]

    def model(role):
        ms = [m[role] for m in models if m.get(role)]
        return _unique(f"{m['name']} ({m['source']}"
                       + (f", {m['num_parameters'] / 1e6:.1f}M parameters" if m.get("num_parameters") else "")
                       + ")" for m in ms)

    datasets = {}  # label -> (prompt counts, prompt lengths)
    for r in results:
        d = r["dataset"]
        counts, lengths = datasets.setdefault(d["label"], (set(), set()))
        counts.add(d.get("num_prompts"))
        lengths.add(d.get("prompt_tokens"))
    commits = {(p.get("git_commit") or "")[:12] + (" (modified)" if p.get("git_dirty") else "") for p in prov}
    return {
        "Study": _unique(r["study"] for r in results),
        "Target": model("target"),
        "Draft": model("draft") if any(m.get("draft") for m in models) else "none",
        "Device": _unique(e.get("device_name") for e in env),
        "DeviceKind": _unique(e.get("device") for e in env),
        "Dtype": _unique(e.get("dtype") for e in env),
        "Threads": _unique(e.get("threads") for e in env),
        "MemoryKind": _unique(e.get("memory_kind") for e in env),
        "Python": _unique(e.get("python") for e in env),
        "Torch": _unique(e.get("torch") for e in env),
        "Transformers": _unique(e.get("transformers") for e in env),
        "Cuda": _unique(e.get("cuda") for e in env),
        "Decodebench": _unique(e.get("decodebench") for e in env),
        "Platform": _unique(e.get("platform") for e in env),
        "Commit": _unique(c for c in commits if c.strip()),
        "Datasets": "; ".join(f"{label} ({_unique(c)} prompts of {_unique(n)} tokens)"
                              for label, (c, n) in sorted(datasets.items())),
        "Warmups": _unique(r["protocol"].get("warmups") for r in results),
        "Repeats": _unique(r["protocol"].get("repeats") for r in results),
        "MaxNewTokens": _unique(r["protocol"].get("max_new_tokens") for r in results),
        "Seed": _unique(r["protocol"].get("seed") for r in results),
        "StopRule": {frozenset([False]): "never stopping early at end-of-sequence",
                     frozenset([True]): "stopping at end-of-sequence"}.get(
            frozenset(r["protocol"].get("stop_at_eos") for r in results), "end-of-sequence handling per experiment"),
        "Kinds": _unique(r["kind"] for r in results),
        "NumResults": str(len(results)),
        "NumPrompts": _unique(r["protocol"].get("prompts_measured") for r in results),
    }


def check_exceptions(cfg: dict) -> str:
    """What the study's config relaxes in `decodebench check`, for the reproducibility section:
    each acknowledged rule with its files and reason, and a baseline CV threshold above the
    default (docs/check.md)."""
    from .config import DEFAULT_CV_THRESHOLD

    check = cfg.get("check") or {}
    out = [f"{a['rule']} ({a.get('files', 'every file')}): {' '.join(a['reason'].split())}"
           for a in check.get("acknowledge") or []]
    if check.get("cv_threshold", DEFAULT_CV_THRESHOLD) > DEFAULT_CV_THRESHOLD:
        out.append(f"baseline-stability threshold {check['cv_threshold']:g} instead of {DEFAULT_CV_THRESHOLD:g}")
    return "; ".join(out) if out else "none"


def write_setup(ctx: Context, results: list[dict]) -> None:
    values = {**setup_values(results), "CheckExceptions": check_exceptions(ctx.cfg)}
    text = ctx.env.get_template("setup.tex").render(values=values)
    atomic_write_text(ctx.out / GENERATED / "setup.tex", text)


def write_numbers(ctx: Context) -> None:
    named = sorted((n, v, c) for n, v, c in ctx.numbers if isinstance(n, str))
    keyed = sorted((n, v) for n, v, _ in ctx.numbers if not isinstance(n, str))
    names = [n for n, _, _ in named]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"numbers.tex: macros defined twice: {sorted(dup)}")
    text = ctx.env.get_template("numbers.tex").render(named=named, keyed=keyed)
    atomic_write_text(ctx.out / GENERATED / "numbers.tex", text)


def write_study(ctx: Context) -> None:
    text = ctx.env.get_template("study.tex").render(experiments=sorted(ctx.tables), flags=sorted(set(ctx.flags)),
                                                    study=ctx.cfg["study"])
    atomic_write_text(ctx.out / GENERATED / "study.tex", text)


# ----------------------------------------------------------------------------- entry point

def render_all(cfg: dict, out_dir: Path, root: Path | str = ".") -> dict:
    """Render every artifact of ``artifacts(cfg)`` under out_dir (same relative layout) from
    the aggregated tables and result files under root; return the MANIFEST's artifacts:
    {path: {"sha256": ..., "inputs": {result file: sha256}}}."""
    from .results import load_result

    root, out_dir = Path(root), Path(out_dir)
    ctx = Context(cfg=cfg, root=root, out=out_dir, fmt=Formats(cfg), env=template_env(root),
                  tables={}, numbers=[], flags=[])
    inputs, all_results = {}, []
    for e in sorted(cfg["experiments"]):
        files = layout.result_files(cfg, e)
        inputs[e] = {f: file_sha256(root / f) for f in files}
        all_results += [load_result(root / f) for f in files]
        ctx.tables[e] = analysis.read_table(root / layout.table_path(cfg["study"], e))
    for e, df in ctx.tables.items():
        renderer = RENDERERS.get(e, render_generic)
        renderer(ctx, e, df)
        _value_numbers(ctx, e, df)
    write_setup(ctx, all_results)
    write_numbers(ctx)
    write_study(ctx)
    remove_foreign_artifacts(cfg, out_dir)
    manifest = {}
    for path, exps in artifacts(cfg).items():
        file = out_dir / path
        if not file.exists():
            raise RuntimeError(f"render: {path} was not written (renderer of {exps})")
        manifest[path] = {"sha256": file_sha256(file),
                          "inputs": dict(sorted({f: h for e in exps for f, h in inputs[e].items()}.items()))}
    return manifest


def remove_foreign_artifacts(cfg: dict, out_dir: Path) -> list[Path]:
    """Delete files under ``paper/generated/`` that this study does not render (left by another
    study rendered in the same workspace, or by an experiment since removed from the config):
    the paper must show only this study's artifacts, and everything there is regenerable."""
    generated = Path(out_dir) / layout.GENERATED
    keep = {Path(out_dir) / p for p in artifacts(cfg)}
    removed = [f for f in sorted(generated.rglob("*")) if f.is_file() and f not in keep] if generated.is_dir() else []
    for f in removed:
        f.unlink()
        print(f"render: removed {f} (not an artifact of study '{cfg['study']}')", file=sys.stderr)
    return removed


def write_manifest(artifacts_: dict, path: str | Path = MANIFEST) -> None:
    atomic_write_text(path, json.dumps({"schema_version": MANIFEST_VERSION, "artifacts": artifacts_},
                                       indent=1, sort_keys=True) + "\n")
