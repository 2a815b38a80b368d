"""check rules on how a measurement was made: contention, the memory model, and the
baseline-stability rule telling an unstable baseline from prompt-to-prompt variation."""

from __future__ import annotations

import random

from decodebench.check import check_paths
from decodebench.check.synthetic import make_result, mutate, resummarise, write_results

AR = "results/raw/synthetic/main/gutenberg/ar.json"
LIN = "results/raw/synthetic/main/gutenberg/linear_k4.json"
QUIET = {"other_cpu_fraction": 0.01, "steal_fraction": 0.0, "load_1m_before": 0.5, "load_1m_after": 0.6,
         "procs_running_before": 2, "procs_running_after": 2, "cpu_time_s": 1.0, "cpu_utilisation": 1.9,
         "cpu_mhz": 2400.0}
# SmolLM2-135M's sizes (models.model_shape)
SMOLLM2 = {"layers": 30, "hidden": 576, "intermediate": 1536, "heads": 9, "kv_heads": 3, "head_dim": 64,
           "vocab": 49152}


def run(tmp_path, results):
    write_results(tmp_path, results)
    return check_paths([tmp_path / "results" / "raw"], root=tmp_path)


def findings(report, rule):
    return [f for f in report.findings if f.rule == rule and f.severity != "not-applicable"]


def with_telemetry(busy_records=()):
    def fn(r):
        for i, rec in enumerate(r["records"]):
            rec["telemetry"] = dict(QUIET, other_cpu_fraction=0.45 if i in busy_records else 0.01)
    return fn


def test_contention_warns_naming_the_busy_measurements_and_the_command(tmp_path):
    ar = mutate(make_result("ar"), with_telemetry())
    lin = mutate(make_result("linear_k4", "linear", tokens_per_s=32.0), with_telemetry(busy_records=(1, 4)))
    report = run(tmp_path, [ar, lin])
    (f,) = findings(report, "contention")
    assert (f.file, f.severity) == (LIN, "warning")
    assert "2 of 8 measurements ran on a busy machine" in f.message and "records[1] (prompt 1" in f.message
    assert "other processes used 45% of the CPUs (limit 10%)" in f.message
    assert report.checked[(AR, "contention")] == "passed"
    assert report.remeasure_files() == [LIN]
    assert f"--forcerun {LIN}" in report.text()


def test_contention_without_telemetry_is_not_applicable_never_passed(tmp_path):
    report = run(tmp_path, [make_result("ar")])
    assert report.checked[(AR, "contention")] == "not-applicable"


def test_acknowledged_findings_leave_the_remeasure_command(tmp_path):
    lin = mutate(make_result("linear_k4", "linear", tokens_per_s=32.0), with_telemetry(busy_records=(1,)))
    report = run(tmp_path, [make_result("ar"), lin])
    report.acknowledge([{"rule": "contention", "reason": "a planted busy measurement, for this test"}])
    assert report.remeasure_command() is None


def with_shape(overhead_mib):
    def fn(r):
        r["models"]["target"]["shape"] = dict(SMOLLM2)
        r["environment"].update(memory_kind="process_rss", cpu_count=2)
        for rec in r["records"]:
            rec["peak_memory_overhead_mib"] = overhead_mib
    return fn


def test_memory_model_passes_a_plausible_overhead_and_fails_all_prompt_logits(tmp_path):
    # SmolLM2-135M, float32, 128 prompt + 32 new tokens: AR's modelled overhead ~11.6 MiB; the
    # embedded run measured 18.5-20.2 MiB. The logits of all 128 prompt positions add
    # 128 x 49152 x 4 B = 24 MiB (the prefill without logits_to_keep=1).
    report = run(tmp_path, [mutate(make_result("ar"), with_shape(19.0))])
    assert report.checked[(AR, "memory-model")] == "passed", report.text()
    report = run(tmp_path, [mutate(make_result("ar"), with_shape(19.0 + 24.0))])
    (f,) = findings(report, "memory-model")
    assert f.severity == "error" and "far above the analytic model" in f.message and "kv_target" in f.message
    # below the KV cache the generation must hold: the peak was missed
    report = run(tmp_path, [mutate(make_result("ar"), with_shape(2.0))])
    (f,) = findings(report, "memory-model")
    assert f.severity == "warning" and "was the peak missed" in f.message


