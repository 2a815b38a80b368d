"""Aggregation: result files -> one long-format table per experiment; every derived number.

    long = aggregate_experiment(cfg, "main", [load_result(p) for p in result_files(cfg, "main")])
    write_table(long, "results/tables/embedded/main.csv")
    wide_table(long)                      # the per-dataset rows, metrics as columns (for layout)

The long table (columns: the row's identity, then ``role``, ``metric``, ``statistic``,
``value``, ``n``, ``low``, ``high``, ``macro``; docs/pipeline.md "Aggregation") has three roles:

- ``dataset``: per (dataset, method configuration), in the config's order, built from
  ``per_dataset_table``. For every metric of ``results.METRICS``: ``mean`` and ``std`` (sample
  std, ddof=1; empty for one prompt) over prompts, with ``n``, from ``results.summarise`` (the
  function that wrote the result file's summary). Imported results (``records: null``) take
  the stat from their summary. Relative to the experiment's baseline (its ``baseline`` method
  configuration on the same dataset; with ``generation_lengths`` the baseline variant of the
  same budget, with ``vary`` the baseline's variant of the same protocol setting:
  ``config.baseline_for``):

  - ``speedup``: for measured results, the paired speedup (``decodebench.paired``): the ratio
    method tokens/s / baseline tokens/s of each (prompt, repeat) both measured, repeats
    averaged per prompt, the mean over prompts; ``low`` / ``high`` its 95 % bootstrap interval
    (prompts, then repeats, resampled), ``n`` the prompts and a ``pairs`` row the pairs;
    statistic ``paired`` (``baseline`` for the baseline itself: 1, no interval). Imported
    results (no records) and pairs that do not exist: the ratio of the means, statistic
    ``ratio of means``, no interval. For multi-sample experiments (results with
    ``protocol.num_samples``) the ratio is baseline wall time / method wall time, the time to
    produce all samples;
  - ``peak_memory_change_pct`` and ``overhead_change_pct``: (method - baseline) / baseline x 100
    of the mean peak memory and of the mean peak over the pre-generation baseline;
  - ``memory_ratio`` and ``overhead_ratio``: method / baseline of the same means.

  Results with per-question records (imported Spec-Bench answers, ``questions``) also get
  Spec-Bench's task columns: ``task_<t>_tokens_per_s``, ``_n``, ``_tokens``, ``_time_s``,
  ``task_<t>_speedup`` and ``mean_accepted_tokens`` (definitions in ``decodebench.leaderboard``).
- ``across datasets`` (dataset ``_all``): ``across_datasets``, the means over datasets;
- ``pick``: the headline numbers (``decodebench.headlines``), each with its macro's name.

Paths come from ``decodebench.layout``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import leaderboard
from .config import baseline_for
from .headlines import headline_picks
from .kinds import experiment_kind
from .paired import paired_speedup
from .results import METRICS, load_result, summarise

IDENTITY = ("experiment", "dataset", "dataset_label", "prompt_tokens_config", "method", "method_id",
            "method_label", "params", "max_new_tokens", "num_samples_config", "temperature_config", "variant_of",
            "varied", "baseline", "kind", "prompts_measured", "errors")
CSV_FLOAT_FORMAT = "%.10g"


def prompt_stats(result: dict) -> dict[str, dict]:
    """{metric: stat} over prompts: ``results.summarise`` of the records (the same function that
    wrote the result file's summary and `decodebench run`'s printout); imported results have no
    records, so their source's summary is all there is."""
    if result["records"] is None:
        return {m: result["summary"][m] for m in METRICS if m in result["summary"]}
    return summarise(result["records"])


def multi_sample_identity(result: dict) -> dict:
    """A multi-sample result's temperature (``temperature_config``; results written before the
    protocol recorded it have it in their job's identity); nothing for other results."""
    if result["protocol"].get("num_samples") is None:
        return {}
    job = (result.get("provenance") or {}).get("job") or {}
    return {"temperature_config": result["protocol"].get("temperature", (job.get("protocol") or {}).get("temperature"))}


