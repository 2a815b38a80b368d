"""The broken-fixture corpus of `decodebench check`: one valid base (AR + a lossless linear
draft, synthetic), small mutations, and for each the exact (file, rule, severity) set expected
to fire. Not-applicable findings are not "firing" and are asserted separately."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from decodebench.check import check_paths
from decodebench.check.synthetic import make_result, mutate, write_results
from decodebench.results import ids_sha256

FIXTURES = Path(__file__).parent / "check_fixtures"
AR = "results/raw/synthetic/main/gutenberg/ar.json"
LIN = "results/raw/synthetic/main/gutenberg/linear_k4.json"


def base() -> dict[str, dict]:
    return {"ar": make_result("ar"), "linear_k4": make_result("linear_k4", "linear", tokens_per_s=32.0)}


def fired(report) -> set[tuple[str, str, str]]:
    return {(f.file.split(":")[0], f.rule, f.severity) for f in report.findings if f.severity != "not-applicable"}


def run(tmp_path, results, **kw):
    write_results(tmp_path, results)
    return check_paths([tmp_path / "results" / "raw"], root=tmp_path, **kw)


# --- mutations (each returns the list of results to write) -------------------------------

def on(name, fn, summary=True):
    def build():
        b = base()
        b[name] = mutate(b[name], fn, summary=summary)
        return list(b.values())
    return build


def on_both(fn):
    def build():
        return [mutate(r, fn) for r in base().values()]
    return build


def set_record(i, **fields):
    def fn(r):
        r["records"][i].update(fields)
    return fn


def nan_wall(r):
    r["records"][0]["wall_time_s"] = float("nan")


def drop_dtype(r):
    del r["environment"]["dtype"]


def failed_last_prompt(r):
    r["records"] = r["records"][:-1]
    r["errors"] = [{"prompt_index": 7, "repeat": 0, "message": "OutOfMemoryError: CUDA out of memory"}]
    r["protocol"]["prompts_measured"] = 7


def zero_peak(r):  # the seed paper: peak read after the tensors were freed
    for rec in r["records"]:
        rec["peak_memory_mib"] = rec["peak_memory_overhead_mib"] = 0.0


def overhead_above_total(r):
    r["records"][3]["peak_memory_overhead_mib"] = r["records"][3]["peak_memory_mib"] + 1


def memory_in_bytes(r):
    r["records"][0]["peak_memory_mib"] *= 1024 ** 2


def wrong_tokens_per_s(r):
    r["records"][2]["tokens_per_s"] *= 1.1


def population_std(r):
    import numpy as np

    r["summary"]["tokens_per_s"]["std"] = float(np.std([x["tokens_per_s"] for x in r["records"]]))


def short_generation(r):  # 30 of 32 tokens with EOS disabled, everything else consistent
    rec = r["records"][1]
    rec["new_tokens"] = 30
    rec["tokens_per_s"] = 30 / rec["wall_time_s"]
    rec["tpot_s"] = (rec["wall_time_s"] - rec["ttft_s"]) / 29


def acceptance_above_one(r):  # bonus token counted as accepted: consistent arithmetic, wrong definition
    for rec in r["records"]:
        rec["accepted_per_round"] = [p + 1 for p in rec["proposed_per_round"]]
        rec["draft_tokens_accepted"] = sum(rec["accepted_per_round"])
        rec["acceptance_rate"] = rec["draft_tokens_accepted"] / rec["draft_tokens_proposed"]
        rec["tokens_per_round"] = rec["draft_tokens_accepted"] / rec["rounds"] + 1


def round_dropped_from_lists(r):  # a round left out of the per-round lists (not of the totals)
    rec = r["records"][2]
    for name in ("accepted_per_round", "proposed_per_round", "draft_time_per_round_s", "verify_time_per_round_s"):
        rec[name] = rec[name][:-1]


def per_round_not_the_total(r):  # the per-round accepted counts of another generation
    rec = r["records"][1]
    rec["accepted_per_round"] = [0] + rec["accepted_per_round"][1:]


def phases_longer_than_the_generation(r):  # phase clocks not stopped, or summed over prompts
    for rec in r["records"][3:]:
        rec["verify_time_s"] = rec["wall_time_s"] * 0.9
        rec["verify_time_per_round_s"] = [rec["verify_time_s"] / rec["rounds"]] * rec["rounds"]


def more_rounds_than_forwards(r):
    rec = r["records"][0]
    rec["target_forwards"] = rec["rounds"] - 1
    rec["tokens_per_target_forward"] = rec["new_tokens"] / rec["target_forwards"]


def ttft_outside_timing(r):
    rec = r["records"][0]
    rec["ttft_s"] = rec["wall_time_s"] * 1.25
    rec["tpot_s"] = (rec["wall_time_s"] - rec["ttft_s"]) / (rec["new_tokens"] - 1)


def diverging_outputs(r):
    """Prompts 2 and 5 diverge from AR at output position 3."""
    for i in (2, 5):
        ids = list(r["records"][i]["output_ids"])
        ids[3] = (ids[3] + 1) % 49152
        r["records"][i].update(output_ids=ids, output_sha256=ids_sha256(ids))


def diverging_unlocated(r):
    """A mismatch with nothing recorded to locate it (no output ids)."""
    for i in (2, 5):
        r["records"][i].update(output_ids=None, output_sha256=ids_sha256([1, 2, 3]))


def near_tie_at_3(r):
    """AR's top-2 margin at output position 3 of prompts 2 and 5 is a near-tie."""
    for i in (2, 5):
        r["records"][i]["ar_top2_margin"][3] = 0.01


