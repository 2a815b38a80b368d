"""Importing third-party result files: the DynaTree adapter, its name grammar, the CLI, the config.

Tests marked `needs_data` read the DynaTree paper's published files from the shared checkout
(../shared/external/dynatree/results relative to the repository root); the project does not
ship them, so those tests skip where the checkout is absent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from decodebench import results
from decodebench.cli import main
from decodebench.config import Config, load_config, validate_config
from decodebench.importers import FORMATS, ImportFormatError, convert, source_files, write_results
from decodebench.importers.dynatree_paper import PHASE_SWITCHES, ParsedName, Unsupported, config_name, parse_method_name
from decodebench.layout import configured_results

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/external/dynatree/results"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"DynaTree result files not found at {DATA} "
                                "(third-party data, not shipped with the project)")


def source_records(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return data.get("all_results") or data["results"]


def names_in_files() -> list[str]:
    if not DATA.is_dir():
        return []
    return sorted({r["method"] for f in DATA.glob("*.json") for r in source_records(f) if "method" in r})


# Every method name occurring in the published files, with what it must parse to. A name added
# to or removed from the files, or a changed parse, fails a test below.
EXPECTED_NAMES = {
    "Baseline (AR)": ParsedName("ar", {}),
    "HF Assisted": ParsedName("hf_assisted", {}),
    "Linear K=4": ParsedName("linear", {"k": 4}),
    "Linear K=5": ParsedName("linear", {"k": 5}),
    "Linear K=6": ParsedName("linear", {"k": 6}),
    "Linear K=7": ParsedName("linear", {"k": 7}),
    "Linear Spec (K=5)": ParsedName("linear", {"k": 5}),
    "Linear Spec (K=8)": ParsedName("linear", {"k": 8}),
    "Tree V2 (D=4, B=2, t=0.03)": ParsedName("tree", {"depth": 4, "branching": 2, "tau": 0.03}),
    "Tree V2 (D=4, B=2, t=0.05)": ParsedName("tree", {"depth": 4, "branching": 2, "tau": 0.05}),
    "Tree V2 (D=5, B=2, t=0.05)": ParsedName("tree", {"depth": 5, "branching": 2, "tau": 0.05}),
    "Tree V2 (D=6, B=2, t=0.05)": ParsedName("tree", {"depth": 6, "branching": 2, "tau": 0.05}),
    "Tree V2 (D=7, B=2, t=0.05)": ParsedName("tree", {"depth": 7, "branching": 2, "tau": 0.05}),
    "Fixed Tree (D=4, B=2)": ParsedName("tree", {"depth": 4, "branching": 2}),
    "Fixed Tree (D=5, B=2)": ParsedName("tree", {"depth": 5, "branching": 2}),
    "Fixed Tree (D=6, B=2)": ParsedName("tree", {"depth": 6, "branching": 2}),
    "Fixed Tree (D=7, B=2)": ParsedName("tree", {"depth": 7, "branching": 2}),
    "Fixed Tree (D=8, B=3, τ=0.1)": ParsedName("tree", {"depth": 8, "branching": 3, "tau": 0.1}),
    "Tree Spec Decode (D=5, B=2)": ParsedName("tree", {"depth": 5, "branching": 2}),
    "Tree Spec Decode (D=8, B=3, T=0.1)": ParsedName("tree", {"depth": 8, "branching": 3, "tau": 0.1}),
    "Phase 1: Adaptive Branch": ParsedName("dynatree", {}, 1),
    "Phase 2: + Dynamic Depth": ParsedName("dynatree", {}, 2),
    "Phase 3: + History Adjust": ParsedName("dynatree", {}, 3),
    "Adaptive Tree (Phase 3)": ParsedName("dynatree", {}, 3),
}
UNSUPPORTED_NAMES = ["Streaming K=5 cache=1024", "Streaming K=6 cache=512"]


# ------------------------------------------------------------------------------------------
# The method-name grammar


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_parser_on_the_literal_list(name):
    assert parse_method_name(name) == EXPECTED_NAMES[name]


@needs_data
@pytest.mark.parametrize("name", names_in_files())
def test_parser_on_every_name_in_the_files(name):
    if name in UNSUPPORTED_NAMES:
        with pytest.raises(Unsupported):
            parse_method_name(name)
    else:
        assert parse_method_name(name) == EXPECTED_NAMES[name]


@needs_data
def test_literal_list_is_exactly_the_names_in_the_files():
    assert set(names_in_files()) == set(EXPECTED_NAMES) | set(UNSUPPORTED_NAMES)


@pytest.mark.parametrize("name", ["Linear K=", "linear k=6", "Baseline(AR)", "Medusa (K=4)",
                                  "Tree V2 (D=6, B=2, t=)", "Phase 1: + History Adjust",
                                  "Phase 4: Adaptive Branch", "Adaptive Tree (Phase 3) ", "HF Assisted K=5"])
def test_parser_rejects_names_outside_the_grammar(name):
    with pytest.raises(ValueError, match="not in the dynatree grammar|phase 1 is"):
        parse_method_name(name)


def test_configuration_names_are_stable_and_readable():
    assert config_name("ar", {}) == "ar"
    assert config_name("linear", {"k": 6}) == "linear_k6"
    assert config_name("tree", {"depth": 6, "branching": 2, "tau": 0.05}) == "tree_d6_b2_tau0.05"
    assert config_name("tree", {"depth": 4, "branching": 2, "max_nodes": 256}) == "tree_d4_b2"
    assert config_name("dynatree", {"base_depth": 5, "max_depth": 8}, phase=3) == "dynatree_p3_d5-8"
    assert config_name("hf_assisted", {"num_assistant_tokens": 5}) == "hf_assisted"


# ------------------------------------------------------------------------------------------
# Synthetic files: conversion rules and malformed input


def paper_record(method: str, config: dict, **fields) -> dict:
    record = {"method": method, "experiment": "main", "config": config,
              "throughput_tps": 100.0, "throughput_std": 3.0, "speedup": 1.0,
              "ttft_ms": 20.0, "ttft_std": 2.0, "tpot_ms": 10.0, "tpot_std": 0.5, "total_time_ms": 0.0,
              "total_tokens_generated": config.get("max_new_tokens", 100), "tokens_per_round": 1.0,
              "acceptance_rate": 0.0, "avg_path_length": 0.0, "total_rounds": 100,
              "peak_memory_mb": 5800.0, "acceptance_std": 0.0, "path_length_std": 0.0}
    record.update(fields)
    return record


def paper_file(tmp_path: Path, records: list, name: str = "length__100.json", **info) -> Path:
    data = {"experiment_info": {"study": "x", "target_model": "/models/pythia-2.8b",
                                "draft_model": "/models/pythia-70m", "dataset": "WikiText-2",
                                "num_samples": 4, "warmup_runs": 2, **info},
            "all_results": records, "timestamp": "2026-01-06T11:05:36"}
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False))
    return path


def test_conversion_units_std_zeros_and_params(tmp_path):
    path = paper_file(tmp_path, [
        paper_record("Baseline (AR)", {"max_new_tokens": 100}),
        paper_record("Phase 1: Adaptive Branch",
                     {"phase": 1, "max_new_tokens": 100, "base_depth": 5, "max_depth": 8,
                      "high_conf_threshold": 0.9, "low_conf_threshold": 0.4, "min_branch": 1, "max_branch": 3},
                     throughput_tps=150.0, acceptance_rate=0.8, acceptance_std=0.1, total_rounds=20,
                     tokens_per_round=5.0),
    ])
    ar, dyn = convert("dynatree", path, "s").results
    for r in (ar, dyn):
        results.validate(r)
        assert r["kind"] == "imported" and r["records"] is None
        assert (r["experiment"], r["dataset"]["name"], r["dataset"]["label"]) == ("length", "wikitext", "WikiText-2")
        assert r["provenance"]["source_sha256"] == results.file_sha256(path)
        assert r["provenance"]["git_commit"] is None and r["environment"]["device_name"] is None
        assert r["protocol"]["max_new_tokens"] == 100 and r["protocol"]["warmups"] == 2
    assert (ar["method"]["name"], dyn["method"]["name"]) == ("ar_t100", "dynatree_p1_d5-8_t100")
    assert ar["models"]["draft"] is None and dyn["models"]["draft"]["name"] == "pythia-70m"
    assert dyn["method"]["params"] == {"base_depth": 5, "max_depth": 8, "high_conf_threshold": 0.9,
                                       "low_conf_threshold": 0.4, "min_branch": 1, "max_branch": 3,
                                       **PHASE_SWITCHES[1]}
    assert dyn["provenance"]["source_record"] == 1
    assert dyn["source_summary"]["throughput_tps"] == 150.0
    s = ar["summary"]
    # population std (ddof=0) over n=4 prompts -> sample std; ms -> s
    assert s["tokens_per_s"] == {"mean": 100.0, "std": 3.0 * math.sqrt(4 / 3), "n": 4}
    assert s["ttft_s"]["mean"] == pytest.approx(0.020) and s["ttft_s"]["std"] == pytest.approx(0.002 * math.sqrt(4 / 3))
    assert s["peak_memory_mib"] == {"mean": 5800.0, "std": None, "n": 1}
    # fields recorded as 0 are "not measured": left out and named in the notes
    assert "wall_time_s" not in s and "source_acceptance_rate" not in s
    assert "total_time_ms" in ar["provenance"]["notes"] and "acceptance_rate" in ar["provenance"]["notes"]
    assert dyn["summary"]["source_acceptance_rate"]["mean"] == 0.8
    assert "acceptance_rate" not in dyn["summary"]  # the source's definition is not ours
    assert "tau" in dyn["provenance"]["notes"]  # parameters the source does not state


def test_bad_json_names_the_file(tmp_path):
    path = tmp_path / "length__100.json"
    path.write_text('{"experiment_info": {')
    with pytest.raises(ImportFormatError, match=r"length__100\.json: not valid JSON"):
        convert("dynatree", path, "s")


def test_missing_field_names_file_record_and_field(tmp_path):
    bad = paper_record("Linear Spec (K=8)", {"max_new_tokens": 100, "K": 8})
    del bad["tpot_ms"]
    path = paper_file(tmp_path, [paper_record("Baseline (AR)", {"max_new_tokens": 100}), bad])
    with pytest.raises(ImportFormatError, match=r"length__100\.json record 1 \('Linear Spec \(K=8\)'\): field 'tpot_ms' is missing"):
        convert("dynatree", path, "s")


def test_unknown_method_name_is_an_error_naming_file_and_record(tmp_path):
    path = paper_file(tmp_path, [paper_record("Baseline (AR)", {"max_new_tokens": 100}),
                                 paper_record("Medusa (K=4)", {"max_new_tokens": 100})])
    with pytest.raises(ImportFormatError, match=r"length__100\.json record 1 \('Medusa \(K=4\)'\): method name"):
        convert("dynatree", path, "s")


@pytest.mark.parametrize("method,config,message", [
    ("Linear Spec (K=8)", {"max_new_tokens": 100, "K": 5}, "config.K is 5 but the name says k=8"),
    ("Phase 2: + Dynamic Depth", {"phase": 3, "max_new_tokens": 100}, "config.phase is 3"),
    ("Linear Spec (K=8)", {"max_new_tokens": 100, "temperature": 0.7}, "config.temperature: not a parameter"),
    ("Fixed Tree (D=4, B=2)", {"max_new_tokens": 100, "tree_depth": "4"}, "expected an integer"),
    ("Baseline (AR)", {"max_new_tokens": 200}, "file name says 100"),
    ("Phase 3: + History Adjust", {"phase": 3, "max_new_tokens": 100}, "does not state base_depth, max_depth"),
])
def test_record_that_contradicts_itself_is_an_error(tmp_path, method, config, message):
    path = paper_file(tmp_path, [paper_record(method, config)])
    with pytest.raises(ImportFormatError, match=r"record 0 .*" + message.replace("(", r"\(").replace(")", r"\)")):
        convert("dynatree", path, "s")


def test_file_outside_the_table_or_with_the_wrong_dataset(tmp_path):
    with pytest.raises(ImportFormatError, match="not in the dynatree file table"):
        convert("dynatree", paper_file(tmp_path, [], name="results.json"), "s")
    with pytest.raises(ImportFormatError, match="maps this file to 'pg19'"):
        convert("dynatree", paper_file(tmp_path, [], name="adaptive__pg19__pg19_benchmark.json"), "s")
    with pytest.raises(ImportFormatError, match="unknown import format"):
        convert("helm", paper_file(tmp_path, []), "s")


def test_known_but_unsupported_method_is_skipped_with_its_reason(tmp_path):
    path = paper_file(tmp_path, [paper_record("Baseline (AR)", {"max_new_tokens": 100}),
                                 paper_record("Streaming K=5 cache=1024", {"max_new_tokens": 100})])
    c = convert("dynatree", path, "s")
    assert [r["method"]["name"] for r in c.results] == ["ar_t100"]
    assert len(c.skipped) == 1 and "record 1 ('Streaming K=5 cache=1024')" in c.skipped[0]


def test_sweep_layout(tmp_path):
    row = {"depth": 3, "branch": 2, "threshold": 0.05, "throughput": 150.0, "speedup": 1.5,
           "avg_path_length": 4.0, "acceptance_rate": 0.8, "total_rounds": 300.0, "ttft": 0.03,
           "tpot": 0.006, "baseline_throughput": 100.0, "success": True}
    data = {"config": {"target_model": "/m/pythia-2.8b", "draft_model": "/m/pythia-70m",
                       "dataset": "WikiText-2 (ModelScope)", "max_new_tokens": 1500, "num_runs": 2,
                       "num_prompts": 10, "timestamp": "20260106_043014"},
            "baseline": {"throughput": 100.0}, "prompts": [],
            "results": [row, {**row, "depth": 4, "success": False}], "best_overall": row}
    path = tmp_path / "adaptive__fixed_tree_sweep__fixed_tree_sweep_20260106_043014.json"
    path.write_text(json.dumps(data))
    c = convert("dynatree", path, "s")
    tree, ar = c.results
    assert (tree["method"]["name"], tree["method"]["params"]) == (
        "tree_d3_b2_tau0.05", {"depth": 3, "branching": 2, "tau": 0.05})
    assert tree["summary"]["ttft_s"] == {"mean": 0.03, "std": None, "n": None}  # already seconds
    assert (ar["method"]["name"], ar["provenance"]["source_record"]) == ("ar", None)
    assert ar["summary"]["tokens_per_s"]["mean"] == 100.0
    assert ar["provenance"]["finished_at"] == "2026-01-06T04:30:14"
    assert len(c.skipped) == 1 and "record 1: success is False" in c.skipped[0]
    path.write_text(json.dumps({**data, "results": [{**row, "baseline_throughput": 99.0}]}))
    with pytest.raises(ImportFormatError, match="record 0: baseline_throughput differs"):
        convert("dynatree", path, "s")


def test_write_never_silently_replaces(tmp_path):
    path = paper_file(tmp_path, [paper_record("Baseline (AR)", {"max_new_tokens": 100})])
    out = tmp_path / "out"
    first = convert("dynatree", path, "s").results
    assert [s for _, s in write_results(first, out)] == ["written"]
    assert results.load_result(out / "length/wikitext/ar_t100.json") == first[0]
    assert [s for _, s in write_results(first, out)] == ["unchanged"]
    changed = paper_file(tmp_path, [paper_record("Baseline (AR)", {"max_new_tokens": 100}, throughput_tps=99.0)])
    second = convert("dynatree", changed, "s").results
    with pytest.raises(ImportFormatError, match="exists with different content"):
        write_results(second, out)
    assert results.load_result(out / "length/wikitext/ar_t100.json")["summary"]["tokens_per_s"]["mean"] == 100.0
    assert [s for _, s in write_results(second, out, force=True)] == ["replaced"]
    with pytest.raises(ImportFormatError, match="two source records map to this result"):
        write_results(first + second, tmp_path / "other")
    assert not (tmp_path / "other").exists()  # refused before writing anything


def test_cli_import(tmp_path, capsys):
    path = paper_file(tmp_path, [paper_record("Baseline (AR)", {"max_new_tokens": 100})])
    out = tmp_path / "raw"
    assert main(["import", "--format", "dynatree", str(path), "--out", str(out), "--study", "paper"]) == 0
    assert "written: " in capsys.readouterr().out
    assert results.load_result(out / "length/wikitext/ar_t100.json")["study"] == "paper"
    assert main(["import", "--format", "dynatree", str(tmp_path / "length__5.json"), "--out", str(out)]) == 1  # a failure
    assert "cannot read" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# The published files


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """All shared files imported once through the CLI; returns the output root."""
    out = tmp_path_factory.mktemp("dynatree") / "results" / "raw" / "dynatree"  # as the pipeline lays it out
    files = sorted(str(f) for f in DATA.glob("*.json"))
    assert main(["import", "--format", "dynatree", *files, "--out", str(out)]) == 0
    return out


def load(out: Path, experiment: str, dataset: str, method: str) -> dict:
    return results.load_result(out / experiment / dataset / f"{method}.json")


@needs_data
def test_every_shared_file_imports_into_valid_results(imported):
    files = sorted(imported.rglob("*.json"))
    assert len(files) > 200
    by_source = {}
    for f in files:
        r = results.load_result(f)  # validates
        assert r["kind"] == "imported" and r["dataset"]["source_kind"] == "imported"
        assert Path(r["provenance"]["source_file"]).name == r["provenance"]["source_file"]
        by_source.setdefault(r["provenance"]["source_file"], []).append(r)
    assert set(by_source) == {f.name for f in DATA.glob("*.json")}
    for name, rs in by_source.items():  # provenance points at the record the numbers came from
        records = source_records(DATA / name)
        for r in rs:
            i = r["provenance"]["source_record"]
            assert r["provenance"]["source_sha256"] == results.file_sha256(DATA / name)
            if i is not None:
                assert r["source_summary"] == records[i]
                assert r["method"]["source_name"] == records[i].get("method")


MEMORY_ROWS = [  # (our method configuration, the source's name for it)
    ("ar", "Baseline (AR)"), ("linear_k6", "Linear K=6"), ("linear_k7", "Linear K=7"),
    ("tree_d6_b2_tau0.05", "Tree V2 (D=6, B=2, t=0.05)"), ("tree_d7_b2_tau0.05", "Tree V2 (D=7, B=2, t=0.05)"),
    ("hf_assisted", "HF Assisted"),
]


def memory_table(pg19: dict, wikitext: dict) -> dict:
    """The earlier paper's memory table: PG-19 MB, WikiText-2 MB, their mean, change vs AR in %."""
    rows = {}
    for method in pg19:
        avg = (pg19[method] + wikitext[method]) / 2
        rows[method] = {"pg19": pg19[method], "wikitext": wikitext[method], "avg": avg}
    base = rows["ar"]["avg"]
    for row in rows.values():
        row["change_pct"] = (row["avg"] - base) / base * 100
    return rows


