import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from decodebench.measurement import Tracker
from decodebench.methods import Budget, GenContext, get_method

PROMPTS = ["To be, or not to be", "The quick brown fox", "whether 'tis nobler in the mind to suffer the"]


def run_method(method_id, model, ids, max_new_tokens, eos=None, draft=None, params=None):
    spec = get_method(method_id)
    with Tracker("cpu").measure() as m:
        ctx = GenContext(target=model, draft=draft, prompt_ids=ids,
                         budget=Budget(max_new_tokens, frozenset(eos) if eos else None),
                         params=spec.make_params(params or {}), clock=m)
        return spec.generate(ctx), m


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_ar_equals_hf_generate(tiny_models, arch):
    model = AutoModelForCausalLM.from_pretrained(tiny_models[arch]).eval()
    tok = AutoTokenizer.from_pretrained(tiny_models[arch])
    for text in PROMPTS:
        ids = tok(text, return_tensors="pt").input_ids
        out, m = run_method("ar", model, ids, 20)
        # EOS disabled without min_new_tokens (which would hide the EOS logit and change argmaxes).
        gen = GenerationConfig(max_new_tokens=20, do_sample=False, pad_token_id=tok.eos_token_id)
        ref = model.generate(ids, generation_config=gen, eos_token_id=None)[0, ids.shape[1]:].tolist()
        assert out.new_ids == ref
        assert len(out.new_ids) == 20
        assert 0 < m.ttft_s <= m.wall_time_s


def test_ar_stops_after_eos_when_enabled(tiny_models):
    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).eval()
    tok = AutoTokenizer.from_pretrained(tiny_models["llama"])
    ids = tok(PROMPTS[0], return_tensors="pt").input_ids
    full, _ = run_method("ar", model, ids, 20)
    stop = full.new_ids[5]  # pretend the 6th generated token is EOS
    out, _ = run_method("ar", model, ids, 20, eos={stop})
    first = full.new_ids.index(stop)
    assert out.new_ids == full.new_ids[: first + 1]