def bf16(r):
    r["environment"]["dtype"] = "bfloat16"


def bf16_diverging(r):
    bf16(r)
    diverging_outputs(r)


def fp16(r):
    r["environment"]["dtype"] = "float16"


def fp16_diverging(r):
    fp16(r)
    diverging_outputs(r)


def field(path, value):
    def fn(r):
        d = r
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return fn


def claims_wikitext(r):  # the loader fell back to other text; the result still names WikiText
    r["dataset"].update(name="wikitext", loader="wikitext", source_kind="hub", label="WikiText-2")


def named_wikitext(r):
    r["dataset"]["name"] = "wikitext"


def seed_paper(r):
    zero_peak(r)
    acceptance_above_one(r)
    r["provenance"]["git_commit"] = None


WIKI_AR, WIKI_LIN = AR.replace("gutenberg", "wikitext"), LIN.replace("gutenberg", "wikitext")

CASES = {
    "schema-non-finite": (on("linear_k4", nan_wall, summary=False), {(LIN, "schema", "error")}),
    "schema-missing-field": (on("ar", drop_dtype), {(AR, "schema", "error")}),
    "errors-failed-prompt": (on("linear_k4", failed_last_prompt),
                             {(LIN, "errors", "error"), (LIN, "comparability", "error")}),
    "memory-zero-peak": (on("ar", zero_peak), {(AR, "memory", "error")}),
    "memory-overhead-above-total": (on("linear_k4", overhead_above_total), {(LIN, "memory", "error")}),
    "memory-bytes-not-mib": (on("linear_k4", memory_in_bytes), {(LIN, "memory", "error")}),
    "arithmetic-tokens-per-s": (on("linear_k4", wrong_tokens_per_s), {(LIN, "arithmetic", "error")}),
    "arithmetic-std-ddof0": (on("linear_k4", population_std, summary=False), {(LIN, "arithmetic", "error")}),
    "arithmetic-budget": (on("ar", short_generation), {(AR, "arithmetic", "error")}),
    "arithmetic-acceptance-recomputed": (on("linear_k4", set_record(1, acceptance_rate=0.9)),
                                         {(LIN, "arithmetic", "error")}),
    "definitions-acceptance-above-one": (on("linear_k4", acceptance_above_one),
                                         {(LIN, "definitions", "error"), (LIN, "relations", "error")}),
    "relations-round-missing": (on("linear_k4", round_dropped_from_lists), {(LIN, "relations", "error")}),
    "relations-per-round-sum": (on("linear_k4", per_round_not_the_total), {(LIN, "relations", "error")}),
    "relations-phases-above-wall": (on("linear_k4", phases_longer_than_the_generation),
                                    {(LIN, "relations", "error")}),
    "relations-rounds-above-forwards": (on("linear_k4", more_rounds_than_forwards), {(LIN, "relations", "error")}),
    "definitions-ttft-above-wall": (on("ar", ttft_outside_timing), {(AR, "definitions", "error")}),
    "lossless-fp32": (on("linear_k4", diverging_outputs), {(LIN, "lossless", "error")}),
    # a mismatch at a near-tie of AR's logits is a warning in any dtype; elsewhere an error in every dtype
    "lossless-bf16-tie": (lambda: [mutate(mutate(base()["ar"], bf16), near_tie_at_3),
                                   mutate(base()["linear_k4"], bf16_diverging)], {(LIN, "lossless", "warning")}),
    "lossless-bf16-bug": (lambda: [mutate(base()["ar"], bf16), mutate(base()["linear_k4"], bf16_diverging)],
                          {(LIN, "lossless", "error")}),
    "lossless-fp16-bug": (lambda: [mutate(base()["ar"], fp16), mutate(base()["linear_k4"], fp16_diverging)],
                          {(LIN, "lossless", "error")}),
    "lossless-unlocated": (on("linear_k4", diverging_unlocated), {(LIN, "lossless", "error")}),
    "comparability-warmups": (on("linear_k4", field(("protocol", "warmups"), 0)),
                              {(LIN, "comparability", "error")}),
    "comparability-dtype": (on("linear_k4", field(("environment", "dtype"), "float16")),
                            {(LIN, "comparability", "error")}),
    "comparability-overrides": (on("linear_k4", field(("protocol", "overrides"), {"max_new_tokens": 32})),
                                {(LIN, "comparability", "error")}),
    "comparability-library-version": (on("linear_k4", field(("environment", "transformers"), "4.56.0")),
                                      {(LIN, "comparability", "warning")}),
    "baseline-stability-slow-noisy": (lambda: [make_result("ar", tokens_per_s=12.0, cv=0.4),
                                               base()["linear_k4"]],
                                      {(AR, "baseline-stability", "error")}),
    "dataset-provenance-fallback": (on_both(claims_wikitext), {(WIKI_AR, "dataset-provenance", "error"),
                                                              (WIKI_LIN, "dataset-provenance", "error")}),
    "dataset-provenance-name": (on_both(named_wikitext), {(WIKI_AR, "dataset-provenance", "error"),
                                                         (WIKI_LIN, "dataset-provenance", "error")}),
    "dataset-provenance-unlabelled-embedded": (on("linear_k4", field(("dataset", "label"), "Gutenberg")),
                                               {(LIN, "dataset-provenance", "error")}),
    "provenance-no-commit": (on("linear_k4", field(("provenance", "git_commit"), None)),
                             {(LIN, "provenance", "error")}),
    "provenance-dirty": (on("linear_k4", field(("provenance", "git_dirty"), True)),
                         {(LIN, "provenance", "warning")}),
    "provenance-shared-node": (on("linear_k4", field(("provenance", "scheduler"),
                                                    {"name": "slurm", "job_id": "7", "node": "n1",
                                                     "oversubscribe": "OK"})),
                               {(LIN, "provenance", "warning")}),
    "provenance-no-device": (on_both(field(("environment", "device_name"), None)),
                             {(AR, "provenance", "error"), (LIN, "provenance", "error")}),
    # Realistic combinations.
    "seed-paper": (on("linear_k4", seed_paper), {(LIN, "memory", "error"), (LIN, "definitions", "error"),
                                                 (LIN, "relations", "error"), (LIN, "provenance", "error")}),
}