@needs_data
def test_memory_table_is_reproduced_exactly_from_the_imported_results(imported):
    source = {ds: {r["method"]: r["peak_memory_mb"] for r in source_records(DATA / f"memory_{ds}.json")}
              for ds in ("pg19", "wikitext")}
    expected = memory_table(*({ours: source[ds][theirs] for ours, theirs in MEMORY_ROWS}
                              for ds in ("pg19", "wikitext")))
    ours = memory_table(*({m: load(imported, "memory", ds, m)["summary"]["peak_memory_mib"]["mean"]
                           for m, _ in MEMORY_ROWS} for ds in ("pg19", "wikitext")))
    assert ours == expected  # exact: no rounding or unit change on the way
    assert len(ours) == 6 and all(math.isfinite(v) for row in ours.values() for v in row.values())


@needs_data
@pytest.mark.parametrize("dataset,source_file", [("wikitext", "length__1500_2.json"),
                                                 ("pg19", "adaptive__pg19__pg19_benchmark_D8B3.json")])
def test_main_table_throughput_and_speedup_match_the_source(imported, dataset, source_file):
    records = source_records(DATA / source_file)
    rs = [results.load_result(f) for f in (imported / "main" / dataset).glob("*.json")]
    assert len(rs) == len(records)
    ar = next(r for r in rs if r["method"]["id"] == "ar")["summary"]["tokens_per_s"]["mean"]
    for r in rs:
        src = records[r["provenance"]["source_record"]]
        tps = r["summary"]["tokens_per_s"]
        assert tps["mean"] == src["throughput_tps"] and tps["n"] == 10
        assert tps["std"] == pytest.approx(src["throughput_std"] * math.sqrt(10 / 9), rel=1e-12)
        assert tps["mean"] / ar == pytest.approx(src["speedup"], rel=1e-12)


