"""Headline picks: the numbers the paper's prose cites by name (``\\MainBestSpeedup``), chosen
from an experiment's aggregated rows.

    picks = headline_picks("main", "main", wide, across, cfg)   # list of pick dicts

A pick is a row of the long-format table (``decodebench.analysis``) with role ``pick``: the
row it was chosen from (its dataset, method and labels), the metric, a statistic saying how it
was chosen (``best``, ``top``, ``largest`` ...), the value with its interval where there is one,
and the macro's full name. Macro names are written out here, one kind at a time (a study has
at most one experiment of each kind, ``decodebench.kinds``), so grepping a macro's name finds
where it is chosen; ``render`` only formats them into ``numbers.tex``.

Rules shared by every kind:

- a pick of "the best" never names the baseline (the baseline is chosen only when it is the only
  row): a speedup of 1.00x is not a finding;
- ties go to the first row in config order;
- a value that does not exist (no baseline, no rows) gives no pick, and the prose's macro is then
  undefined: LaTeX stops with an error rather than print a number that was never measured.

Label picks (``metric`` ``method_label`` / ``dataset_label``) carry no value: the paper shows
the label of the row they point to.
"""

from __future__ import annotations

import json

import pandas as pd

from .kinds import KINDS
from .variants import vary_column, vary_slice

LABEL_METRICS = ("method_label", "dataset_label")


def _num(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def pick(row, macro: str | None, metric: str, statistic: str, value=None, low=None, high=None, n=None,
         **overrides) -> dict:
    """One pick from `row` (a per-dataset or across-datasets row): its value is `value`, or the
    row's `metric` column (labels have none); ``overrides`` replace identity columns (a label)."""
    row = {**dict(row), **overrides}
    if value is None and metric not in LABEL_METRICS:
        value = row.get(metric)
    return {"row": row, "macro": macro, "metric": metric, "statistic": statistic, "value": _num(value),
            "low": _num(low), "high": _num(high), "n": None if n is None or pd.isna(n) else int(n)}


def count(row: dict, macro: str, what: str, n: int) -> dict:
    """A count (methods, datasets, ...): identity of `row` (the experiment's first) and the number."""
    return pick(row, macro, what, "count", value=n, method=None, method_label=None, dataset=None,
                dataset_label=None)


def speedup_pick(row, macro: str, statistic: str, column: str = "speedup") -> dict:
    """A speedup with its interval (rows of means over datasets have none)."""
    return pick(row, macro, column, statistic, row.get(column), row.get(f"{column}_low"), row.get(f"{column}_high"),
                row.get(f"{column}_prompts"))


def best_row(df: pd.DataFrame, col: str, largest: bool = True):
    """The row with the largest (or smallest) `col` among the rows compared with a baseline (ties:
    first in config order); the baseline only when it is the only row; None without values."""
    cand = df[df[col].notna()] if col in df else df.iloc[0:0]
    is_base = (cand["speedup_kind"] == "baseline") if "speedup_kind" in cand else (cand["method"] == cand["baseline"])
    is_base = is_base | (cand["method"] == cand["baseline"])
    if (~is_base).any():
        cand = cand[~is_base]
    if cand.empty:
        return None
    values = cand[col].astype(float)
    return cand.loc[values.idxmax() if largest else values.idxmin()]


def _baseline_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["method"] == df["baseline"]]


def _first(df: pd.DataFrame) -> dict:
    return dict(df.iloc[0])


# ----------------------------------------------------------------------------- per kind

def main_picks(experiment, wide, across, cfg) -> list[dict]:
    out = []
    best = best_row(across, "speedup")
    if best is not None:
        out += [pick(best, "MainBestMethod", "method_label", "best mean speedup over datasets"),
                speedup_pick(best, "MainBestSpeedup", "best mean over datasets"),
                pick(best, "MainBestThroughput", "tokens_per_s_mean", "of the best")]
    base = _baseline_rows(across)
    if not base.empty:
        b = base.iloc[0]
        out += [pick(b, "MainBaselineMethod", "method_label", "baseline"),
                pick(b, "MainBaselineThroughput", "tokens_per_s_mean", "baseline, mean over datasets")]
    top = best_row(wide, "speedup")
    if top is not None:
        out += [speedup_pick(top, "MainTopSpeedup", "largest of any dataset and method"),
                pick(top, "MainTopSpeedupMethod", "method_label", "of the top speedup"),
                pick(top, "MainTopSpeedupDataset", "dataset_label", "of the top speedup")]
    first = _first(wide)
    out += [count(first, "MainNumMethods", "methods", wide["method"].nunique()),
            count(first, "MainNumDatasets", "datasets", wide["dataset"].nunique())]
    return out