def test_clean_base_fires_nothing(tmp_path):
    report = run(tmp_path, list(base().values()))
    assert fired(report) == set(), report.text()
    assert report.exit_code() == 0
    # Not applicable is listed, never counted as passed: no config, no prompt file, no weights here.
    na = {(f.file, f.rule) for f in report.findings if f.severity == "not-applicable"}
    assert (AR, "staleness") in na
    assert report.status_counts()["not-applicable"] == len({k for k, v in report.checked.items()
                                                            if v == "not-applicable"})
    assert report.checked[(LIN, "lossless")] == "passed"
    assert report.checked[(LIN, "comparability")] == "passed"


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_fires_exactly_its_rule(tmp_path, name):
    build, expected = CASES[name]
    report = run(tmp_path, build())
    assert fired(report) == expected, report.text()
    assert report.exit_code() == (1 if any(s == "error" for *_, s in expected) else 0)


def test_messages_name_field_expected_and_found(tmp_path):
    report = run(tmp_path, CASES["comparability-warmups"][0]())
    (msg,) = [f.line() for f in report.findings if f.rule == "comparability"]
    assert msg.startswith(f"{LIN}: comparability: error: protocol.warmups differs from the baseline {AR}")
    assert "(expected 1, found 0)" in msg
    report = run(tmp_path, CASES["arithmetic-budget"][0]())
    (msg,) = [f.message for f in report.findings if f.rule == "arithmetic"]
    assert "records[1]" in msg and "(expected 32, found 30)" in msg