# ------------------------------------------------------------------------------------------
# The pipeline config


def test_import_config_validates_and_the_schema_keeps_measured_configs_strict(tmp_path):
    cfg = load_config(REPO / "config/dynatree.yaml")
    assert cfg["import"]["format"] in FORMATS
    assert cfg["import"]["path"] == "../shared/external/dynatree/results"
    load_config(REPO / "config/config.yaml")
    measured = yaml.safe_load((REPO / "config/config.yaml").read_text())
    del measured["device"]
    with pytest.raises(ValueError, match="'device' is a required property"):
        validate_config(measured)
    imported_cfg = yaml.safe_load((REPO / "config/dynatree.yaml").read_text())
    imported_cfg["import"]["fromat"] = "dynatree"
    with pytest.raises(ValueError, match="fromat"):
        validate_config(imported_cfg)


def test_schema_format_enum_matches_the_registry():
    from decodebench.config import config_schema
    assert set(config_schema()["properties"]["import"]["properties"]["format"]["enum"]) == set(FORMATS)


@needs_data
def test_every_configured_result_is_imported_with_its_method(imported):
    cfg = load_config(REPO / "config/dynatree.yaml")
    files = source_files(cfg, REPO)
    assert [f.resolve() for f in files] == sorted(f.resolve() for f in DATA.glob("*.json"))
    expected = configured_results(cfg)
    assert len(expected) == len(set(expected)) > 150
    for rel in expected:
        r = results.load_result(imported / rel)
        experiment, dataset, method = rel.parts
        spec = cfg["experiments"][experiment]["methods"][method[:-len(".json")]]
        assert (r["experiment"], r["dataset"]["name"], r["method"]["id"]) == (experiment, dataset, spec["method"])
    # a configuration restricted to one dataset is not expected (nor imported) for the other
    assert Path("main/pg19/linear_k8.json") not in expected and not (imported / "main/pg19/linear_k8.json").exists()


