"""Linear speculative decoding is lossless (fp32: ids equal AR's) and its bookkeeping adds up."""

import copy

import pytest
import torch
from test_ar import PROMPTS, run_method
from transformers import AutoModelForCausalLM, AutoTokenizer

from decodebench.methods import get_method

ARCHS = ["llama", "gpt_neox"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run ~80x slower with 2 intra-op threads on a loaded machine (spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def perturbed(model, scale=0.005, seed=1):
    """A copy of `model` with small weight noise: a draft that agrees with it only partly."""
    draft = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return draft


@pytest.fixture(scope="module")
def models(tiny_models):
    """{arch: (target, {'small': separate tiny draft, 'self': target, 'noisy': perturbed copy}, tokenizer)}."""
    out = {}
    for arch in ARCHS:
        target = AutoModelForCausalLM.from_pretrained(tiny_models[arch]).eval()
        small = AutoModelForCausalLM.from_pretrained(tiny_models[f"{arch}_draft"]).eval()
        out[arch] = (target, {"small": small, "self": target, "noisy": perturbed(target)},
                     AutoTokenizer.from_pretrained(tiny_models[arch]))
    return out


def encode(tok, text):
    return tok(text, return_tensors="pt").input_ids


def check_stats(stats, new_tokens, last_round_cut=False):
    """Every round commits its accepted drafts plus the target's own token, except a last round
    cut short (an EOS among its drafts; prompt lookup's candidates reaching the budget)."""
    assert stats["rounds"] == len(stats["accepted_per_round"]) == len(stats["proposed_per_round"])
    assert all(0 <= a <= p for a, p in zip(stats["accepted_per_round"], stats["proposed_per_round"]))
    if stats["acceptance_rate"] is not None:
        assert 0.0 <= stats["acceptance_rate"] <= 1.0
    own = new_tokens - stats["draft_tokens_accepted"]  # committed tokens that were the target's own
    assert own == stats["rounds"] or (last_round_cut and own == stats["rounds"] - 1)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("draft_kind", ["small", "self", "noisy"])
@pytest.mark.parametrize("k", [1, 3, 4])
def test_linear_equals_ar(models, arch, draft_kind, k):
    target, drafts, tok = models[arch]
    for text in PROMPTS:
        ids = encode(tok, text)
        ar, _ = run_method("ar", target, ids, 20)
        out, m = run_method("linear", target, ids, 20, draft=drafts[draft_kind], params={"k": k})
        assert out.new_ids == ar.new_ids
        check_stats(out.stats, 20)
        assert 0 < m.ttft_s <= m.wall_time_s
        if draft_kind == "self":
            assert out.stats["acceptance_rate"] == 1.0


def test_noisy_draft_exercises_partial_acceptance(models):
    """The lossless tests above must cover rejection inside a round, not only all-or-nothing."""
    target, drafts, tok = models["llama"]
    accepted = []
    for text in PROMPTS:
        out, _ = run_method("linear", target, encode(tok, text), 20, draft=drafts["noisy"], params={"k": 4})
        accepted += out.stats["accepted_per_round"]
    assert {0, 4} <= set(accepted) and set(accepted) & {1, 2, 3}


@pytest.mark.parametrize("draft_kind", ["self", "noisy"])
def test_budget_ending_mid_round(models, draft_kind):
    target, drafts, tok = models["gpt_neox"]
    ids = encode(tok, PROMPTS[2])
    ar, _ = run_method("ar", target, ids, 11)
    for n in range(1, 12):
        out, _ = run_method("linear", target, ids, n, draft=drafts[draft_kind], params={"k": 4})
        assert out.new_ids == ar.new_ids[:n]
        check_stats(out.stats, n)
        assert out.stats["proposed_per_round"][-1] <= 4


def test_one_new_token_is_one_target_forward(models):
    target, drafts, tok = models["llama"]
    ids = encode(tok, PROMPTS[0])
    ar, _ = run_method("ar", target, ids, 1)
    out, m = run_method("linear", target, ids, 1, draft=drafts["self"], params={"k": 4})
    assert out.new_ids == ar.new_ids and len(out.new_ids) == 1
    assert out.stats["rounds"] == 1 and out.stats["draft_tokens_proposed"] == 0
    assert out.stats["acceptance_rate"] is None
    assert m.ttft_s is not None


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("draft_kind", ["self", "noisy"])
def test_eos_inside_a_draft_stops_there(models, arch, draft_kind):
    target, drafts, tok = models[arch]
    ids = encode(tok, PROMPTS[1])
    full, _ = run_method("ar", target, ids, 20)
    for position in (1, 2, 5, 6):  # with k=4 and a self-draft: inside round 1 or round 2's drafts
        stop = full.new_ids[position]
        expected, _ = run_method("ar", target, ids, 20, eos={stop})
        assert expected.new_ids[-1] == stop
        out, _ = run_method("linear", target, ids, 20, draft=drafts[draft_kind], eos={stop}, params={"k": 4})
        assert out.new_ids == expected.new_ids
        check_stats(out.stats, len(out.new_ids), last_round_cut=True)


def test_draft_cache_is_reused_and_target_verifies_in_one_forward(models):
    """Round 1 feeds the prompt to both models; later rounds feed the draft 1-2 tokens per
    forward (never a re-prefill) and the target the last committed token + k drafts at once."""
    target, drafts, tok = models["llama"]
    draft = drafts["noisy"]
    fed = {"target": [], "draft": []}
    hooks = [m.register_forward_pre_hook(lambda _, args, kw, name=name: fed[name].append(kw["input_ids"].shape[1]),
                                         with_kwargs=True)
             for name, m in (("target", target), ("draft", draft))]
    try:
        ids = encode(tok, PROMPTS[2])
        out, _ = run_method("linear", target, ids, 20, draft=draft, params={"k": 3})
    finally:
        for h in hooks:
            h.remove()
    n, s = ids.shape[1], out.stats
    assert fed["target"] == [n + s["proposed_per_round"][0]] + [1 + p for p in s["proposed_per_round"][1:]]
    assert fed["draft"][0] == n and all(x in (1, 2) for x in fed["draft"][1:])
    assert len(fed["draft"]) == s["draft_tokens_proposed"]  # one draft forward per proposed token


def test_k_is_validated():
    spec = get_method("linear")
    assert spec.make_params({}).k == 4
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            spec.make_params({"k": bad})


def test_linear_without_draft_is_an_error(models):
    target, _, tok = models["llama"]
    with pytest.raises(ValueError, match="needs a draft"):
        run_method("linear", target, encode(tok, PROMPTS[0]), 4)


def test_lookup_finds_the_first_earlier_occurrence_of_the_longest_suffix():
    from decodebench.methods.linear import lookup

    seq = [1, 2, 3, 9, 2, 3, 4, 1, 2, 3]
    assert lookup(seq, 3, 10) == [9, 2, 3, 4, 1, 2, 3]  # [1, 2, 3] at 0
    assert lookup(seq, 3, 2) == [9, 2]
    assert lookup([5, 6, 7, 6], 2, 10) == [7, 6]  # [7, 6] never occurred before: the 1-gram [6]
    assert lookup([5, 6, 7], 3, 10) == []
    assert lookup(seq, 0, 10) == []


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("draft_kind", ["small", "noisy"])
def test_linear_with_lookup_equals_ar_and_skips_the_draft_when_lookup_proposes(models, arch, draft_kind):
    target, drafts, tok = models[arch]
    events = []  # "D": a draft forward, "T": the target's verification forward that ends a round
    handles = [drafts[draft_kind].register_forward_hook(lambda *a: events.append("D")),
               target.register_forward_hook(lambda *a: events.append("T"))]
    try:
        looked_up = 0
        for text in PROMPTS + ["a b c a b c a b c a b c a b c"]:
            ids = encode(tok, text)
            ar, _ = run_method("ar", target, ids, 20)
            events.clear()
            out, _ = run_method("linear", target, ids, 20, draft=drafts[draft_kind],
                                params={"k": 3, "lookup": 2, "lookup_tokens": 5})
            assert out.new_ids == ar.new_ids
            check_stats(out.stats, 20)
            per_round = [len(r) for r in "".join(events).split("T")[:-1]]  # draft forwards of each round
            assert len(per_round) == out.stats["rounds"]
            for forwards, proposed in zip(per_round, out.stats["proposed_per_round"]):
                assert forwards in (0, proposed) and proposed <= 5  # looked up (no draft) or drafted
                assert proposed <= 3 or forwards == 0
                looked_up += forwards == 0 and proposed > 0
        assert looked_up > 0
    finally:
        for h in handles:
            h.remove()
