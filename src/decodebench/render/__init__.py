"""Rendering: aggregated tables -> LaTeX tables, figures, numbers.tex, setup.tex, MANIFEST.

    manifest_artifacts = render_all(cfg, Path("."))   # writes ./paper/generated/...

Presentation only: every number shown is a row of ``results/tables/<study>/<experiment>.csv``
(the long-format table ``decodebench.analysis`` writes: per-dataset values, means over datasets,
headline picks with their macro names) or, for the setup section, of
``results/tables/<study>/setup.csv`` (``decodebench.study_setup``). Nothing here computes a
number or reads a result file's values: it reshapes, formats and lays out.

    latex.py              escaping, number formats, cells and "best" marking, templates
    context.py            the render context; an experiment's table reshaped for layout
    tables.py             one renderer per experiment kind (``decodebench.kinds`` names them)
    leaderboard_table.py  Spec-Bench's leaderboard layout
    figures.py            matplotlib figures
    setup.py              the setup section (its values: decodebench.study_setup)
    this module           numbers.tex, study.tex, the entry point and the manifest

Which artifacts exist depends on the config only (``layout.artifacts``, by each experiment's
kind), so Snakemake knows them before anything runs.

Output is deterministic (byte-identical re-renders): sorted inputs, fixed float formats,
matplotlib with fixed fonts and without dates in the files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from markupsafe import Markup

from .. import analysis, layout
from ..kinds import KINDS, experiment_kind
from ..layout import GENERATED, MANIFEST, artifacts
from ..results import atomic_write_text, file_sha256
from ..study_setup import read_setup
from .context import Aggregated, Context
from .latex import Cell, Formats, bold_best, latex_escape, missing, template_env
from .leaderboard_table import leaderboard_markdown, leaderboard_notes, leaderboard_table, render_leaderboard
from .setup import check_exceptions, write_setup
from .tables import (
    render_ablation,
    render_generic,
    render_length,
    render_main,
    render_memory,
    render_multisample,
    render_multisample_sweep,
    render_prompt_length,
    render_sweep,
)

__all__ = ["Aggregated", "Cell", "Context", "Formats", "bold_best", "check_exceptions", "latex_escape",
           "leaderboard_markdown", "leaderboard_notes", "leaderboard_table", "missing", "render_ablation", "render_all",
           "render_generic", "render_leaderboard", "render_length", "render_main", "render_memory",
           "render_multisample", "render_multisample_sweep", "render_prompt_length", "render_sweep", "template_env",
           "write_manifest", "write_setup"]

MANIFEST_VERSION = "1.0"


# ----------------------------------------------------------------------------- numbers.tex

# Per-dataset values cited as \dbval{experiment}{dataset}{method}{metric}: column -> (format, scale).
VALUE_FORMATS = {"tokens_per_s_mean": ("tokens_per_s", 1), "ttft_s_mean": ("time_ms", 1000),
                 "tpot_s_mean": ("time_ms", 1000), "peak_memory_mib_mean": ("memory_mib", 1),
                 "peak_memory_overhead_mib_mean": ("memory_mib", 1), "acceptance_rate_mean": ("rate", 1),
                 "tokens_per_round_mean": ("rate", 1), "token_steps_mean": ("count", 1)}
# A pick's metric -> its number format (speedups, changes, labels and counts have their own).
PICK_FORMATS = {"tokens_per_s_mean": "tokens_per_s", "task_overall_tokens_per_s": "tokens_per_s",
                "peak_memory_mib_mean": "memory_mib", "memory_ratio": "ratio", "overhead_ratio": "ratio",
                "self_bleu_mean": "rate", "nll_per_token_error_mean": "rate"}
SIGNED = ("nll_per_token_error_mean",)


def value_numbers(ctx: Context, experiment: str, df) -> None:
    """\\dbdef{experiment}{dataset}{method}{metric}{value}: every aggregated per-dataset number."""
    fmt = ctx.fmt
    for _, r in df.iterrows():
        key = (experiment, r["dataset"], r["method"])
        for col, (kind, scale) in VALUE_FORMATS.items():
            if col in r and not missing(r[col]):
                ctx.number((*key, col.removesuffix("_mean")), Markup(fmt.num(float(r[col]) * scale, kind)))
        for col in ("speedup", "speedup_low", "speedup_high"):
            if not missing(r.get(col)):
                ctx.number((*key, col), fmt.speedup(r[col]))
        for col in ("peak_memory_change_pct", "overhead_change_pct"):
            if not missing(r.get(col)):
                ctx.number((*key, col), fmt.pct(r[col]))
        if not missing(r.get("memory_ratio")):
            ctx.number((*key, "memory_ratio"), fmt.num(r["memory_ratio"], "ratio"))


def pick_text(fmt: Formats, p) -> Markup:
    """A headline pick, formatted: the label it names, or its number."""
    metric, value = p["metric"], None if missing(p["value"]) else float(p["value"])
    if metric in ("method_label", "dataset_label"):
        return latex_escape(p[metric])
    if metric in ("speedup", "task_overall_speedup"):
        return fmt.speedup(value, None if missing(p["low"]) else p["low"], None if missing(p["high"]) else p["high"])
    if metric.endswith("_pct"):
        return fmt.pct(value)
    if metric == "has_baseline":
        return latex_escape("yes" if value else "no")
    if p["statistic"] in ("count", "min", "max") and value is not None:  # a count or a setting, as written
        return latex_escape(str(int(value)) if value.is_integer() else f"{value:g}")
    return fmt.num(value, PICK_FORMATS[metric], sign=metric in SIGNED)


def pick_numbers(ctx: Context, experiment: str, picks) -> None:
    """The picks' macros (``\\MainBestSpeedup``: names as the aggregation wrote them); picks
    without a macro (the sweep's best per method) are cited by key: the configuration's label."""
    for _, p in picks.iterrows():
        if isinstance(p["macro"], str) and p["macro"]:
            ctx.number(p["macro"], pick_text(ctx.fmt, p), p["statistic"])
        else:
            ctx.number((experiment, p["dataset"], p["method_id"], "best_config"), latex_escape(p["method_label"]))


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
    # \ifexp{<name>} in main.tex: true for an experiment's id and for its kind
    names = set(ctx.tables) | {experiment_kind(e, ctx.cfg["experiments"][e]) for e in ctx.tables}
    text = ctx.env.get_template("study.tex").render(experiments=sorted(names), flags=sorted(set(ctx.flags)),
                                                    study=ctx.cfg["study"])
    atomic_write_text(ctx.out / GENERATED / "study.tex", text)




# ----------------------------------------------------------------------------- entry point

def render_all(cfg: dict, out_dir: Path, root: Path | str = ".") -> dict:
    """Render every artifact of ``artifacts(cfg)`` under out_dir (same relative layout) from
    the aggregated tables and result files under root; return the MANIFEST's artifacts:
    {path: {"sha256": ..., "inputs": {result file: sha256}}}."""
    root, out_dir = Path(root), Path(out_dir)
    ctx = Context(cfg=cfg, root=root, out=out_dir, fmt=Formats(cfg), env=template_env(root),
                  tables={}, numbers=[], flags=[])
    inputs = {}
    for e in sorted(cfg["experiments"]):
        # the manifest records the hashes of the result files each artifact rests on; their
        # values reach the paper only through the aggregated tables
        inputs[e] = {f: file_sha256(root / f) for f in layout.result_files(cfg, e)}
        ctx.tables[e] = Aggregated(analysis.read_table(root / layout.table_path(cfg["study"], e)))
    for e, t in ctx.tables.items():
        kind = KINDS[experiment_kind(e, cfg["experiments"][e])]
        globals()[kind.renderer](ctx, e, t)
        value_numbers(ctx, e, t.wide)
        pick_numbers(ctx, e, t.picks)
    write_setup(ctx, read_setup(root / layout.setup_path(cfg["study"])))
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