def memory_picks(experiment, wide, across, cfg) -> list[dict]:
    out = []
    base = _baseline_rows(across)
    if not base.empty:
        out.append(pick(base.iloc[0], "MemoryBaselinePeak", "peak_memory_mib_mean", "baseline, mean over datasets"))
    changed = across[across["peak_memory_change_pct"].notna()]  # the baseline (+0 %) included
    if not changed.empty:
        values = changed["peak_memory_change_pct"].astype(float)
        hi, lo = changed.loc[values.idxmax()], changed.loc[values.idxmin()]
        out += [pick(hi, "MemoryLargestIncreaseMethod", "method_label", "largest change"),
                pick(hi, "MemoryLargestIncrease", "peak_memory_change_pct", "largest change"),
                pick(lo, "MemorySmallestIncreaseMethod", "method_label", "smallest change"),
                pick(lo, "MemorySmallestIncrease", "peak_memory_change_pct", "smallest change")]
    return out


def base_label(row) -> str:
    """A length variant's label without its budget suffix (a config label has none)."""
    if row["method_label"] != row["method"]:
        return row["method_label"]
    return row["method"].rsplit("_t", 1)[0] if "_t" in row["method"] else row["method"]


def _range_picks(wide, column: str, shortest: tuple[str, str, str], longest: tuple[str, str, str]) -> list[dict]:
    """The smallest and largest value of `column`, and the best speedup (and its method) at each;
    `shortest`/`longest`: the macro names of (the value, the speedup, the method)."""
    lengths = sorted(int(x) for x in wide[column].dropna().unique())
    if not lengths:
        return []
    out = []
    for (value_macro, speedup_macro, method_macro), length, stat in ((shortest, lengths[0], "min"),
                                                                     (longest, lengths[-1], "max")):
        at = wide[wide[column] == length]
        out.append(pick(at.iloc[0], value_macro, column, stat, value=length, method=None, method_label=None))
        best = best_row(at, "speedup")
        if best is not None:
            out += [speedup_pick(best, speedup_macro, f"best at the {stat} {column}"),
                    pick(best, method_macro, "method_label", f"best at the {stat} {column}",
                         method_label=base_label(best))]
    return out


def length_picks(experiment, wide, across, cfg) -> list[dict]:
    return _range_picks(wide, "max_new_tokens",
                        ("LengthShortest", "LengthBestSpeedupAtShortest", "LengthBestMethodAtShortest"),
                        ("LengthLongest", "LengthBestSpeedupAtLongest", "LengthBestMethodAtLongest"))


def prompt_length_picks(experiment, wide, across, cfg) -> list[dict]:
    return _range_picks(wide, "prompt_tokens_config",
                        ("PromptLengthShortest", "PromptLengthBestSpeedupAtShortest", "PromptLengthBestMethodAtShortest"),
                        ("PromptLengthLongest", "PromptLengthBestSpeedupAtLongest", "PromptLengthBestMethodAtLongest"))


def sweep_best(wide: pd.DataFrame, grids: dict) -> list[tuple[pd.Series, int]]:
    """Per (dataset, swept method id, in the grid's order): the configuration with the highest
    tokens/s among the non-baseline rows, and how many configurations were measured."""
    out = []
    for d in dict.fromkeys(wide["dataset"]):
        sub = wide[wide["dataset"] == d]
        ids = sorted(sub["method_id"].unique(), key=lambda m: list(grids).index(m) if m in grids else -1)
        for method_id in ids:
            cand = sub[(sub["method_id"] == method_id) & (sub["method"] != sub["baseline"])]
            if not cand.empty:
                out.append((cand.loc[cand["tokens_per_s_mean"].astype(float).idxmax()], len(cand)))
    return out


def sweep_picks(experiment, wide, across, cfg) -> list[dict]:
    grids = cfg["experiments"][experiment].get("sweep", {})
    # the sweep table's rows: no macro, cited by key as \dbval{<experiment>}{<dataset>}{<id>}{config}
    out = [pick(best, None, "tokens_per_s_mean", "best of the method's grid", n=n) for best, n in sweep_best(wide, grids)]
    best = best_row(wide, "speedup")
    if best is not None:
        out += [pick(best, "SweepBestConfig", "method_label", "best speedup of the sweep"),
                speedup_pick(best, "SweepBestSpeedup", "best of the sweep"),
                pick(best, "SweepBestDataset", "dataset_label", "best speedup of the sweep")]
    out.append(count(_first(wide), "SweepNumConfigs", "configurations",
                     int((wide["method"] != wide["baseline"]).sum())))
    return out


