import json
import subprocess
import sys

import pytest
import yaml

from decodebench.config import ConfigError, load_config
from decodebench.harness import run_job
from decodebench.models import ModelUnavailable, load_model
from decodebench.prompts import DatasetUnavailable, read_prompt_set, select_prompts
from decodebench.results import load_result
from decodebench.testing import make_tokenizer


def test_run_writes_valid_result_with_provenance(tiny_config, tmp_path):
    cfg = load_config(tiny_config)
    out = tmp_path / "out" / "ar.json"
    run_job(cfg, "main", "docs", "ar", out, progress=False)
    data = load_result(out)
    assert data["protocol"]["prompts_measured"] == 3
    assert data["protocol"]["overrides"] == {}
    for r in data["records"]:
        assert r["new_tokens"] == 12 and r["prompt_tokens"] == 24
        assert r["peak_memory_overhead_mib"] > 0
        assert r["tokens_per_s"] == pytest.approx(r["new_tokens"] / r["wall_time_s"])
        assert 0 < r["ttft_s"] <= r["wall_time_s"]
    assert data["models"]["target"]["num_parameters"] > 0
    assert len(data["models"]["target"]["weights_sha256"]) == 64
    assert data["environment"]["torch"] and data["environment"]["transformers"]
    assert data["provenance"]["job_sha256"] and data["provenance"]["code_version"]
    assert data["dataset"]["source_kind"] == "local"