def test_configured_results_honours_method_datasets_and_names_bad_ones():
    from decodebench.config import ConfigError, check_references

    cfg = Config({"datasets": {"a": {}, "b": {}}, "experiments": {
        "main": {"datasets": ["a", "b"], "baseline": "ar",
                 "methods": {"ar": {"method": "ar"}, "x": {"method": "linear", "datasets": ["b"]}}},
        "pl": {"datasets": ["a_p10", "a_p20"], "prompt_lengths": [10, 20], "baseline": "ar",
               "methods": {"ar": {"method": "ar", "datasets": ["a"]}}}}}, "c.yaml")
    cfg["datasets"].update({"a_p10": {}, "a_p20": {}})
    check_references(cfg, "c.yaml")
    assert [str(p) for p in configured_results(cfg)] == [
        "main/a/ar.json", "main/b/ar.json", "main/b/x.json", "pl/a_p10/ar.json", "pl/a_p20/ar.json"]
    cfg["experiments"]["main"]["methods"]["x"]["datasets"] = ["c"]
    with pytest.raises(ConfigError, match=r"(?s)c.yaml.*experiments.main.methods.x.datasets: c not among"):
        check_references(cfg, "c.yaml")


def test_source_files_errors_name_the_config_key(tmp_path):
    cfg = Config({"import": {"format": "dynatree", "path": "nowhere"}}, "c.yaml")
    with pytest.raises(ImportFormatError, match="c.yaml: import.path"):
        source_files(cfg, tmp_path)
    (tmp_path / "d").mkdir()
    cfg["import"] = {"format": "dynatree", "path": "d", "files": ["memory_pg19.json"]}
    with pytest.raises(ImportFormatError, match="c.yaml: import.files: not found"):
        source_files(cfg, tmp_path)