def ablation_picks(experiment, wide, across, cfg) -> list[dict]:
    rows = [r for _, r in across.iterrows() if r["method"] != r["baseline"]] or [r for _, r in across.iterrows()]
    if not rows:
        return []
    return [pick(rows[0], "AblationFirstMethod", "method_label", "first step"),
            speedup_pick(rows[0], "AblationFirstSpeedup", "first step"),
            pick(rows[-1], "AblationLastMethod", "method_label", "last step"),
            speedup_pick(rows[-1], "AblationLastSpeedup", "last step")]


def multisample_picks(experiment, wide, across, cfg) -> list[dict]:
    out = []
    best = best_row(wide, "speedup")
    if best is not None:
        stat = "of the best speedup"
        out += [pick(best, "MultisampleBestMethod", "method_label", stat),
                speedup_pick(best, "MultisampleBestSpeedup", "best of any dataset and method"),
                pick(best, "MultisampleBestDataset", "dataset_label", stat),
                pick(best, "MultisampleBestMemoryRatio", "memory_ratio", stat),
                pick(best, "MultisampleBestOverheadRatio", "overhead_ratio", stat),
                pick(best, "MultisampleBestSelfBleu", "self_bleu_mean", stat),
                pick(best, "MultisampleBestNllError", "nll_per_token_error_mean", stat)]
    base = _baseline_rows(wide)
    if not base.empty:
        out.append(pick(base.iloc[0], "MultisampleBaselineMethod", "method_label", "baseline"))
    return out


# The macros of each varied setting of a multisample_sweep experiment, written out: the setting's
# lowest and highest value and, at each, the best speedup over the baseline, the configuration it
# belongs to, and that configuration's self-BLEU and NLL-per-token error (its samples' quality).
MULTISAMPLE_SWEEP_MACROS = {
    "num_samples": {
        "low": "MultisampleSweepSamplesLow", "high": "MultisampleSweepSamplesHigh",
        "speedup_low": "MultisampleSweepSamplesSpeedupAtLow", "speedup_high": "MultisampleSweepSamplesSpeedupAtHigh",
        "method_low": "MultisampleSweepSamplesMethodAtLow", "method_high": "MultisampleSweepSamplesMethodAtHigh",
        "self_bleu_low": "MultisampleSweepSamplesSelfBleuAtLow",
        "self_bleu_high": "MultisampleSweepSamplesSelfBleuAtHigh",
        "nll_error_low": "MultisampleSweepSamplesNllErrorAtLow",
        "nll_error_high": "MultisampleSweepSamplesNllErrorAtHigh"},
    "temperature": {
        "low": "MultisampleSweepTemperatureLow", "high": "MultisampleSweepTemperatureHigh",
        "speedup_low": "MultisampleSweepTemperatureSpeedupAtLow",
        "speedup_high": "MultisampleSweepTemperatureSpeedupAtHigh",
        "method_low": "MultisampleSweepTemperatureMethodAtLow",
        "method_high": "MultisampleSweepTemperatureMethodAtHigh",
        "self_bleu_low": "MultisampleSweepTemperatureSelfBleuAtLow",
        "self_bleu_high": "MultisampleSweepTemperatureSelfBleuAtHigh",
        "nll_error_low": "MultisampleSweepTemperatureNllErrorAtLow",
        "nll_error_high": "MultisampleSweepTemperatureNllErrorAtHigh"},
    "entropy_threshold": {
        "low": "MultisampleSweepThresholdLow", "high": "MultisampleSweepThresholdHigh",
        "speedup_low": "MultisampleSweepThresholdSpeedupAtLow",
        "speedup_high": "MultisampleSweepThresholdSpeedupAtHigh",
        "method_low": "MultisampleSweepThresholdMethodAtLow", "method_high": "MultisampleSweepThresholdMethodAtHigh",
        "self_bleu_low": "MultisampleSweepThresholdSelfBleuAtLow",
        "self_bleu_high": "MultisampleSweepThresholdSelfBleuAtHigh",
        "nll_error_low": "MultisampleSweepThresholdNllErrorAtLow",
        "nll_error_high": "MultisampleSweepThresholdNllErrorAtHigh"},
    "branch_factor": {
        "low": "MultisampleSweepBranchFactorLow", "high": "MultisampleSweepBranchFactorHigh",
        "speedup_low": "MultisampleSweepBranchFactorSpeedupAtLow",
        "speedup_high": "MultisampleSweepBranchFactorSpeedupAtHigh",
        "method_low": "MultisampleSweepBranchFactorMethodAtLow",
        "method_high": "MultisampleSweepBranchFactorMethodAtHigh",
        "self_bleu_low": "MultisampleSweepBranchFactorSelfBleuAtLow",
        "self_bleu_high": "MultisampleSweepBranchFactorSelfBleuAtHigh",
        "nll_error_low": "MultisampleSweepBranchFactorNllErrorAtLow",
        "nll_error_high": "MultisampleSweepBranchFactorNllErrorAtHigh"},
}