def test_memory_model_needs_the_shape(tmp_path):
    report = run(tmp_path, [make_result("ar")])
    assert report.checked[(AR, "memory-model")] == "not-applicable"


def repeated(tps_by_prompt_repeat):
    """AR and a 1.5x-faster linear measured on the same (prompt, repeat) pairs."""
    results = []
    for name, factor in (("ar", 1.0), ("linear_k4", 1.5)):
        res = make_result(name, None if name == "ar" else "linear", num_prompts=len(tps_by_prompt_repeat))
        template = res["records"]
        records = []
        for i, reps in enumerate(tps_by_prompt_repeat):
            for rep, tps in enumerate(reps):
                rec = dict(template[i], repeat=rep)
                rec["wall_time_s"] = rec["new_tokens"] / (tps * factor)
                rec["tokens_per_s"] = tps * factor
                rec["ttft_s"] = rec["wall_time_s"] * 0.08
                rec["tpot_s"] = (rec["wall_time_s"] - rec["ttft_s"]) / (rec["new_tokens"] - 1)
                records.append(rec)
        res["records"] = records
        res["protocol"]["repeats"] = max(len(r) for r in tps_by_prompt_repeat)
        results.append(resummarise(res))
    return results


def test_prompts_that_differ_with_agreeing_repeats_are_not_an_unstable_baseline(tmp_path):
    rng = random.Random(0)
    levels = [10.0, 20.0, 30.0, 15.0]  # CV across prompts ~0.45
    report = run(tmp_path, repeated([[x * (1 + 0.01 * rng.gauss(0, 1)) for _ in range(3)] for x in levels]))
    assert not findings(report, "baseline-stability"), report.text()


def test_repeats_that_disagree_are_an_unstable_baseline(tmp_path):
    report = run(tmp_path, repeated([[10.0, 20.0, 14.0], [10.0, 19.0, 13.0], [11.0, 21.0, 12.0]]))
    (f,) = findings(report, "baseline-stability")
    assert f.severity == "error" and "its repeats of the same prompt disagree" in f.message
    assert report.remeasure_files() == [AR]


def test_one_measurement_per_prompt_with_precise_paired_speedups_is_a_warning(tmp_path):
    # AR varies 10..30 tokens/s across prompts, the method is exactly 1.5x on every one
    report = run(tmp_path, repeated([[10.0], [20.0], [30.0], [15.0]]))
    (f,) = findings(report, "baseline-stability")
    assert f.severity == "warning" and "linear_k4 (1.50x [1.50, 1.50])" in f.message, f.message


# --- identity ---------------------------------------------------------------------------------

def test_a_result_in_the_wrong_place_or_claiming_another_job_is_an_error(tmp_path):
    from decodebench.check.synthetic import result_path

    lin = make_result("linear_k4", "linear", tokens_per_s=32.0)
    lin["provenance"]["job"] = {"study": "synthetic", "experiment": "main", "dataset": "gutenberg",
                                "method": "tree", "params": {"k": 4}}
    write_results(tmp_path, [make_result("ar")])
    path = result_path(tmp_path, make_result("ar")).parent / "dynatree.json"  # another configuration's file
    path.write_text(__import__("json").dumps(lin))
    report = check_paths([tmp_path / "results" / "raw"], root=tmp_path)
    messages = [f.message for f in findings(report, "identity")]
    assert any("the path says method 'dynatree', the file says 'linear_k4'" in m for m in messages), messages
    assert any("provenance.job.method is 'tree' but the result says 'linear'" in m for m in messages), messages


def test_a_dropped_prompt_or_repeat_and_a_duplicate_are_errors(tmp_path):
    ok = repeated([[10.0, 10.5], [20.0, 20.5]])
    report = run(tmp_path, ok)
    assert not findings(report, "identity"), report.text()
    missing_repeat = [mutate(r, lambda r: r["records"].pop(1)) for r in repeated([[10.0, 10.5], [20.0, 20.5]])]
    (f, _) = findings(run(tmp_path, missing_repeat), "identity")
    assert "prompt 0 has repeats [0] (expected 0..1" in f.message
    duplicate = [mutate(r, lambda r: r["records"].append(dict(r["records"][0]))) for r in
                 repeated([[10.0, 10.5], [20.0, 20.5]])]
    assert any("measured 2 times" in f.message for f in findings(run(tmp_path, duplicate), "identity"))


