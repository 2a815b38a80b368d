"""Aggregation math on synthetic result files, and the config shorthands it relies on."""

from __future__ import annotations

import statistics

import pandas as pd
import pytest
from pipeline.synthetic import record, result

from decodebench.analysis import across_datasets, aggregate_experiment, baseline_for, per_dataset_table, wide_table
from decodebench.config import ConfigError, expand_config, sweep_methods, validate_config


def _cfg(experiments: dict) -> dict:
    return {"study": "s", "experiments": experiments}


def _row(table, dataset, method):
    sel = table[(table["dataset"] == dataset) & (table["method"] == method)]
    assert len(sel) == 1, (dataset, method)
    return sel.iloc[0]


def aggregated(cfg, experiment, results):
    """The experiment's per-dataset rows as the renderer sees them: written long, reshaped wide."""
    return wide_table(aggregate_experiment(cfg, experiment, results))


def test_mean_sample_std_speedup_and_memory_change():
    exp = {"baseline": "ar", "datasets": ["d"], "methods": {"ar": {}, "lin": {}}}
    ar = result("s", "main", "d", "ar", "ar", [record(0, 10.0, 100.0, 10.0), record(1, 14.0, 110.0, 12.0)])
    lin = result("s", "main", "d", "lin", "linear",
                 [record(0, 20.0, 120.0, 20.0, rounds=3, acceptance_rate=0.5, tokens_per_round=2.0),
                  record(1, 25.0, 130.0, 22.0, rounds=4, acceptance_rate=0.7, tokens_per_round=3.0),
                  record(2, 30.0, 140.0, 24.0, rounds=5, acceptance_rate=0.9, tokens_per_round=4.0)])
    table = aggregated(_cfg({"main": exp}), "main", [lin, ar])
    assert list(table["method"]) == ["ar", "lin"]  # config order, not input order
    a, b = _row(table, "d", "ar"), _row(table, "d", "lin")
    assert a["tokens_per_s_mean"] == pytest.approx(12.0)
    assert a["tokens_per_s_std"] == pytest.approx(statistics.stdev([10.0, 14.0]))  # ddof=1
    assert b["tokens_per_s_mean"] == pytest.approx(25.0)
    assert b["tokens_per_s_std"] == pytest.approx(5.0)
    assert b["tokens_per_s_n"] == 3
    # paired: the prompts both measured (0 and 1), ratio per prompt, mean over prompts
    assert b["speedup"] == pytest.approx((20.0 / 10.0 + 25.0 / 14.0) / 2)
    assert b["speedup_kind"] == "paired" and b["speedup_prompts"] == 2 and b["speedup_pairs"] == 2
    assert b["speedup_low"] <= b["speedup"] <= b["speedup_high"]
    assert a["speedup"] == pytest.approx(1.0)
    assert b["peak_memory_change_pct"] == pytest.approx((130.0 - 105.0) / 105.0 * 100)
    assert b["overhead_ratio"] == pytest.approx(22.0 / 11.0)
    assert b["acceptance_rate_mean"] == pytest.approx(0.7)
    assert b["tokens_per_round_mean"] == pytest.approx(3.0)
    assert pd.isna(a["rounds_mean"])


def test_repeats_are_averaged_before_the_std_over_prompts():
    exp = {"baseline": "ar", "datasets": ["d"], "methods": {"ar": {}}}
    recs = [record(0, 10.0, 1.0, 1.0, repeat=0), record(0, 20.0, 1.0, 1.0, repeat=1),
            record(1, 30.0, 1.0, 1.0, repeat=0), record(1, 30.0, 1.0, 1.0, repeat=1)]
    row = aggregated(_cfg({"main": exp}), "main", [result("s", "main", "d", "ar", "ar", recs)]).iloc[0]
    assert row["tokens_per_s_mean"] == pytest.approx(22.5)  # prompts: 15 and 30
    assert row["tokens_per_s_std"] == pytest.approx(statistics.stdev([15.0, 30.0]))
    assert row["tokens_per_s_n"] == 2


