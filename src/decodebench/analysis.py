"""Aggregation: result files -> one tidy table per experiment, relative to its baseline.

    table = aggregate_experiment(cfg, "main", [load_result(p) for p in result_files(cfg, "main")])
    table.to_csv("results/tables/embedded/main.csv")

One row per (dataset, method configuration), in the config's order. For every metric of
``METRICS`` the row holds ``<metric>_mean``, ``<metric>_std`` (sample std, ddof=1; empty for
one prompt) and ``<metric>_n``, taken over prompts: a prompt's repeats are averaged first,
then ``results.stat`` runs over the prompts. Imported results (``records: null``) take the
stat from their summary.

Relative to the experiment's baseline (its ``baseline`` method configuration on the same
dataset; with ``generation_lengths`` the baseline variant of the same budget):

- ``speedup``: for measured results, the paired speedup (``decodebench.paired``): the ratio
  method tokens/s / baseline tokens/s of each (prompt, repeat) both measured, repeats averaged
  per prompt, the mean over prompts; ``speedup_low`` / ``speedup_high`` its 95 % bootstrap
  interval (prompts, then repeats, resampled), ``speedup_prompts`` / ``speedup_pairs`` what it
  rests on, ``speedup_kind`` = ``paired`` (``baseline`` for the baseline itself: 1, no
  interval). Imported results (no records) and pairs that do not
  exist: the ratio of the means, ``speedup_kind`` = ``ratio of means``, no interval. For
  multi-sample experiments (results with ``protocol.num_samples``) the ratio is baseline wall
  time / method wall time, the time to produce all samples;
- ``peak_memory_change_pct`` and ``overhead_change_pct``: (method - baseline) / baseline x 100
  of the mean peak memory and of the mean peak over the pre-generation baseline;
- ``memory_ratio`` and ``overhead_ratio``: method / baseline of the same means.

Results with per-question records (imported Spec-Bench answers, ``questions``) also get
Spec-Bench's task columns: ``task_<t>_tokens_per_s``, ``_n``, ``_tokens``, ``_time_s``,
``task_<t>_speedup`` and ``mean_accepted_tokens`` (definitions in ``decodebench.leaderboard``).

Paths come from ``decodebench.layout``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import leaderboard
from .paired import paired_speedup
from .results import load_result, stat

# Metrics aggregated per (dataset, method): name in the records / summary -> column prefix.
METRICS = (
    "tokens_per_s", "wall_time_s", "ttft_s", "tokens_at_first_commit", "tpot_s", "tpot_p50_s", "tpot_p90_s",
    "tpot_p99_s", "new_tokens", "prompt_tokens", "tokens_per_target_forward",
    "peak_memory_mb", "peak_memory_overhead_mb",
    "rounds", "acceptance_rate", "tokens_per_round",
    "num_samples", "token_steps", "branch_points", "final_paths",
    # multi-sample quality (decodebench.quality)
    "distinct_1", "distinct_2", "self_bleu", "sample_logprob_mean", "sample_logprob_std", "nll_per_token",
    "nll_per_token_reference", "nll_per_token_error",
)
IDENTITY = ("experiment", "dataset", "dataset_label", "prompt_tokens_config", "method", "method_id",
            "method_label", "params", "max_new_tokens", "num_samples_config", "baseline", "kind",
            "prompts_measured", "errors")
CSV_FLOAT_FORMAT = "%.10g"


def baseline_for(exp: dict, method: str) -> str:
    """The baseline configuration a method configuration is compared with: the experiment's
    baseline, or its variant of the same budget (``<baseline>_t<T>``) under generation_lengths."""
    if "generation_lengths" in exp and "_t" in method:
        return f"{exp['baseline']}_t{method.rsplit('_t', 1)[1]}"
    return exp["baseline"]


def prompt_stats(result: dict) -> dict[str, dict]:
    """{metric: stat} over prompts (repeats of a prompt averaged first)."""
    records = result["records"]
    if records is None:  # imported: the source's summary is all there is
        return {m: result["summary"][m] for m in METRICS if m in result["summary"]}
    frame = pd.DataFrame(records)
    out = {}
    for metric in METRICS:
        if metric not in frame or frame[metric].isna().all():
            continue
        per_prompt = frame.groupby("prompt_index", sort=True)[metric].mean()
        out[metric] = stat(v for v in per_prompt.tolist() if v == v)  # NaN != NaN: drop
    return out


def result_row(result: dict, exp: dict | None) -> dict:
    method, dataset = result["method"], result["dataset"]
    row = {
        "experiment": result["experiment"], "dataset": dataset["name"], "dataset_label": dataset["label"],
        # Imported results keep the source's own prompt length (selection.prompt_length, unit
        # as the source recorded it) when it recorded no token count.
        "prompt_tokens_config": dataset.get("prompt_tokens") if dataset.get("prompt_tokens") is not None
        else (dataset.get("selection") or {}).get("prompt_length"),
        "method": method["name"], "method_id": method["id"],
        # The config's label wins (imported results have only the source's name); then the
        # label recorded at run time; then the configuration's name.
        "method_label": ((exp or {}).get("methods", {}).get(method["name"]) or {}).get("label")
        or method.get("label") or method["name"],
        "params": json.dumps(method["params"], sort_keys=True),
        "max_new_tokens": result["protocol"]["max_new_tokens"],
        "num_samples_config": result["protocol"].get("num_samples"),
        "baseline": baseline_for(exp, method["name"]) if exp else None,
        "kind": result["kind"], "prompts_measured": result["protocol"]["prompts_measured"],
        "errors": len(result["errors"]),
    }
    for name, value in sorted(method["params"].items()):
        if isinstance(value, (int, float, str, bool)) or value is None:
            row[f"param_{name}"] = value
    for metric, s in prompt_stats(result).items():
        row[f"{metric}_mean"], row[f"{metric}_std"], row[f"{metric}_n"] = s["mean"], s["std"], s["n"]
    if result.get("questions"):  # imported per-question records: Spec-Bench's task columns
        row.update(leaderboard.task_stats(result))
    return row


def add_task_speedups(table: pd.DataFrame, how: str) -> pd.DataFrame:
    """``task_<t>_speedup`` of each row vs its baseline row (same dataset), with the
    leaderboard's definition `how` (decodebench.leaderboard)."""
    table = table.copy()
    rows = table.to_dict("records")
    index = {(r["dataset"], r["method"]): r for r in rows}
    for task, _ in leaderboard.COLUMNS:
        vals = []
        for r in rows:
            b = index.get((r["dataset"], r["baseline"]))
            vals.append(None if b is None else leaderboard.speedup(r, b, task, how))
        table[f"task_{task}_speedup"] = pd.array(vals, dtype="Float64")
    return table


