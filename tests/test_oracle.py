"""The oracle draft mode (methods.oracle): lossless, acceptance controlled by alpha, seeded."""

import pytest
import yaml
from test_ar import PROMPTS
from test_linear import one_thread  # noqa: F401 (fixture: one torch thread for tiny models)
from transformers import AutoModelForCausalLM, AutoTokenizer

from decodebench.config import load_config
from decodebench.harness import run_job
from decodebench.measurement import Tracker
from decodebench.methods import Budget, GenContext, counting_forwards, get_method
from decodebench.methods.oracle import greedy_reference
from decodebench.results import load_result

ARCHS = ["llama", "gpt_neox"]
NEW = 24


@pytest.fixture(scope="module")
def models(tiny_models):
    """Per arch: (target, the tiny separate draft, which agrees with the target rarely, tokenizer)."""
    def load(path):
        return AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").eval()

    return {arch: (load(tiny_models[arch]), load(tiny_models[f"{arch}_draft"]),
                   AutoTokenizer.from_pretrained(tiny_models[arch])) for arch in ARCHS}


def run(method_id, target, draft, ids, params, seed=0, eos=None, reference=True):
    spec = get_method(method_id)
    budget = Budget(NEW, frozenset(eos) if eos else None)
    oracle_ids = greedy_reference(target, ids, budget) if reference else None
    with Tracker("cpu").measure() as m:
        ctx = GenContext(target=target, draft=draft, prompt_ids=ids, budget=budget,
                         params=spec.make_params(params), clock=m, seed=seed, oracle_ids=oracle_ids)
        with counting_forwards(ctx):
            out = spec.generate(ctx)
    return out, ctx


def rounds(out):
    return out.stats["proposed_per_round"], out.stats["accepted_per_round"]


CASES = [("linear", {"k": 4}), ("tree", {"depth": 4, "branching": 2, "tau": 0.0}),
         ("dynatree", {"window": 2})]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method,params", CASES)
def test_lossless_with_the_oracle_on(models, arch, method, params):
    target, draft, tok = models[arch]
    for text in PROMPTS:
        ids = tok(text, return_tensors="pt").input_ids
        ar = greedy_reference(target, ids, Budget(NEW, None))
        for alpha in (0.5, 1.0):
            out, _ = run(method, target, draft, ids, {**params, "oracle_alpha": alpha})
            assert out.new_ids == ar, (method, alpha, text)
        stop = ar[6]  # EOS enabled: the reference ends at the first occurrence, drafts may run past it
        out, _ = run(method, target, draft, ids, {**params, "oracle_alpha": 0.7}, eos={stop})
        assert out.new_ids == ar[: ar.index(stop) + 1]


@pytest.mark.parametrize("arch", ARCHS)
def test_alpha_one_accepts_every_draft_while_the_draft_still_runs(models, arch):
    target, draft, tok = models[arch]
    ids = tok(PROMPTS[0], return_tensors="pt").input_ids
    plain, _ = run("linear", target, draft, ids, {"k": 4})
    assert plain.stats["acceptance_rate"] < 0.5  # a bad draft: what the oracle lifts
    out, ctx = run("linear", target, draft, ids, {"k": 4, "oracle_alpha": 1.0})
    assert out.stats["acceptance_rate"] == 1.0
    assert ctx.forward_counts["draft"].forwards == out.stats["draft_tokens_proposed"]  # one per proposal
    tree, _ = run("tree", target, draft, ids, {"depth": 4, "branching": 2, "tau": 0.0, "oracle_alpha": 1.0})
    assert tree.stats["accepted_per_round"] == tree.stats["extra"]["tree_depth_per_round"]


@pytest.mark.parametrize("method,params", CASES)
def test_alpha_zero_is_the_plain_method(models, method, params):
    target, draft, tok = models["llama"]
    for text in PROMPTS:
        ids = tok(text, return_tensors="pt").input_ids
        plain, _ = run(method, target, draft, ids, params, reference=False)
        zero, _ = run(method, target, draft, ids, {**params, "oracle_alpha": 0.0})
        assert rounds(zero) == rounds(plain)


@pytest.mark.parametrize("method,params", CASES[:2])
def test_acceptance_rises_with_alpha_and_a_seed_fixes_the_draws(models, method, params):
    target, draft, tok = models["gpt_neox"]
    ids = [tok(text, return_tensors="pt").input_ids for text in PROMPTS]

    def accepted_per_round(alpha, seed=0):
        outs = [run(method, target, draft, i, {**params, "oracle_alpha": alpha}, seed=seed)[0] for i in ids]
        return sum(o.stats["draft_tokens_accepted"] for o in outs) / sum(o.stats["rounds"] for o in outs), outs

    means = [accepted_per_round(alpha)[0] for alpha in (0.0, 0.5, 0.9)]
    assert means[0] < means[1] < means[2], means
    first, again, other = (accepted_per_round(0.5, seed)[1] for seed in (0, 0, 1))
    assert [rounds(o) for o in first] == [rounds(o) for o in again]
    assert [rounds(o) for o in first] != [rounds(o) for o in other]


def test_oracle_without_reference_ids_is_refused(models):
    target, draft, tok = models["llama"]
    ids = tok(PROMPTS[0], return_tensors="pt").input_ids
    for method, params in CASES:
        with pytest.raises(ValueError, match="oracle_ids is None"):
            run(method, target, draft, ids, {**params, "oracle_alpha": 0.5}, reference=False)


@pytest.mark.parametrize("method", ["linear", "tree", "dynatree"])
def test_bad_alpha_is_named(method):
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match="oracle_alpha"):
            get_method(method).make_params({"oracle_alpha": bad})
    assert get_method(method).resolve_params({})["oracle_alpha"] is None


def test_the_harness_supplies_the_reference(tiny_config, tmp_path):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["experiments"]["main"]["methods"]["oracle"] = {"method": "linear", "params": {"k": 3, "oracle_alpha": 1.0}}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = tmp_path / "oracle.json"
    run_job(load_config(tiny_config), "main", "docs", "oracle", out, progress=False)
    data = load_result(out)
    assert data["method"]["params"]["oracle_alpha"] == 1.0 and not data.get("errors")
    assert [r["acceptance_rate"] for r in data["records"]] == [1.0] * len(data["records"])