def vary_identity(exp: dict | None, method: str) -> dict:
    """Under ``vary`` (config.vary_methods): the configuration a row varies (``variant_of``, itself
    for the experiment's own configurations) and the setting it varies (``varied``; none for them)."""
    if not exp or "vary" not in exp:
        return {}
    vary = (exp["methods"].get(method) or {}).get("vary") or {}
    return {"variant_of": vary.get("of", method), "varied": vary.get("dimension")}


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
        **multi_sample_identity(result),
        **vary_identity(exp, method["name"]),
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
    cols: dict[str, list] = {k: [] for k in ("speedup", "peak_memory_change_pct", "overhead_change_pct",
                            "memory_ratio", "overhead_ratio")}
    for r in table.itertuples(index=False):
        b = index.get((r.dataset, r.baseline))
        get = (lambda row, col: getattr(row, col, None)) if b is not None else (lambda row, col: None)
        if multi:
            speedup = _ratio(get(b, "wall_time_s_mean"), get(r, "wall_time_s_mean"))
        else:
            speedup = _ratio(get(r, "tokens_per_s_mean"), get(b, "tokens_per_s_mean"))
        peak = _ratio(get(r, "peak_memory_mib_mean"), get(b, "peak_memory_mib_mean"))
        over = _ratio(get(r, "peak_memory_overhead_mib_mean"), get(b, "peak_memory_overhead_mib_mean"))
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
    cols: dict[str, list] = {k: [] for k in ("speedup", *SPEEDUP_COLUMNS)}
    for r in table.itertuples(index=False):
        res, base = results.get((r.dataset, r.method)), results.get((r.dataset, r.baseline))
        stat_ = None
        if r.method == r.baseline and res is not None:  # its ratio to itself: 1, with no interval
            for k, v in zip(cols, (1.0, None, None, None, None, "baseline")):
                cols[k].append(v)
            continue
        if res is not None and base is not None and res["records"] is not None and base["records"] is not None:
            stat_ = paired_speedup(res["records"], base["records"], bool(multi))
        values: tuple
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


def per_dataset_table(cfg: dict, experiment: str, results: list[dict]) -> pd.DataFrame:
    """One row per (dataset, method configuration), metrics as columns (see the module docstring)."""
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


def aggregate_experiment(cfg: dict, experiment: str, results: list[dict]) -> pd.DataFrame:
    """The experiment's long-format table (what ``results/tables/<study>/<experiment>.csv``
    holds): every per-dataset value, every mean over datasets and every headline pick."""
    exp = cfg["experiments"].get(experiment)
    if exp is None:
        raise ValueError(f"{cfg['study']}/{experiment}: the config has no experiment '{experiment}'")
    wide = per_dataset_table(cfg, experiment, results)
    across = across_datasets(wide)
    picks = headline_picks(experiment, experiment_kind(experiment, exp), wide, across, cfg)
    return long_table(wide, across, picks)


def aggregate_files(cfg: dict, experiment: str, paths: Sequence[str | Path]) -> pd.DataFrame:
    return aggregate_experiment(cfg, experiment, [load_result(p) for p in sorted(map(str, paths))])


def table_text(table: pd.DataFrame) -> str:
    """The CSV text of a table, exactly as written (check compares files with it)."""
    return table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    from .results import atomic_write_text

    atomic_write_text(path, table_text(table))


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True)


ALL_DATASETS = "_all"  # the dataset of a mean over datasets (no dataset name starts with "_")
ALL_DATASETS_LABEL = "mean over datasets"
ROLES = ("dataset", "across datasets", "pick")
VALUE_COLUMNS = ("role", "metric", "statistic", "value", "n", "low", "high", "macro")
# Columns of a per-dataset row that identify it (repeated on each of its long rows).
_ID_EXTRA = ("dataset_order", "method_order")
_SPEEDUP_STATS = ("speedup_kind", "speedup_low", "speedup_high", "speedup_prompts", "speedup_pairs")


def _id_columns(wide: pd.DataFrame) -> list[str]:
    return [c for c in wide.columns if c in IDENTITY or c in _ID_EXTRA or c.startswith("param_")]


def _value(v):
    return None if v is None or pd.isna(v) else v


def _melt_row(r: dict, ids: list[str], role: str) -> list[dict]:
    """A wide row -> its long rows: (metric, mean|std) for each of METRICS, the speedup under
    its statistic (paired, ratio of means, baseline, mean over datasets) with its interval, and
    every other value column as (column, value)."""
    base = {k: r.get(k) for k in ids}
    out = []

    def add(metric, statistic, value, n=None, low=None, high=None):
        out.append({**base, "role": role, "metric": metric, "statistic": statistic, "value": _value(value),
                    "n": _value(n), "low": _value(low), "high": _value(high), "macro": None})

    done = set(ids)
    for m in METRICS:
        if f"{m}_mean" in r and _value(r[f"{m}_mean"]) is not None:
            add(m, "mean", r[f"{m}_mean"], r.get(f"{m}_n"))
            add(m, "std", r.get(f"{m}_std"), r.get(f"{m}_n"))
        done.update({f"{m}_mean", f"{m}_std", f"{m}_n"})
    if _value(r.get("speedup")) is not None:
        add("speedup", r.get("speedup_kind") or "ratio of means", r["speedup"], r.get("speedup_prompts"),
            r.get("speedup_low"), r.get("speedup_high"))
        if _value(r.get("speedup_pairs")) is not None:
            add("speedup", "pairs", r["speedup_pairs"])
    elif "speedup" in r:  # no baseline to compare with: the row says so, with no value
        add("speedup", "none", None)
    done.update({"speedup", *_SPEEDUP_STATS})
    for c, v in r.items():
        if c not in done:  # an empty value stays a row: the column exists, its value could not be computed
            add(c, "value", v)
    return out