def test_multisample_speedup_is_baseline_time_over_method_time():
    exp = {"kind": "multisample", "baseline": "naive", "datasets": ["d"], "methods": {"naive": {}, "eab": {}}}
    naive = result("s", "ms", "d", "naive", "naive", [record(0, 10.0, 200.0, 50.0, new_tokens=40)])  # 4 s
    eab = result("s", "ms", "d", "eab", "eab_cow", [record(0, 10.0, 150.0, 25.0, new_tokens=20)])  # 2 s
    table = aggregated(_cfg({"ms": exp}), "ms", [naive, eab])
    row = _row(table, "d", "eab")
    assert row["speedup"] == pytest.approx(2.0)  # tokens/s are equal; time halves
    assert row["memory_ratio"] == pytest.approx(0.75)
    assert row["overhead_ratio"] == pytest.approx(0.5)


def test_generation_length_variants_compare_with_the_baseline_of_the_same_budget():
    exp = {"baseline": "ar", "datasets": ["d"], "generation_lengths": [8, 16],
           "methods": {"ar": {"method": "ar"}, "lin": {"method": "linear"}}}
    cfg = expand_config({"experiments": {"length": exp}, "datasets": {"d": {}}})
    methods = cfg["experiments"]["length"]["methods"]
    assert list(methods) == ["ar_t8", "ar_t16", "lin_t8", "lin_t16"]
    assert baseline_for(cfg["experiments"]["length"], "lin_t16") == "ar_t16"
    results = [result("s", "length", "d", m, m.split("_")[0].replace("lin", "linear"),
                      [record(0, tps, 1.0, 1.0)], max_new_tokens=int(m.rsplit("_t", 1)[1]))
               for m, tps in (("ar_t8", 10.0), ("ar_t16", 20.0), ("lin_t8", 15.0), ("lin_t16", 50.0))]
    table = aggregated({"study": "s", **cfg}, "length", results)
    assert _row(table, "d", "lin_t8")["speedup"] == pytest.approx(1.5)
    assert _row(table, "d", "lin_t16")["speedup"] == pytest.approx(2.5)


VARY_EXP = {"kind": "multisample_sweep", "baseline": "sp", "datasets": ["d"],
            "protocol": {"num_samples": 4, "temperature": 1.0},
            "methods": {"sp": {"method": "shared_prefill", "label": "SP"}, "eab": {"method": "eab_shared_prefix"}},
            "vary": {"num_samples": [2, 4], "temperature": [0.5], "entropy_threshold": [0.1]}}


def _vary_results(cfg: dict) -> list[dict]:
    """One prompt per configuration: the baselines take 4 s at N = 4, 2 s at N = 2 and 8 s at
    T = 0.5; EAB takes a quarter of its baseline's time, half at threshold 0.1."""
    from decodebench.method_params import resolve_params

    out = []
    for m, spec in cfg["experiments"]["ms"]["methods"].items():
        protocol = {**VARY_EXP["protocol"], **spec.get("protocol", {})}
        seconds = {2: 2.0, 4: 4.0}[protocol["num_samples"]] * (2 if protocol["temperature"] == 0.5 else 1)
        if spec["method"] == "eab_shared_prefix":
            seconds /= 2 if spec.get("params", {}).get("entropy_threshold") == 0.1 else 4
        out.append(result("s", "ms", "d", m, spec["method"], [record(0, 40.0 / seconds, 1.0, 1.0, new_tokens=40)],
                          params=resolve_params(spec["method"], spec.get("params", {})),
                          num_samples=protocol["num_samples"], temperature=protocol["temperature"]))
    return out