def test_an_imported_result_in_a_measured_study_is_an_error(tmp_path):
    res = make_result("ar")
    res["kind"] = "imported"
    write_results(tmp_path, [res])
    cfg = {"study": "synthetic", "experiments": {}}
    report = check_paths([tmp_path / "results" / "raw"], cfg=cfg, root=tmp_path, regenerate_prompts=False)
    assert any("kind is 'imported' in a study whose config is measured" in f.message
               for f in findings(report, "identity")), report.text()


def test_memory_model_is_not_applicable_without_a_warm_up(tmp_path):
    def no_warmup(r):
        with_shape(60.0)(r)  # would be far above the model
        r["protocol"]["warmups"] = 0
    report = run(tmp_path, [mutate(make_result("ar"), no_warmup)])
    assert report.checked[(AR, "memory-model")] == "not-applicable"
    assert any("no warm-up" in f.message for f in report.findings if f.rule == "memory-model")


def test_memory_model_follows_the_cache_a_method_keeps():
    """A preallocated KVCache (ar, linear, tree, dynatree) has no concatenation transient, and on
    CUDA its whole capacity is allocated; transformers' own loops grow a DynamicCache."""
    from decodebench.memory_model import expected_overhead

    def expected(name, method_id, memory_kind, params=None):
        r = make_result(name, method_id)
        r["models"]["target"]["shape"] = dict(SMOLLM2)
        r["models"]["draft"] = None
        r["environment"]["memory_kind"] = memory_kind
        r["method"]["params"] = params or {}
        return r, expected_overhead(r, r["records"][0])

    per_position = 2 * SMOLLM2["layers"] * SMOLLM2["kv_heads"] * SMOLLM2["head_dim"] * 4  # float32
    r, ar = expected("ar", "ar", "process_rss")
    rec = r["records"][0]
    assert ar.components["kv_growth"] == 0
    assert ar.components["kv_target"] == per_position * (rec["prompt_tokens"] + rec["new_tokens"])
    _, hf = expected("hf", "hf_assisted", "process_rss")
    assert hf.components["kv_growth"] > 0
    r, tree = expected("dt", "dynatree", "cuda_allocated", {"max_nodes": 40})
    capacity = rec["prompt_tokens"] + r["protocol"]["max_new_tokens"] + 41  # the root and 40 nodes
    assert tree.components["kv_target"] == per_position * capacity


def test_memory_model_charges_padded_tree_widths():
    """With padded levels every round verifies the padded width and feeds the draft every slot
    of the levels below the last, whatever the tree's live size."""
    from decodebench.memory_model import expected_overhead

    def expected(memory_kind, padded):
        r = make_result("tree", "tree")
        r["models"]["target"]["shape"] = dict(SMOLLM2)
        r["models"]["draft"] = {"shape": dict(SMOLLM2)}
        r["environment"]["memory_kind"] = memory_kind
        r["method"]["params"] = {"depth": 4, "branching": 2, "max_nodes": 64, "padded": padded}
        rec = r["records"][0]
        rec["proposed_per_round"] = [5] * len(rec.get("proposed_per_round") or [1])
        return r, rec, expected_overhead(r, rec)

    per_position = 2 * SMOLLM2["layers"] * SMOLLM2["kv_heads"] * SMOLLM2["head_dim"] * 4  # float32
    r, rec, read = expected("process_rss", False)
    _, _, padded = expected("process_rss", True)
    touched = rec["prompt_tokens"] + rec["new_tokens"]
    assert read.components["kv_target"] == per_position * (touched + 6)  # the tree's 5 nodes and the root
    assert padded.components["kv_target"] == per_position * (touched + 31)  # 1 + 2 + 4 + 8 + 16 slots
    assert padded.components["kv_draft"] == per_position * (touched + 14)  # levels 1-3 fed whole
    _, _, allocated = expected("cuda_allocated", True)
    whole = rec["prompt_tokens"] + r["protocol"]["max_new_tokens"]
    assert allocated.components["kv_target"] == per_position * (whole + 31)
    assert allocated.components["kv_draft"] == per_position * (whole + 14)
