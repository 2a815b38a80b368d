"""The measurement contract every greedy method follows (docs/methods.md, "Definitions"):
one prefill policy (no logits for prompt positions nobody reads), commits that add up to the
output, target forwards counted the same way, no KV cache outliving its generation."""

import gc

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.cache_utils import Cache

from decodebench.measurement import Tracker
from decodebench.methods import Budget, GenContext, counting_forwards, get_method

METHODS = [("ar", {}), ("linear", {"k": 3}), ("tree", {"depth": 3, "branching": 2}), ("dynatree", {}),
           ("hf_assisted", {"num_assistant_tokens": 3}), ("pld", {"num_tokens": 4})]
PROMPT = "To be, or not to be, that is the question: whether 'tis nobler in the mind to be, or not to be"
NEW = 16


@pytest.fixture(scope="module")
def models(tiny_models):
    target = AutoModelForCausalLM.from_pretrained(tiny_models["llama"], attn_implementation="sdpa").eval()
    draft = AutoModelForCausalLM.from_pretrained(tiny_models["llama_draft"], attn_implementation="sdpa").eval()
    tok = AutoTokenizer.from_pretrained(tiny_models["llama"])
    return target, draft, tok(PROMPT, return_tensors="pt").input_ids


def _cache_len(kwargs) -> int:
    cache = kwargs.get("past_key_values") or kwargs.get("cache")
    return int(cache.get_seq_length()) if cache is not None else 0


class LogitsWidth:
    """Per forward of a model: (cache length before, tokens fed, output-head rows)."""

    def __init__(self, model):
        self.forwards = []
        self.handles = [
            model.register_forward_pre_hook(self.pre, with_kwargs=True),
            model.get_output_embeddings().register_forward_hook(self.head),
        ]

    def pre(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.forwards.append([_cache_len(kwargs), ids.shape[1], None])

    def head(self, module, args, output):
        self.forwards[-1][2] = args[0].shape[-2]

    def close(self):
        for h in self.handles:
            h.remove()


def generate(method, params, target, draft, ids):
    spec = get_method(method)
    ctx = GenContext(target=target, draft=draft if spec.needs_draft else None, prompt_ids=ids,
                     budget=Budget(NEW, None), params=spec.make_params(params), clock=None)
    with Tracker("cpu").measure() as m:
        ctx.clock = m
        with counting_forwards(ctx):
            out = spec.generate(ctx)
    return out, m, ctx


@pytest.mark.parametrize("method,params", METHODS)
def test_no_forward_computes_logits_for_prompt_positions(models, method, params):
    """The head's rows in a forward are at most its non-prompt positions + 1 (the last prompt
    position's logits give the first new token): the AR logits bug of issue 13 fails here."""
    target, draft, ids = models
    prompt_len = ids.shape[1]
    watched = {"target": LogitsWidth(target), "draft": LogitsWidth(draft)}
    try:
        generate(method, params, target, draft, ids)
    finally:
        for w in watched.values():
            w.close()
    assert watched["target"].forwards
    for role, w in watched.items():
        for start, fed, rows in w.forwards:
            prompt_positions = max(0, min(prompt_len, start + fed) - start)
            assert rows is not None and rows <= fed - prompt_positions + 1, (role, start, fed, rows)


@pytest.mark.parametrize("method,params", METHODS)
def test_commits_and_forward_counts_follow_the_definitions(models, method, params):
    target, draft, ids = models
    out, m, ctx = generate(method, params, target, draft, ids)
    assert sum(m.commit_tokens) == len(out.new_ids) == NEW
    lat = m.latency()
    assert lat.ttft_s == m.commit_times_s[0] and lat.tokens_at_first_commit == m.commit_tokens[0]
    forwards = ctx.forward_counts["target"].forwards
    if method == "ar":
        assert forwards == NEW and m.commit_tokens == [1] * NEW
    else:
        rounds = out.stats["rounds"]
        assert forwards == rounds + (1 if method in ("tree", "dynatree") else 0)
        assert len(out.stats["verify_tokens_per_round"]) == rounds
        if method in ("linear", "hf_assisted", "pld"):  # the first round encodes the prompt
            assert out.stats["verify_tokens_per_round"][0] >= ids.shape[1]
    assert NEW / forwards >= 1


@pytest.mark.parametrize("method,params", METHODS)
def test_no_kv_cache_survives_a_generation(models, method, params):
    """Nothing of a generation stays alive to contaminate the next one's baseline (the
    hf_assisted / pld candidate-generator cycle kept the draft's cache alive until a GC)."""
    target, draft, ids = models
    gc.collect()
    gc.disable()
    try:
        out = generate(method, params, target, draft, ids)
        del out
        alive = [o for o in gc.get_objects() if isinstance(o, Cache)]  # DynamicCache and KVCache
    finally:
        gc.enable()
    assert alive == []


def test_greedy_decisions_are_taken_over_float32_logits():
    from decodebench.methods import greedy

    logits = torch.tensor([[1.0, 3.0, 2.0]], dtype=torch.bfloat16)
    assert greedy(logits).tolist() == [1]
    assert greedy(torch.tensor([[2.0, 2.0]])).tolist() == [0]  # ties: the first index, as torch.argmax