def test_vary_variants_compare_with_the_baseline_at_the_same_setting():
    cfg = {"study": "s", **expand_config({"experiments": {"ms": VARY_EXP}, "datasets": {"d": {}}})}
    exp = cfg["experiments"]["ms"]
    assert [baseline_for(exp, m) for m in exp["methods"]] == ["sp", "sp", "sp_n2", "sp_n2", "sp_temp0.5",
                                                               "sp_temp0.5", "sp"]
    long = aggregate_experiment(cfg, "ms", _vary_results(cfg))
    table = wide_table(long)
    assert _row(table, "d", "eab")["speedup"] == pytest.approx(4.0)
    assert _row(table, "d", "eab_n2")["speedup"] == pytest.approx(4.0)  # 2 s / 0.5 s, not 4 s / 0.5 s
    assert _row(table, "d", "eab_temp0.5")["speedup"] == pytest.approx(4.0)  # against sp_temp0.5's 8 s
    assert _row(table, "d", "eab_et0.1")["speedup"] == pytest.approx(2.0)  # a parameter: against sp
    assert _row(table, "d", "sp_n2")["speedup_kind"] == "baseline"
    row = _row(table, "d", "eab_temp0.5")
    assert (row["variant_of"], row["varied"], row["temperature_config"]) == ("eab", "temperature", 0.5)
    assert pd.isna(_row(table, "d", "eab")["varied"]) and _row(table, "d", "eab")["variant_of"] == "eab"
    picks = long[long["role"] == "pick"].set_index("macro")
    assert picks.loc["MultisampleSweepBaselineMethod", "method_label"] == "SP"
    assert picks.loc["MultisampleSweepSamplesLow", "value"] == 2
    assert picks.loc["MultisampleSweepSamplesHigh", "value"] == 4
    assert picks.loc["MultisampleSweepSamplesSpeedupAtLow", "method"] == "eab_n2"
    assert picks.loc["MultisampleSweepSamplesMethodAtLow", "method_label"] == "eab"  # the configuration varied
    assert picks.loc["MultisampleSweepTemperatureLow", "value"] == 0.5
    assert picks.loc["MultisampleSweepThresholdLow", "value"] == pytest.approx(0.1)
    assert picks.loc["MultisampleSweepThresholdSpeedupAtLow", "value"] == pytest.approx(2.0)
    assert picks.loc["MultisampleSweepThresholdHigh", "value"] == pytest.approx(0.25)  # eab's own setting
    assert "MultisampleSweepBranchFactorLow" not in picks.index  # not varied
    from decodebench.headlines import MULTISAMPLE_SWEEP_MACROS
    assert set(picks.index) - {"MultisampleSweepBaselineMethod", "MultisampleSweepNumConfigs"} <= {
        name for macros in MULTISAMPLE_SWEEP_MACROS.values() for name in macros.values()}


def test_imported_results_aggregate_from_their_summary():
    exp = {"baseline": "ar", "datasets": ["d"], "methods": {"ar": {}, "tree": {}}}
    ar = result("s", "main", "d", "ar", "ar", [record(0, 10.0, 100.0, 1.0), record(1, 20.0, 100.0, 1.0)],
                imported=True)
    tree = result("s", "main", "d", "tree", "dynatree", [record(0, 30.0, 150.0, 1.0)], imported=True)
    assert ar["records"] is None
    table = aggregated(_cfg({"main": exp}), "main", [ar, tree])
    assert _row(table, "d", "ar")["tokens_per_s_mean"] == pytest.approx(15.0)
    assert _row(table, "d", "tree")["speedup"] == pytest.approx(2.0)
    assert _row(table, "d", "tree")["peak_memory_change_pct"] == pytest.approx(50.0)


def test_missing_baseline_leaves_relative_columns_empty():
    exp = {"baseline": "ar", "datasets": ["d"], "methods": {"ar": {}, "lin": {}}}
    lin = result("s", "main", "d", "lin", "linear", [record(0, 20.0, 1.0, 1.0)])
    row = aggregated(_cfg({"main": exp}), "main", [lin]).iloc[0]
    assert pd.isna(row["speedup"])


def test_results_of_another_study_are_refused():
    exp = {"baseline": "ar", "datasets": ["d"], "methods": {"ar": {}}}
    other = result("other", "main", "d", "ar", "ar", [record(0, 1.0, 1.0, 1.0)])
    with pytest.raises(ValueError, match="study 'other'"):
        aggregated(_cfg({"main": exp}), "main", [other])