def test_relations_name_the_relation_the_record_and_the_numbers(tmp_path):
    report = run(tmp_path, CASES["relations-per-round-sum"][0]())
    (msg,) = [f.line() for f in report.findings if f.rule == "relations"]
    assert msg == (f"{LIN}: relations: error: sum of accepted_per_round equals draft_tokens_accepted: not so in "
                   f"records[1] (prompt 1, repeat 0) (expected 21, found 19)"), msg
    report = run(tmp_path, CASES["relations-phases-above-wall"][0]())
    (msg,) = [f.message for f in report.findings if f.rule == "relations"]
    assert "the phases fit in the wall time: not so in records[3] (prompt 3, repeat 0) and 4 more record(s)" in msg
    assert "expected draft_time_s + verify_time_s <= wall_time_s" in msg, msg


def test_baseline_stability_names_dependent_speedups(tmp_path):
    report = run(tmp_path, CASES["baseline-stability-slow-noisy"][0]())
    (f,) = [f for f in report.findings if f.rule == "baseline-stability"]
    assert "linear_k4 (3.06x [" in f.message and "expected CV <= 0.15" in f.message, f.message
    # the command that re-measures only this job, in the report
    assert report.remeasure_command().endswith(f"--forcerun {AR}")
    *_, command, signature = report.text().splitlines()
    assert command == f"re-measure the flagged jobs (only those): snakemake --cores all --forcerun {AR}"
    assert signature.startswith("decodebench check signature: ")
    # The threshold is configurable.
    report = check_paths([tmp_path / "results" / "raw"], root=tmp_path, cv_threshold=5.0)
    assert not [f for f in report.findings if f.rule == "baseline-stability"]


def test_baseline_stability_relative_to_other_baselines(tmp_path):
    results = []
    for i, d in enumerate(["d0", "d1", "d2", "d3"]):
        results.append(make_result("ar", dataset=d, cv=0.10 if d == "d3" else 0.01, seed=i))
        results.append(make_result("linear_k4", "linear", dataset=d, tokens_per_s=32.0, seed=i))
    report = run(tmp_path, results)
    assert fired(report) == {("results/raw/synthetic/main/d3/ar.json", "baseline-stability", "warning")}, \
        report.text()


def test_lossless_mismatch_rate_in_half_precision(tmp_path):
    report = run(tmp_path, CASES["lossless-bf16-tie"][0]())
    (f,) = [f for f in report.findings if f.rule == "lossless"]
    assert "2 of 8 generations (25%)" in f.message
    assert "position 3 margin 0.01" in f.message and "epsilon 0.25" in f.message
    report = run(tmp_path, CASES["lossless-fp16-bug"][0]())
    (f,) = [f for f in report.findings if f.rule == "lossless"]
    assert "output position 3, where AR's float32 top-2 margin is 2" in f.message, f.message


def test_baseline_from_config_not_from_method_id():
    """With a config of the same study, the experiment's named baseline is the reference
    (generation-length variants: the baseline variant with the same _t<N> suffix)."""
    from decodebench.check.groups import baseline_of
    from decodebench.check.per_result import Result

    group = [Result(f"{m}.json", make_result(m, mid)) for m, mid in
             [("ar_t32", "ar"), ("ar_t64", "ar"), ("linear_k4_t32", "linear"), ("linear_k4_t64", "linear")]]
    ar32, ar64, lin32, lin64 = group
    cfg = {"study": "synthetic", "experiments": {"main": {"baseline": "linear_k4", "generation_lengths": [32, 64]}}}
    assert baseline_of(ar64, group, cfg) is lin64 and baseline_of(ar32, group, cfg) is lin32
    assert baseline_of(lin64, group, None) is ar32  # same budget (32 here for every synthetic result)
    other = {"study": "another", "experiments": {}}
    assert baseline_of(lin64, group, other).data["method"]["id"] == "ar"