def long_table(wide: pd.DataFrame, across: pd.DataFrame, picks: list[dict]) -> pd.DataFrame:
    """The long-format table: per-dataset rows (role ``dataset``), means over datasets (role
    ``across datasets``, dataset ``_all``) and headline picks (role ``pick``, each with the
    name of the macro the paper cites it by, written out in full)."""
    ids = _id_columns(wide)
    rows = []
    for r in wide.to_dict("records"):
        rows += _melt_row(r, ids, "dataset")
    for r in across.to_dict("records"):
        rows += _melt_row(r, ids, "across datasets")
    for p in picks:
        rows.append({**{k: p["row"].get(k) for k in ids}, "role": "pick", "metric": p["metric"],
                     "statistic": p["statistic"], "value": _value(p.get("value")), "n": _value(p.get("n")),
                     "low": _value(p.get("low")), "high": _value(p.get("high")), "macro": p.get("macro")})
    out = pd.DataFrame(rows, columns=[*ids, *VALUE_COLUMNS])
    for c in ("value", "low", "high"):
        out[c] = pd.array(out[c], dtype="Float64")
    out["n"] = pd.array(out["n"], dtype="Int64")
    return out


def wide_table(long: pd.DataFrame, role: str = "dataset") -> pd.DataFrame:
    """The rows of one role back in the per-dataset layout (metrics as columns): a reshape for
    rendering, no value is computed."""
    sub = long[long["role"] == role]
    value_cols = set(VALUE_COLUMNS)
    ids = [c for c in long.columns if c not in value_cols]
    rows = []
    for _, group in sub.groupby(["dataset", "method"], sort=False, dropna=False):
        first = group.iloc[0]
        row = {k: first[k] for k in ids}
        for r in group.itertuples(index=False):
            if r.metric in METRICS and r.statistic in ("mean", "std"):
                row[f"{r.metric}_{r.statistic}"] = r.value
                row[f"{r.metric}_n"] = r.n
            elif r.metric == "speedup" and r.statistic == "pairs":
                row["speedup_pairs"] = r.value
            elif r.metric == "speedup":
                row.update(speedup=r.value, speedup_kind=None if r.statistic == "none" else r.statistic,
                           speedup_low=r.low, speedup_high=r.high, speedup_prompts=r.n)
            else:
                row[r.metric] = r.value
        rows.append(row)
    return pd.DataFrame(rows)


def picks_of(long: pd.DataFrame) -> pd.DataFrame:
    """The headline picks (role ``pick``) in table order."""
    return long[long["role"] == "pick"].reset_index(drop=True)


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
        row.update(dataset=ALL_DATASETS, dataset_label=ALL_DATASETS_LABEL, experiment=first["experiment"],
                   kind=first["kind"])
        row["datasets"] = len(group)
        for c in means:
            vals = group[c].dropna().astype(float)
            row[c] = vals.mean() if len(vals) else None
        for c in means:
            row[c.removesuffix("_mean") + "_n"] = int(group[c].notna().sum())
        sp = group["speedup"].dropna().astype(float)
        row["speedup"] = sp.mean() if len(sp) else None
        row["speedup_kind"] = "mean over datasets" if len(sp) else None
        row["speedup_prompts"] = len(sp) if len(sp) else None
        if len(group) == 1 and len(sp):  # one dataset: its mean is its own speedup, interval included
            only = group.iloc[0]
            row.update({c: only.get(c) for c in ("speedup_kind", "speedup_low", "speedup_high", "speedup_prompts",
                                                 "speedup_pairs")})
        rows.append(row)
    out = pd.DataFrame(rows)
    by_method = {r["method"]: r for r in rows}
    for col, base_col in (("memory_ratio", "peak_memory_mib_mean"), ("overhead_ratio", "peak_memory_overhead_mib_mean")):
        vals = []
        for r in rows:
            b = by_method.get(r["baseline"])
            vals.append(_ratio(r.get(base_col), b.get(base_col)) if b is not None else None)
        out[col] = pd.array(vals, dtype="Float64")
    out["peak_memory_change_pct"] = (out["memory_ratio"] - 1) * 100
    out["overhead_change_pct"] = (out["overhead_ratio"] - 1) * 100
    return out