def test_across_datasets_averages_and_recomputes_memory_change():
    exp = {"baseline": "ar", "datasets": ["a", "b"], "methods": {"ar": {}, "lin": {}}}
    rs = [result("s", "memory", "a", "ar", "ar", [record(0, 10.0, 100.0, 10.0)]),
          result("s", "memory", "b", "ar", "ar", [record(0, 10.0, 300.0, 30.0)]),
          result("s", "memory", "a", "lin", "linear", [record(0, 20.0, 110.0, 15.0)]),
          result("s", "memory", "b", "lin", "linear", [record(0, 40.0, 330.0, 45.0)])]
    avg = across_datasets(per_dataset_table(_cfg({"memory": exp}), "memory", rs))
    lin = avg[avg["method"] == "lin"].iloc[0]
    assert lin["peak_memory_mib_mean"] == pytest.approx(220.0)
    assert lin["peak_memory_change_pct"] == pytest.approx(10.0)  # 220 vs 200
    assert lin["speedup"] == pytest.approx(3.0)  # mean of 2x and 4x


def _memory_study():
    exp = {"baseline": "ar", "datasets": ["a", "b"], "methods": {"ar": {}, "lin": {}}}
    rs = [result("s", "memory", "a", "ar", "ar", [record(0, 10.0, 100.0, 10.0), record(1, 12.0, 100.0, 10.0)]),
          result("s", "memory", "b", "ar", "ar", [record(0, 10.0, 300.0, 30.0), record(1, 11.0, 300.0, 30.0)]),
          result("s", "memory", "a", "lin", "linear", [record(0, 20.0, 110.0, 15.0), record(1, 30.0, 90.0, 5.0)]),
          result("s", "memory", "b", "lin", "linear", [record(0, 40.0, 330.0, 45.0), record(1, 22.0, 330.0, 40.0)])]
    return _cfg({"memory": exp}), rs


def test_the_long_table_reshapes_back_to_every_per_dataset_value(tmp_path):
    from decodebench.analysis import read_table, write_table

    cfg, rs = _memory_study()
    wide = per_dataset_table(cfg, "memory", rs)
    write_table(aggregate_experiment(cfg, "memory", rs), tmp_path / "memory.csv")
    back = wide_table(read_table(tmp_path / "memory.csv"))
    assert len(back) == len(wide) == 4
    numeric = [c for c in wide.columns if pd.api.types.is_numeric_dtype(wide[c]) and wide[c].notna().any()]
    assert {"tokens_per_s_mean", "tokens_per_s_std", "speedup", "speedup_low", "memory_ratio"} <= set(numeric)
    for (_, w), (_, b) in zip(wide.iterrows(), back.iterrows()):
        assert (w["dataset"], w["method"]) == (b["dataset"], b["method"])
        for c in numeric:
            if pd.isna(w[c]):
                assert pd.isna(b[c]), c
            else:
                assert float(b[c]) == pytest.approx(float(w[c]), rel=1e-9), c


def test_picks_carry_their_macro_and_never_name_the_baseline():
    cfg, rs = _memory_study()
    cfg["experiments"]["main"] = {**cfg["experiments"].pop("memory")}
    rs = [{**r, "experiment": "main"} for r in rs]
    long = aggregate_experiment(cfg, "main", rs)
    picks = long[long["role"] == "pick"].set_index("macro", drop=False)
    best = picks.loc["MainBestSpeedup"]
    assert best["method"] == "lin" and best["dataset"] == "_all"
    across = long[(long["role"] == "across datasets") & (long["method"] == "lin") & (long["metric"] == "speedup")]
    assert best["value"] == pytest.approx(across.iloc[0]["value"])  # the mean over datasets it was chosen from
    assert picks.loc["MainBestMethod", "method_label"] == "lin"
    assert picks.loc["MainNumDatasets", "value"] == 2 and picks.loc["MainNumMethods", "value"] == 2
    top = picks.loc["MainTopSpeedup"]
    row = long[(long["role"] == "dataset") & (long["method"] == "lin") & (long["dataset"] == top["dataset"])
               & (long["metric"] == "speedup") & (long["statistic"] == "paired")].iloc[0]
    assert (top["value"], top["low"], top["high"]) == (row["value"], row["low"], row["high"])  # with its interval
    assert picks.loc["MainBaselineMethod", "method"] == "ar"


