"""Figures (matplotlib, PDF and PNG): deterministic files, fixed fonts, no dates in them."""

from __future__ import annotations

import re
from collections.abc import Callable

from .. import leaderboard
from ..config import VARY_PROTOCOL
from ..headlines import no_speedup_reason
from ..layout import GENERATED
from ..variants import vary_slice
from .context import Context, datasets_of, methods_of, value_at
from .latex import missing

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


def speedup_errors(pts) -> list[list[float]] | None:
    """matplotlib's yerr for the speedups of `pts`: the distances to their 95 % interval
    (``speedup_low`` / ``speedup_high``; 0 where a point has none, e.g. a ratio of means)."""
    if "speedup_low" not in pts or pts["speedup_low"].isna().all():
        return None
    sp = pts["speedup"].astype(float)
    lo = (sp - pts["speedup_low"].astype(float)).fillna(0.0).clip(lower=0.0)
    hi = (pts["speedup_high"].astype(float) - sp).fillna(0.0).clip(lower=0.0)
    return [lo.tolist(), hi.tolist()]


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
        datasets, methods = datasets_of(df), methods_of(df)
        width = 0.8 / max(len(methods), 1)
        for j, (m, label) in enumerate(methods):
            xs, ys, es = [], [], []
            for i, (d, _) in enumerate(datasets):
                v = value_at(df, d, m, "tokens_per_s_mean")
                if v is not None:
                    xs.append(i + (j - (len(methods) - 1) / 2) * width)
                    ys.append(float(v))
                    es.append(float(value_at(df, d, m, "tokens_per_s_std") or 0.0))
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
                axes[0][1].errorbar(xs, pts["speedup"].astype(float).tolist(), yerr=speedup_errors(pts),
                                    marker="o", ls=styles[gi % 4], color=pts.iloc[0]["color"])
        axes[0][0].set_ylabel("tokens/s")
        axes[0][1].set_ylabel("speedup vs. baseline (95% CI)")
        for ax in axes[0]:
            ax.set_xlabel(xlabel)
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncols=3,
                   bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout()
        save_figure(ctx, fig, name)


def _cell_text(ctx: Context, row) -> str:
    """A heatmap cell: the speedup, and its 95 % interval below it when it has one."""
    text = ctx.fmt.text(row["speedup"], "speedup") or ""
    lo, hi = (ctx.fmt.text(row.get(c), "speedup") for c in ("speedup_low", "speedup_high"))
    return f"{text}\n[{lo}, {hi}]" if lo is not None and hi is not None else text


def figure_sweep(ctx: Context, df, grids: dict) -> None:
    """Per (dataset, swept method): speedup heatmap over the first two swept parameters (best
    over the others), or speedup against the single swept parameter."""
    plt = _plt()
    datasets = datasets_of(df)
    ids = [m for m in grids if (df["method_id"] == m).any()]
    with plt.rc_context(STYLE):
        fig, axes = _figure(max(len(datasets), 1), max(len(ids), 1), height=1.9)
        for i, (d, dlabel) in enumerate(datasets):
            for j, mid in enumerate(ids):
                ax = axes[i][j]
                sub = df[(df["dataset"] == d) & (df["method_id"] == mid)]
                if sub.empty:  # a method the tuning stage does not sweep: no panel in its row
                    ax.axis("off")
                    continue
                names = list(grids[mid])
                cols = [f"param_{n}" for n in names]
                ax.set_title(_text(f"{mid}, {dlabel}"))
                if len(names) >= 2:
                    # a cell per value pair of the first two parameters: the configuration with the
                    # largest speedup among those sharing them, with its 95 % interval
                    cells = {key: g.loc[g["speedup"].astype(float).idxmax()]
                             for key, g in sub[sub["speedup"].notna()].groupby(cols[:2])}
                    ys, xs = sorted(sub[cols[0]].unique()), sorted(sub[cols[1]].unique())
                    grid = [[float(cells[(y, x)]["speedup"]) if (y, x) in cells else float("nan") for x in xs]
                            for y in ys]
                    im = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
                    for yi, y in enumerate(ys):
                        for xi, x in enumerate(xs):
                            if (y, x) in cells:
                                ax.text(xi, yi, _cell_text(ctx, cells[(y, x)]), ha="center", va="center",
                                        fontsize=5, color="white")
                    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
                    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
                    ax.set_xlabel(names[1])
                    ax.set_ylabel(names[0])
                    ax.grid(False)
                    fig.colorbar(im, ax=ax, label="speedup")
                else:
                    pts = sub.sort_values(cols[0])
                    ax.errorbar(pts[cols[0]].astype(float).tolist(), pts["speedup"].astype(float).tolist(),
                                yerr=speedup_errors(pts), marker="o")
                    ax.set_xlabel(names[0])
                    ax.set_ylabel("speedup (95% CI)")
        fig.tight_layout()
        save_figure(ctx, fig, "sweep")


