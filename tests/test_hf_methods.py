"""transformers' assisted generation and prompt lookup behind our interface: lossless, within the
budget, with per-round statistics; and every speculative method through `decodebench run`."""

import pytest
import yaml
from test_ar import PROMPTS, run_method
from test_linear import ARCHS, check_stats, encode, models, one_thread  # noqa: F401 (fixtures)

from decodebench.config import load_config
from decodebench.harness import run_job
from decodebench.methods import get_method
from decodebench.results import load_result

REPETITIVE = "To be, or not to be, to be, or not to be, to be"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("draft_kind", ["small", "self", "noisy"])
@pytest.mark.parametrize("params", [{"num_assistant_tokens": 1}, {"num_assistant_tokens": 4},
                                    {"num_assistant_tokens": 3, "schedule": "heuristic"}])
def test_hf_assisted_equals_ar(models, arch, draft_kind, params):
    target, drafts, tok = models[arch]
    draft = drafts[draft_kind]
    before = draft.generation_config.to_dict()
    for text in PROMPTS:
        ids = encode(tok, text)
        ar, _ = run_method("ar", target, ids, 20)
        out, m = run_method("hf_assisted", target, ids, 20, draft=draft, params=params)
        assert out.new_ids == ar.new_ids
        check_stats(out.stats, 20)
        assert 0 < m.ttft_s <= m.wall_time_s
        if draft_kind == "self" and params.get("schedule", "constant") == "constant":
            assert out.stats["acceptance_rate"] == 1.0
            assert out.stats["proposed_per_round"][0] == params["num_assistant_tokens"]
    assert draft.generation_config.to_dict() == before  # restored after every call


def test_hf_assisted_rounds_match_linear_with_the_same_k(models):
    """Same draft, same K, constant schedule: the two implementations make the same rounds."""
    target, drafts, tok = models["llama"]
    for text in PROMPTS:
        ids = encode(tok, text)
        hf, _ = run_method("hf_assisted", target, ids, 20, draft=drafts["noisy"], params={"num_assistant_tokens": 4})
        ours, _ = run_method("linear", target, ids, 20, draft=drafts["noisy"], params={"k": 4})
        assert hf.stats["accepted_per_round"] == ours.stats["accepted_per_round"]
        assert hf.stats["proposed_per_round"] == ours.stats["proposed_per_round"]


@pytest.mark.parametrize("method,draft_kind", [("hf_assisted", "noisy"), ("hf_assisted", "self"), ("pld", None)])
def test_eos_disabled_is_an_ordinary_token_and_enabled_stops(models, method, draft_kind):
    """With EOS disabled, an EOS id the models' configs name must not stop generation (as in AR);
    with it enabled, generation stops right after it."""
    target, drafts, tok = models["gpt_neox"]
    draft = drafts[draft_kind] if draft_kind else None
    ids = encode(tok, PROMPTS[0])
    full, _ = run_method("ar", target, ids, 16)
    stop = full.new_ids[5]
    configs = [target.generation_config] + ([draft.generation_config] if draft is not None else [])
    saved = [c.eos_token_id for c in configs]
    try:
        for c in configs:
            c.eos_token_id = stop
        out, _ = run_method(method, target, ids, 16, draft=draft)
        assert out.new_ids == full.new_ids and len(out.new_ids) == 16
        if draft_kind == "self":  # the draft does not stop drafting at the disabled EOS either
            assert set(out.stats["proposed_per_round"][:-1]) == {4}
        expected, _ = run_method("ar", target, ids, 16, eos={stop})
        out, _ = run_method(method, target, ids, 16, draft=draft, eos={stop})
        assert out.new_ids == expected.new_ids and out.new_ids[-1] == stop
        check_stats(out.stats, len(out.new_ids), last_round_cut=True)
    finally:
        for c, eos in zip(configs, saved):
            c.eos_token_id = eos


@pytest.mark.parametrize("method", ["hf_assisted", "pld"])
def test_budget_is_exact(models, method):
    target, drafts, tok = models["llama"]
    draft = drafts["self"] if method == "hf_assisted" else None
    ids = encode(tok, REPETITIVE)
    ar, _ = run_method("ar", target, ids, 9)
    for n in (1, 2, 6, 9):
        out, _ = run_method(method, target, ids, n, draft=draft)
        assert out.new_ids == ar.new_ids[:n]
        check_stats(out.stats, n, last_round_cut=method == "pld")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("params", [{}, {"num_tokens": 1, "max_matching_ngram_size": 1}, {"num_tokens": 3}])
def test_pld_equals_ar_and_records_rounds(models, arch, params):
    target, _, tok = models[arch]
    proposed = 0
    for text in PROMPTS + [REPETITIVE]:
        ids = encode(tok, text)
        ar, _ = run_method("ar", target, ids, 20)
        out, _ = run_method("pld", target, ids, 20, params=params)
        assert out.new_ids == ar.new_ids
        check_stats(out.stats, 20, last_round_cut=True)
        assert max(out.stats["proposed_per_round"]) <= params.get("num_tokens", 10)
        proposed += out.stats["draft_tokens_proposed"]
    assert proposed > 0  # the repetitive prompt offers n-gram matches


def test_params_are_validated():
    assert get_method("hf_assisted").resolve_params({}) == {"num_assistant_tokens": 4, "schedule": "constant",
                                                            "confidence_threshold": 0.0}
    assert get_method("pld").resolve_params({}) == {"num_tokens": 10, "max_matching_ngram_size": 2}
    with pytest.raises(ValueError, match="schedule"):
        get_method("hf_assisted").make_params({"schedule": "heuristic_transient"})
    with pytest.raises(ValueError, match="num_assistant_tokens"):
        get_method("hf_assisted").make_params({"num_assistant_tokens": 0})
    with pytest.raises(ValueError, match="num_tokens"):
        get_method("pld").make_params({"num_tokens": 0})


def test_speculative_methods_through_decodebench_run(tiny_config, tmp_path):
    """One result file per method from the harness: valid, lossless against AR, with statistics."""
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["experiments"]["main"]["methods"].update({
        "linear": {"method": "linear", "params": {"k": 3}},
        "hf_assisted": {"method": "hf_assisted"},
        "pld": {"method": "pld"},
    })
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cfg = load_config(tiny_config)
    results = {}
    for method in ("ar", "linear", "hf_assisted", "pld"):
        run_job(cfg, "main", "docs", method, tmp_path / f"{method}.json", progress=False)
        results[method] = load_result(tmp_path / f"{method}.json")  # validates against the schema
    ar_hashes = [r["output_sha256"] for r in results["ar"]["records"]]
    for method in ("linear", "hf_assisted", "pld"):
        data = results[method]
        assert data["method"]["lossless"] is True and not data["errors"]
        assert [r["output_sha256"] for r in data["records"]] == ar_hashes
        for r in data["records"]:
            assert r["new_tokens"] == 12
            own = r["new_tokens"] - r["draft_tokens_accepted"]  # the target's own token of each round
            assert own == r["rounds"] or (method == "pld" and own == r["rounds"] - 1)
            assert r["draft_time_s"] > 0 and r["verify_time_s"] > 0
            assert 0 < r["ttft_s"] <= r["wall_time_s"]
        for metric in ("rounds", "tokens_per_round", "draft_time_s", "verify_time_s"):
            assert data["summary"][metric]["n"] == 3
    assert results["linear"]["method"]["params"] == {"k": 3, "lookup": 0, "lookup_tokens": 10, "oracle_alpha": None}
    assert results["linear"]["models"]["draft"]["name"] == "tiny-llama-draft"
    assert results["pld"]["models"]["draft"] is None