def test_every_macro_the_paper_cites_is_written_out_where_it_is_chosen():
    """Grepping a headline macro's name finds the code that chooses it (no names built by f-strings)."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    cited = set(re.findall(r"\\([A-Z][A-Za-z]+)", (repo / "paper" / "main.tex").read_text()))
    chosen = (repo / "src" / "decodebench" / "headlines.py").read_text()
    setup = "".join((repo / "src" / "decodebench" / f).read_text() for f in ("study_setup.py", "render/setup.py"))
    missing = [m for m in sorted(cited) if f'"{m}"' not in chosen
               and not (m.startswith("Setup") and f'"{m.removeprefix("Setup")}"' in setup) and m != "StudyName"]
    assert not missing, missing


def test_an_experiment_needs_a_kind_unless_its_id_names_one():
    from decodebench.kinds import KINDS, kind_problems

    assert kind_problems({"main": {}, "extra": {"kind": "generic"}, "other": {"kind": "generic"}}) == []
    assert "no kind" in kind_problems({"speed": {}})[0]
    assert "unknown kind 'fast'" in kind_problems({"x": {"kind": "fast"}})[0]
    assert "a second experiment of kind 'main'" in kind_problems({"main": {}, "main2": {"kind": "main"}})[0]
    from decodebench.config import config_schema
    assert config_schema()["$defs"]["experiment"]["properties"]["kind"]["enum"] == list(KINDS)


def test_sweep_shorthand_names_every_grid_point():
    methods = sweep_methods({"tree": {"depth": [4, 6], "branching": [2], "tau": [0.05, 0.1]},
                             "linear": {"k": [2, 4]}})
    assert list(methods) == ["tree_d4_b2_tau0.05", "tree_d4_b2_tau0.1", "tree_d6_b2_tau0.05",
                             "tree_d6_b2_tau0.1", "linear_k2", "linear_k4"]
    assert methods["tree_d6_b2_tau0.1"] == {"method": "tree", "params": {"depth": 6, "branching": 2, "tau": 0.1}}
    with pytest.raises(ConfigError, match="abbreviate"):
        sweep_methods({"tree": {"depth": [1], "dropout": [2]}})


def test_sweep_in_a_config_validates_and_expands(tiny_config):
    import yaml

    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["experiments"]["sweep"] = {"baseline": "ar", "datasets": ["docs"], "methods": {"ar": {"method": "ar"}},
                                   "sweep": {"linear": {"k": [2, 4]}}}
    validate_config(cfg)
    assert list(expand_config(cfg)["experiments"]["sweep"]["methods"]) == ["ar", "linear_k2", "linear_k4"]
    cfg["experiments"]["sweep"]["swep"] = {}
    with pytest.raises(ConfigError, match="swep"):
        validate_config(cfg)


def test_with_one_dataset_the_mean_over_datasets_keeps_the_interval():
    cfg, rs = _memory_study()
    cfg["experiments"]["memory"]["datasets"] = ["a"]
    rs = [r for r in rs if r["dataset"]["name"] == "a"]
    long = aggregate_experiment(cfg, "memory", rs)
    per = long[(long["role"] == "dataset") & (long["method"] == "lin") & (long["metric"] == "speedup")
               & (long["statistic"] == "paired")].iloc[0]
    mean = long[(long["role"] == "across datasets") & (long["method"] == "lin") & (long["metric"] == "speedup")
                & (long["statistic"] != "pairs")].iloc[0]
    assert mean["statistic"] == "paired" and (mean["value"], mean["low"], mean["high"]) == (per["value"], per["low"],
                                                                                         per["high"])