FIGURE_TASK_LABELS = {"multi_turn": "Multi-turn", "translation": "Transl.", "summarization": "Summ.",
                      "qa": "QA", "math_reasoning": "Math", "rag": "RAG", "overall": "Overall"}


def figure_leaderboard(ctx: Context, df) -> None:
    """Speedup per task column (tokens/s where the dataset has no baseline), one bar per method."""
    plt = _plt()
    colors = _colors(ctx.cfg)
    has_base = no_speedup_reason(df) is None
    sub = df[df["method"] != df["baseline"]] if has_base else df
    cols = [(t, h) for t, h in leaderboard.COLUMNS if f"task_{t}_n" in df and (df[f"task_{t}_n"].fillna(0) > 0).any()]
    value = "task_{}_speedup" if has_base else "task_{}_tokens_per_s"
    methods = methods_of(sub)
    with plt.rc_context(STYLE):
        fig, axes = _figure(height=2.4)
        ax = axes[0][0]
        width = 0.8 / max(len(methods), 1)
        for j, (m, label) in enumerate(methods):
            row = sub[sub["method"] == m].iloc[0]
            ys = [float(row[value.format(t)]) if not missing(row.get(value.format(t))) else float("nan")
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
        for m, label in methods_of(df):
            pts = df[(df["method"] == m) & (df["method"] != df["baseline"])].sort_values("prompt_tokens_config")
            if pts.empty:
                continue
            xs = pts["prompt_tokens_config"].astype(float).tolist()
            axes[0][0].errorbar(xs, pts["speedup"].astype(float).tolist(), yerr=speedup_errors(pts), marker="o",
                                color=colors.get(m), label=_text(label))
            axes[0][1].plot(xs, pts["memory_ratio"].astype(float).tolist(), marker="o", color=colors.get(m))
        for ax in axes[0]:
            ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
            ax.set_xlabel("prompt tokens")
        axes[0][0].set_ylabel("speedup vs. baseline (95% CI)")
        axes[0][1].set_ylabel("memory ratio vs. baseline")
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncols=3, bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout()
        save_figure(ctx, fig, "multisample")




SWEEP_PANELS = (("speedup", "speedup vs. baseline"), ("distinct_2_mean", "distinct-2"),
                ("self_bleu_mean", "self-BLEU"), ("nll_per_token_error_mean", "NLL err. (nats/token)"))


def figure_multisample_sweep(ctx: Context, df, dimension: str) -> None:
    """One varied setting (``figures/multisample_sweep_<setting>``): speedup vs the baseline,
    distinct-2, self-BLEU and NLL error against the setting's value, one line per configuration
    of the experiment (its variants of this setting; the baseline's too in the quality panels).
    A configuration without the setting (the baseline of an EAB parameter) is a dashed
    horizontal line at its own value in the quality panels."""
    plt = _plt()
    colors = _colors(ctx.cfg)
    rows = vary_slice(df, dimension)
    datasets = datasets_of(rows)
    styles = ["-", "--", ":", "-."]
    xlabel = VARY_PROTOCOL[dimension][1] if dimension in VARY_PROTOCOL else dimension.replace("_", " ")
    labels = dict(zip(rows["method"], rows["method_label"]))
    with plt.rc_context(STYLE):
        fig, axes = _figure(2, 2, height=1.7)
        panels = [ax for row in axes for ax in row]
        for di, (d, dlabel) in enumerate(datasets):
            for of in dict.fromkeys(rows["variant_of"]):
                pts = rows[(rows["dataset"] == d) & (rows["variant_of"] == of)]
                if pts.empty:
                    continue
                label = _text(labels[of]) + (f" ({_text(dlabel)})" if len(datasets) > 1 else "")
                line = pts[pts["x"].notna()].sort_values("x")
                for ax, (col, _) in zip(panels, SWEEP_PANELS):
                    baseline = (pts["method"] == pts["baseline"]).all()
                    if col == "speedup" and baseline:
                        continue  # 1 by definition: the dashed line
                    if line.empty:  # no such setting: its own value, for comparison
                        v = pts.iloc[0].get(col)
                        if not missing(v):
                            ax.axhline(float(v), color=colors.get(of), lw=0.8, ls="--", label=label)
                        continue
                    ys = [float("nan") if missing(v) else float(v) for v in line[col]] if col in line else []
                    if ys:
                        ax.plot(line["x"].astype(float).tolist(), ys, marker="o", ls=styles[di % 4],
                                color=colors.get(of), label=label)
        panels[0].axhline(1.0, color="0.5", lw=0.8, ls="--")
        ticks = sorted(float(v) for v in rows["x"].dropna().unique())
        for ax, (_, ylabel) in zip(panels, SWEEP_PANELS):
            ax.set_ylabel(ylabel)
            ax.set_xlabel(_text(xlabel))
            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        handles: dict[str, object] = {}
        for ax in panels:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        fig.legend(list(handles.values()), list(handles), loc="upper center", ncols=3, bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout()
        save_figure(ctx, fig, f"multisample_sweep_{dimension}")