def run_ar(tiny_config, out, limit: int, max_new_tokens: int) -> subprocess.CompletedProcess:
    """`decodebench run` of experiment main's AR on the tiny config's docs, in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "decodebench.cli", "run", "--config", str(tiny_config),
                           "--experiment", "main", "--dataset", "docs", "--method", "ar", "--out", str(out),
                           "--limit", str(limit), "--max-new-tokens", str(max_new_tokens), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_overrides_are_recorded(tiny_config, tmp_path):
    out = tmp_path / "ar.json"
    run_ar(tiny_config, out, limit=2, max_new_tokens=5)
    data = json.loads(out.read_text())
    assert data["protocol"]["overrides"] == {"limit": 2, "max_new_tokens": 5}
    assert [r["new_tokens"] for r in data["records"]] == [5, 5]


def test_config_typo_names_the_key(tiny_config):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["protocol"]["max_new_tokns"] = 3
    tiny_config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(tiny_config)
    assert "max_new_tokns" in str(err.value) and str(tiny_config) in str(err.value)


def test_unknown_method_param_is_an_error(tiny_config, tmp_path):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["experiments"]["main"]["methods"]["ar"]["params"] = {"k": 3}
    tiny_config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="unknown parameter"):
        run_job(load_config(tiny_config), "main", "docs", "ar", tmp_path / "x.json", progress=False)


def test_prompt_selection_is_deterministic_and_truncated_in_tokens(tiny_models):
    tok = make_tokenizer()
    spec = {"loader": "gutenberg", "num_prompts": 3, "prompt_tokens": 40, "seed": 7}
    a, b = select_prompts(spec, tok), select_prompts(spec, tok)
    assert a == b
    assert all(len(p["input_ids"]) == 40 for p in a)
    assert select_prompts({**spec, "seed": 8}, tok) != a


def test_prompt_file_edit_is_detected(tiny_config, tmp_path):
    cfg = load_config(tiny_config)
    run_job(cfg, "main", "docs", "ar", tmp_path / "ar.json", limit=1, max_new_tokens=2, progress=False)
    path = tmp_path / "resources" / "prompts" / "tiny" / "docs.jsonl"
    read_prompt_set(path)
    path.write_text(path.read_text().replace("[", "[1, ", 1))
    with pytest.raises(DatasetUnavailable, match="SHA-256"):
        read_prompt_set(path)


def test_hub_dataset_unavailable_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", "/nonexistent-decodebench-cache")
    with pytest.raises(DatasetUnavailable) as err:
        select_prompts({"loader": "wikitext", "num_prompts": 1, "prompt_tokens": 8}, make_tokenizer())
    assert "wikitext" in str(err.value) and "no other text is substituted" in str(err.value)


def test_hub_model_unavailable_offline_names_model(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailable) as err:
        load_model({"name": "pythia", "hf": "EleutherAI/pythia-70m-nonexistent"})
    assert "EleutherAI/pythia-70m-nonexistent" in str(err.value) and "hf download" in str(err.value)


def test_block_order_is_a_cyclic_latin_square():
    from decodebench.harness import block_order

    methods = ["a", "b", "c"]
    orders = [block_order(methods, i, 0) for i in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    for position in range(3):  # over 3 consecutive blocks each method takes each position once
        assert sorted(o[position] for o in orders) == methods
    assert block_order(methods, 0, 1) == block_order(methods, 1, 0)  # repeats continue the rotation


def test_group_measures_interleaved_and_writes_one_result_per_configuration(tiny_config, tmp_path):
    from decodebench.harness import block_order, run_group

    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["protocol"].update(repeats=2, max_new_tokens=4)
    cfg["experiments"]["main"]["methods"] = {"ar": {"method": "ar"}, "linear": {"method": "linear"},
                                             "pld": {"method": "pld"}}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    methods = ["ar", "linear", "pld"]
    outs = {m: tmp_path / "raw" / f"{m}.json" for m in methods}
    run_group(load_config(tiny_config), "main", "docs", methods, outs, limit=2, progress=False)
    results = {m: load_result(outs[m]) for m in methods}
    measured = sorted((r["measured_at_s"], m, r["prompt_index"], r["repeat"], r["order_position"])
                      for m, res in results.items() for r in res["records"])
    blocks = [measured[i:i + 3] for i in range(0, len(measured), 3)]
    assert len(blocks) == 4  # 2 prompts x 2 repeats, each block every configuration once
    for block, (repeat, index) in zip(blocks, [(0, 0), (0, 1), (1, 0), (1, 1)]):
        assert [b[1] for b in block] == block_order(methods, index, repeat)
        assert {(b[2], b[3]) for b in block} == {(index, repeat)}
        assert [b[4] for b in block] == [0, 1, 2]
    for m, res in results.items():
        assert res["protocol"]["pairing"] == "interleaved" and res["protocol"]["group"] == methods
        assert res["method"]["name"] == m and len(res["records"]) == 4
    # greedy: every configuration reproduces AR on every prompt and repeat
    ar = {(r["prompt_id"], r["repeat"]): r["output_sha256"] for r in results["ar"]["records"]}
    for m in ("linear", "pld"):
        assert {(r["prompt_id"], r["repeat"]): r["output_sha256"] for r in results[m]["records"]} == ar


def test_group_refuses_configurations_that_cannot_share_a_process(tiny_config, tmp_path):
    from decodebench.harness import run_group

    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["experiments"]["main"]["methods"] = {"ar": {"method": "ar"},
                                             "slow": {"method": "ar", "protocol": {"repeats": 3}}}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    outs = {m: tmp_path / f"{m}.json" for m in ("ar", "slow")}
    with pytest.raises(ConfigError, match="protocol.repeats"):
        run_group(load_config(tiny_config), "main", "docs", ["ar", "slow"], outs, progress=False)
    assert not any(p.exists() for p in outs.values())


def test_pairing_is_set_per_experiment_not_per_method(tiny_config):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["experiments"]["main"]["methods"]["ar"]["protocol"] = {"pairing": "per_method"}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError, match="methods.ar.protocol.pairing"):
        load_config(tiny_config)


def test_benchmark_groups_follow_the_pairing():
    from decodebench.layout import benchmark_groups

    cfg = {"study": "s", "protocol": {}, "experiments": {
        "main": {"datasets": ["a", "b"], "methods": {"ar": {}, "linear": {}}},
        "sweep": {"datasets": ["a"], "protocol": {"pairing": "per_method"}, "methods": {"ar": {}, "t": {}}}}}
    groups = benchmark_groups(cfg)
    assert [(g["name"], g["methods"]) for g in groups] == [
        ("benchmark_main_a", ["ar", "linear"]), ("benchmark_main_b", ["ar", "linear"]),
        ("benchmark", ["ar"]), ("benchmark", ["t"])]
    assert groups[0]["outputs"] == ["results/raw/s/main/a/ar.json", "results/raw/s/main/a/linear.json"]


def test_an_unwritable_out_is_refused_before_measuring(tiny_config, tmp_path, monkeypatch):
    """`decodebench run --out` where no file can be written fails before any model is loaded,
    instead of losing a finished measurement (issue 20, item 9)."""
    from decodebench import harness
    from decodebench.cli import main

    monkeypatch.setattr(harness, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the output directory should be")
    out = blocker / "main" / "ar.json"
    with pytest.raises(OSError, match=rf"{out}: cannot write the result here \({blocker} is not a writable "
                                      r"directory\); nothing was measured"):
        main(["run", "--config", str(tiny_config), "--experiment", "main", "--dataset", "docs", "--method", "ar",
              "--out", str(out), "--quiet"])


def test_run_summary_result_file_and_csv_agree_for_every_metric(tiny_config, tmp_path):
    """One statistic function: `decodebench run`'s printout, the result file's summary and the
    aggregated CSV's rows give the same mean, sample std and n for every metric."""
    import math
    import re

    from decodebench.analysis import aggregate_experiment, read_table, write_table
    from decodebench.results import summarise

    out = tmp_path / "ar.json"
    proc = run_ar(tiny_config, out, limit=3, max_new_tokens=6)
    data = load_result(out)
    summary = data["summary"]
    assert summary == summarise(data["records"])
    assert len(summary) >= 10  # timing, tokens, memory ... every metric the records have
    printed = re.search(r"([0-9.]+) tokens/s, peak ([0-9.]+) MiB \(overhead ([0-9.]+) MiB\)", proc.stdout)
    assert printed, proc.stdout
    assert printed.group(1) == f"{summary['tokens_per_s']['mean']:.2f}"
    assert printed.group(2) == f"{summary['peak_memory_mib']['mean']:.1f}"
    assert printed.group(3) == f"{summary['peak_memory_overhead_mib']['mean']:.1f}"

    cfg = load_config(tiny_config)
    cfg["experiments"]["main"]["methods"] = {"ar": cfg["experiments"]["main"]["methods"]["ar"]}
    write_table(aggregate_experiment(cfg, "main", [data]), tmp_path / "main.csv")
    rows = read_table(tmp_path / "main.csv")
    rows = rows[rows["role"] == "dataset"]
    for metric, stat in summary.items():
        for statistic in ("mean", "std"):
            row = rows[(rows["metric"] == metric) & (rows["statistic"] == statistic)]
            assert len(row) == 1, (metric, statistic)
            value = row.iloc[0]["value"]
            if stat[statistic] is None:
                assert math.isnan(value), (metric, statistic)
            else:
                assert value == pytest.approx(stat[statistic], rel=1e-9), (metric, statistic)
            assert row.iloc[0]["n"] == stat["n"], metric