def _ratio(num, den):
    if num is None or den is None or pd.isna(num) or pd.isna(den) or den == 0:
        return None
    return num / den


def add_relative(table: pd.DataFrame) -> pd.DataFrame:
    """Speedup and memory changes of each row vs its baseline row (same dataset)."""
    table = table.copy()
    multi = "num_samples_config" in table and table["num_samples_config"].notna().any()
    index = {(r.dataset, r.method): r for r in table.itertuples(index=False)}
    cols = {k: [] for k in ("speedup", "peak_memory_change_pct", "overhead_change_pct",
                            "memory_ratio", "overhead_ratio")}
    for r in table.itertuples(index=False):
        b = index.get((r.dataset, r.baseline))
        get = (lambda row, col: getattr(row, col, None)) if b is not None else (lambda row, col: None)
        if multi:
            speedup = _ratio(get(b, "wall_time_s_mean"), get(r, "wall_time_s_mean"))
        else:
            speedup = _ratio(get(r, "tokens_per_s_mean"), get(b, "tokens_per_s_mean"))
        peak = _ratio(get(r, "peak_memory_mb_mean"), get(b, "peak_memory_mb_mean"))
        over = _ratio(get(r, "peak_memory_overhead_mb_mean"), get(b, "peak_memory_overhead_mb_mean"))
        cols["speedup"].append(speedup)
        cols["memory_ratio"].append(peak)
        cols["overhead_ratio"].append(over)
        cols["peak_memory_change_pct"].append(None if peak is None else (peak - 1) * 100)
        cols["overhead_change_pct"].append(None if over is None else (over - 1) * 100)
    for k, v in cols.items():
        table[k] = pd.array(v, dtype="Float64")
    return table


SPEEDUP_COLUMNS = ("speedup_low", "speedup_high", "speedup_prompts", "speedup_pairs", "speedup_kind")