def multisample_sweep_picks(experiment, wide, across, cfg) -> list[dict]:
    """Per varied setting with macros (MULTISAMPLE_SWEEP_MACROS), at its lowest and highest value:
    the value, and the best speedup there with its configuration and its samples' quality. A
    setting without macros is in the table and its figure only."""
    out = []
    base = _baseline_rows(wide)
    if not base.empty:
        out.append(pick(base.iloc[0], "MultisampleSweepBaselineMethod", "method_label", "baseline"))
    out.append(count(_first(wide), "MultisampleSweepNumConfigs", "configurations",
                     int((wide["method"] != wide["baseline"]).sum())))
    labels = dict(zip(wide["method"], wide["method_label"]))
    for dimension in cfg["experiments"][experiment].get("vary", {}):
        macros = MULTISAMPLE_SWEEP_MACROS.get(dimension)
        rows = vary_slice(wide, dimension)
        rows = rows[rows["x"].notna()]
        if macros is None or rows.empty:
            continue
        values = sorted(float(v) for v in rows["x"].unique())
        for end, value, stat in (("low", values[0], "min"), ("high", values[-1], "max")):
            at = rows[rows["x"] == value]
            out.append(pick(at.iloc[0], macros[end], vary_column(dimension), stat, value=value, method=None,
                            method_label=None))
            best = best_row(at, "speedup")
            if best is None:
                continue
            how = f"best speedup at the {stat} {dimension}"
            out += [speedup_pick(best, macros[f"speedup_{end}"], how),
                    pick(best, macros[f"method_{end}"], "method_label", how, method_label=labels[best["variant_of"]]),
                    pick(best, macros[f"self_bleu_{end}"], "self_bleu_mean", how),
                    pick(best, macros[f"nll_error_{end}"], "nll_per_token_error_mean", how)]
    return out


def no_speedup_reason(sub: pd.DataFrame) -> str | None:
    """Why a leaderboard dataset shows absolute tokens/s instead of speedups (None: it does not)."""
    base = _baseline_rows(sub)
    if base.empty:
        return "no baseline run is among the source files, so no speedup can be computed"
    tps = base.iloc[0].get("task_overall_tokens_per_s")
    if tps is None or pd.isna(tps) or float(tps) <= 0:
        return (f"the baseline ({base.iloc[0]['method_label']}) has a mean of 0 tokens/s (its files record "
                "no new tokens; check rule values), so no speedup can be computed")
    return None


def leaderboard_picks(experiment, wide, across, cfg) -> list[dict]:
    first = _first(wide)
    best = best_row(wide, "task_overall_speedup") if no_speedup_reason(wide) is None else None
    out = [count(first, "LeaderboardHasBaseline", "has_baseline", int(best is not None))]
    if best is not None:
        out += [pick(best, "LeaderboardBestMethod", "method_label", "highest Overall speedup"),
                pick(best, "LeaderboardBestSpeedup", "task_overall_speedup", "highest Overall speedup")]
    fastest = best_row(wide, "task_overall_tokens_per_s")
    if fastest is not None:
        out += [pick(fastest, "LeaderboardFastestMethod", "method_label", "highest tokens/s, mean over questions"),
                pick(fastest, "LeaderboardFastestThroughput", "task_overall_tokens_per_s",
                     "highest tokens/s, mean over questions")]
    out += [count(first, "LeaderboardNumMethods", "methods", wide["method"].nunique()),
            count(first, "LeaderboardNumQuestions", "questions", int(wide["task_overall_n"].max()))]
    return out


def headline_picks(experiment: str, kind: str, wide: pd.DataFrame, across: pd.DataFrame, cfg: dict) -> list[dict]:
    """The experiment's picks, by the chooser its kind declares (``decodebench.kinds``)."""
    chooser = KINDS[kind].picks
    return globals()[chooser](experiment, wide, across, cfg) if chooser else []


def params_shown(row, grids: dict) -> str:
    """``k=v, ...`` of a sweep row's swept parameters (all its parameters when none is swept)."""
    params = json.loads(row["params"])
    return ", ".join(f"{k}={params[k]}" for k in grids.get(row["method_id"], params))