# --- imported results (literal fixtures) --------------------------------------------------

def imported(tmp_path, edit_eagle=None, edit_ar=None):
    dest = tmp_path / "results" / "raw" / "imported" / "eagle_table1" / "mtbench"
    dest.mkdir(parents=True)
    for name, edit in (("imported_ar.json", edit_ar), ("imported_eagle2.json", edit_eagle)):
        data = json.loads((FIXTURES / name).read_text())
        if edit:
            edit(data)
        (dest / f"{data['method']['name']}.json").write_text(json.dumps(data))
    return check_paths([tmp_path / "results" / "raw"], root=tmp_path)


IMP_AR = "results/raw/imported/eagle_table1/mtbench/ar.json"
IMP_TREE = "results/raw/imported/eagle_table1/mtbench/eagle2.json"


def test_imported_clean_checks_what_it_can(tmp_path):
    report = imported(tmp_path)
    assert fired(report) == set(), report.text()
    assert report.checked[(IMP_TREE, "arithmetic")] == "not-applicable"
    assert report.checked[(IMP_TREE, "lossless")] == "not-applicable"
    assert report.checked[(IMP_TREE, "definitions")] == "passed"  # summary acceptance rate in [0, 1]
    assert report.checked[(IMP_AR, "baseline-stability")] == "passed"  # CV from summary mean/std
    assert report.checked[(IMP_TREE, "comparability")] == "passed"


def test_imported_acceptance_above_one(tmp_path):
    report = imported(tmp_path, edit_eagle=lambda d: d["summary"]["acceptance_rate"].update(mean=1.3))
    assert fired(report) == {(IMP_TREE, "definitions", "error")}, report.text()


def test_imported_noisy_baseline_from_summary(tmp_path):
    report = imported(tmp_path, edit_ar=lambda d: d["summary"]["tokens_per_s"].update(std=9.0))
    assert fired(report) == {(IMP_AR, "baseline-stability", "error")}, report.text()
    (f,) = [f for f in report.findings if f.rule == "baseline-stability"]
    assert "eagle2 (3.76x)" in f.message


def test_imported_source_changed(tmp_path):
    src = tmp_path / "third_party" / "eagle_mtbench.jsonl"
    src.parent.mkdir()
    src.write_text('{"method": "EAGLE-2", "speed": 93.6}\n')
    report = imported(tmp_path)
    assert fired(report) == {(IMP_AR, "staleness", "error"), (IMP_TREE, "staleness", "error")}, report.text()


def test_imported_without_source_is_a_provenance_error(tmp_path):
    report = imported(tmp_path, edit_eagle=lambda d: d["provenance"].update(source_file=None))
    assert fired(report) == {(IMP_TREE, "provenance", "error")}, report.text()


# --- the command ----------------------------------------------------------------------------