def add_paired(table: pd.DataFrame, results: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """Replace ``speedup`` by the paired estimate with its interval where both the row's and its
    baseline's records exist (``results``: (dataset, method) -> result)."""
    table = table.copy()
    multi = "num_samples_config" in table and table["num_samples_config"].notna().any()
    cols = {k: [] for k in ("speedup", *SPEEDUP_COLUMNS)}
    for r in table.itertuples(index=False):
        res, base = results.get((r.dataset, r.method)), results.get((r.dataset, r.baseline))
        stat_ = None
        if r.method == r.baseline and res is not None:  # its ratio to itself: 1, with no interval
            for k, v in zip(cols, (1.0, None, None, None, None, "baseline")):
                cols[k].append(v)
            continue
        if res is not None and base is not None and res["records"] is not None and base["records"] is not None:
            stat_ = paired_speedup(res["records"], base["records"], bool(multi))
        if stat_ is not None and stat_.estimate is not None:
            values = (stat_.estimate, stat_.low, stat_.high, stat_.prompts, stat_.pairs, "paired")
        else:
            values = (None if pd.isna(r.speedup) else r.speedup, None, None, None, None,
                      None if pd.isna(r.speedup) else "ratio of means")
        for k, v in zip(cols, values):
            cols[k].append(v)
    for k in ("speedup", "speedup_low", "speedup_high"):
        table[k] = pd.array(cols[k], dtype="Float64")
    for k in ("speedup_prompts", "speedup_pairs"):
        table[k] = pd.array(cols[k], dtype="Int64")
    table["speedup_kind"] = cols["speedup_kind"]
    return table


def aggregate_experiment(cfg: dict, experiment: str, results: list[dict]) -> pd.DataFrame:
    """The experiment's tidy table (see the module docstring)."""
    exp = cfg["experiments"].get(experiment)
    for r in results:
        if r["experiment"] != experiment or r["study"] != cfg["study"]:
            raise ValueError(f"result of study '{r['study']}', experiment '{r['experiment']}' given to the "
                             f"aggregation of '{cfg['study']}/{experiment}'")
    rows = [result_row(r, exp) for r in results]
    if not rows:
        raise ValueError(f"{cfg['study']}/{experiment}: no result files to aggregate")
    table = pd.DataFrame(rows)
    # Config order (datasets, then methods) where the config lists them; otherwise by name.
    d_order = {d: i for i, d in enumerate(exp["datasets"])} if exp else {}
    m_order = {m: i for i, m in enumerate(exp["methods"])} if exp else {}
    table["dataset_order"] = [d_order.get(d, len(d_order)) for d in table["dataset"]]
    table["method_order"] = [m_order.get(m, len(m_order)) for m in table["method"]]
    table = table.sort_values(["dataset_order", "dataset", "method_order", "method"], kind="stable")
    table = add_relative(table.reset_index(drop=True))
    table = add_paired(table, {(r["dataset"]["name"], r["method"]["name"]): r for r in results})
    if "task_overall_n" in table:
        table = add_task_speedups(table, leaderboard.definition(cfg))
    first = [c for c in IDENTITY if c in table]
    return table[first + [c for c in table.columns if c not in first]]


def aggregate_files(cfg: dict, experiment: str, paths: list[str | Path]) -> pd.DataFrame:
    return aggregate_experiment(cfg, experiment, [load_result(p) for p in sorted(map(str, paths))])


def table_text(table: pd.DataFrame) -> str:
    """The CSV text of a table, exactly as written (check compares files with it)."""
    return table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    from .results import atomic_write_text

    atomic_write_text(path, table_text(table))


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True)


def across_datasets(table: pd.DataFrame) -> pd.DataFrame:
    """One row per method configuration, averaged over the experiment's datasets.

    Metric means are the unweighted mean over datasets; ``speedup`` is the mean of the
    per-dataset speedups; the memory changes and ratios are recomputed from the averaged
    peaks (the seed paper's "average" and "relative change" columns)."""
    keys = ["method", "method_id", "method_label", "baseline", "method_order"]
    means = [c for c in table.columns if c.endswith("_mean")]
    rows = []
    for _, group in table.groupby("method", sort=False):
        first = group.iloc[0]
        row = {k: first[k] for k in keys if k in group}
        row["datasets"] = len(group)
        for c in means:
            vals = group[c].dropna().astype(float)
            row[c] = vals.mean() if len(vals) else None
        sp = group["speedup"].dropna().astype(float)
        row["speedup"] = sp.mean() if len(sp) else None
        rows.append(row)
    out = pd.DataFrame(rows)
    by_method = {r["method"]: r for r in rows}
    for col, base_col in (("memory_ratio", "peak_memory_mb_mean"), ("overhead_ratio", "peak_memory_overhead_mb_mean")):
        vals = []
        for r in rows:
            b = by_method.get(r["baseline"])
            vals.append(_ratio(r.get(base_col), b.get(base_col)) if b is not None else None)
        out[col] = pd.array(vals, dtype="Float64")
    out["peak_memory_change_pct"] = (out["memory_ratio"] - 1) * 100
    out["overhead_change_pct"] = (out["overhead_ratio"] - 1) * 100
    return out