@needs_data
def test_check_on_the_published_files_finds_their_known_problems(imported):
    """What check reports on the DynaTree data (the README quotes it): the ablation file's stored
    speedups of 1.0 contradict its throughputs, four AR baselines are unstable (CV 0.19-0.23),
    and rules that need per-prompt data are not applicable, never passed."""
    from decodebench.check import check_paths
    from decodebench.config import load_config

    cfg = load_config(REPO / "config" / "dynatree.yaml")
    report = check_paths([imported], cfg=cfg, regenerate_prompts=False)
    by_rule = {}
    for f in report.findings:
        by_rule.setdefault((f.rule, f.severity), []).append(f)
    wrong_speedups = by_rule[("arithmetic", "acknowledged")]
    assert len(wrong_speedups) == 13 and all("/ablation/" in f.file for f in wrong_speedups)
    assert "found 1.000" in wrong_speedups[0].message
    unstable = by_rule[("baseline-stability", "acknowledged")]
    assert len(unstable) == 4 and any("main/pg19/ar.json" in f.file for f in unstable)
    assert len(by_rule[("lossless", "not-applicable")]) > 0
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
    # Without the config's acknowledgements they are errors.
    bare = check_paths([imported], cfg={**cfg, "check": {}}, regenerate_prompts=False)
    assert bare.exit_code() == 1 and bare.count("error") == 18