def _snapshot(root: Path) -> dict:
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "decodebench.cli", "check", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_cli_exit_codes_json_strict_and_read_only(tmp_path):
    write_results(tmp_path, CASES["provenance-dirty"][0]())
    before = _snapshot(tmp_path)
    proc = _cli("results/raw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{LIN}: provenance: warning: measured from a dirty working tree" in proc.stdout
    assert _cli("results/raw", "--strict", cwd=tmp_path).returncode == 1
    out = json.loads(_cli("results/raw", "--json", cwd=tmp_path).stdout)
    assert out["counts"]["warning"] == 1 and out["exit_code"] == 0
    write_results(tmp_path, CASES["memory-zero-peak"][0]())
    proc = _cli(cwd=tmp_path)  # default: results/raw, paper/ and results/MANIFEST.json
    assert proc.returncode == 1 and f"{AR}: memory: error: peak_memory_mib not positive" in proc.stdout
    shutil.rmtree(tmp_path / "results" / "raw" / "synthetic")
    write_results(tmp_path, list(base().values()))
    before = _snapshot(tmp_path)
    _cli("results/raw", "--json", cwd=tmp_path)
    assert _snapshot(tmp_path) == before


def multi_sample(method, method_id, samples=2, extra=0, tokens_per_s=20.0):
    """A multi-sample result: num_samples x budget tokens per prompt (+ extra in record 0)."""
    def fn(r):
        r["protocol"]["num_samples"] = samples
        r["method"].update(lossless=False, greedy=False)
        for i, rec in enumerate(r["records"]):
            rec["new_tokens"] = samples * 32 + (extra if i == 0 else 0)
            rec["tokens_per_s"] = rec["new_tokens"] / rec["wall_time_s"]
            rec["tpot_s"] = (rec["wall_time_s"] - rec["ttft_s"]) / (rec["new_tokens"] - 1)
            rec["num_samples"] = samples
    return mutate(make_result(method, method_id, experiment="multi", tokens_per_s=tokens_per_s), fn)


MULTI_EAB = "results/raw/synthetic/multi/gutenberg/eab_cow.json"


def test_multi_sample_budget_is_an_upper_bound_and_baseline_is_naive(tmp_path):
    clean = [multi_sample("naive", "naive"), multi_sample("eab_cow", "eab_cow", tokens_per_s=30.0)]
    report = run(tmp_path, clean)
    assert fired(report) == set(), report.text()
    assert report.checked[(MULTI_EAB, "comparability")] == "passed"  # compared with naive
    over = [clean[0], multi_sample("eab_cow", "eab_cow", extra=1, tokens_per_s=30.0)]
    report = run(tmp_path, over)
    assert fired(report) == {(MULTI_EAB, "arithmetic", "error")}, report.text()
    (f,) = [f for f in report.findings if f.rule == "arithmetic"]
    assert "above num_samples x max_new_tokens" in f.message and "(expected <= 64, found 65)" in f.message
    other_samples = [clean[0], multi_sample("eab_cow", "eab_cow", samples=3, tokens_per_s=30.0)]
    report = run(tmp_path, other_samples)
    assert fired(report) == {(MULTI_EAB, "comparability", "error")}, report.text()
    assert any("protocol.num_samples differs" in f.message for f in report.findings)


def test_baselines_of_one_experiment_agree_across_datasets(tmp_path):
    results = [make_result(m, mid, dataset=d, dtype="float16" if d == "d1" else "float32",
                           tokens_per_s=32.0 if mid == "linear" else 20.0)
               for d in ("d0", "d1") for m, mid in (("ar", "ar"), ("linear_k4", "linear"))]
    report = run(tmp_path, results)
    assert fired(report) == {("results/raw/synthetic/main/d1/ar.json", "comparability", "error")}, report.text()
    msgs = [f.message for f in report.findings if f.rule == "comparability"]
    assert any(m.startswith("environment.dtype differs from the same experiment's baseline on another dataset")
               for m in msgs), msgs


def test_acknowledged_findings_are_listed_with_their_reason_and_do_not_fail():
    from decodebench.check.report import ACKNOWLEDGED, Report

    report = Report()
    for name in ("a", "b"):
        report.ran(f"results/raw/s/main/d/{name}.json", "baseline-stability")
        report.error(f"results/raw/s/main/d/{name}.json", "baseline-stability", "CV 0.2")
    report.error("paper/main.tex", "manuscript", "hand-typed number", line=3)
    report.acknowledge([{"rule": "baseline-stability", "files": "results/raw/s/*/*/a.json",
                         "reason": "published baseline"},
                        {"rule": "manuscript", "files": "paper/main.tex", "reason": "quoted from the source"}])
    by_file = {f.file: f for f in report.findings}
    assert by_file["results/raw/s/main/d/a.json"].severity == ACKNOWLEDGED
    assert "published baseline" in by_file["results/raw/s/main/d/a.json"].message
    assert by_file["results/raw/s/main/d/b.json"].severity == "error"  # the glob does not match b
    assert by_file["paper/main.tex:3"].severity == ACKNOWLEDGED  # a line-numbered finding matches its file
    assert report.exit_code() == 1  # b is still an error
    report.acknowledge([{"rule": "baseline-stability", "reason": "all of them"}])
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
    assert report.status_counts() == {"passed": 0, "error": 0, ACKNOWLEDGED: 3, "warning": 0, "not-applicable": 0}
    assert "3 acknowledged" in report.text()
