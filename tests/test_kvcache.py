"""kvcache.KVCache: a preallocated cache the models attend over exactly as over a DynamicCache,
written in place; a crop sets the length, a compaction moves only the accepted rows."""

import importlib

import pytest
import torch
from test_ar import PROMPTS
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from decodebench.kvcache import KVCache, crop_to, keep_positions
from decodebench.measurement import Unmeasured
from decodebench.methods import Budget, GenContext, get_method


@pytest.fixture(scope="module")
def llama(tiny_models):
    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).eval()
    ids = AutoTokenizer.from_pretrained(tiny_models["llama"])(PROMPTS[2], return_tensors="pt").input_ids
    return model, ids


def decode(model, ids, cache, steps=6):
    """Greedy steps over `cache`, with a rejected 3-token draft cropped away midway."""
    logits = [model(input_ids=ids, past_key_values=cache, use_cache=True).logits[:, -1]]
    for i in range(steps):
        token = logits[-1].argmax(-1, keepdim=True)
        if i == 2:
            model(input_ids=torch.tensor([[7, 8, 9]]), past_key_values=cache, use_cache=True)
            crop_to(cache, cache.get_seq_length() - 3)
        logits.append(model(input_ids=token, past_key_values=cache, use_cache=True).logits[:, -1])
    return torch.cat(logits)


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_same_logits_as_a_dynamic_cache(tiny_models, arch):
    model = AutoModelForCausalLM.from_pretrained(tiny_models[arch]).eval()
    ids = AutoTokenizer.from_pretrained(tiny_models[arch])(PROMPTS[0], return_tensors="pt").input_ids
    with torch.no_grad():
        ref = decode(model, ids, DynamicCache())
        cache = KVCache(ids.shape[1] + 10)
        got = decode(model, ids, cache)
    assert torch.equal(got, ref)
    assert cache.reallocations == 0


def test_writes_in_place_and_crop_sets_the_length(llama):
    model, ids = llama
    cache = KVCache(ids.shape[1] + 4)
    with torch.no_grad():
        model(input_ids=ids, past_key_values=cache, use_cache=True)
        layer = cache.layers[0]
        buffer = layer.key_buffer.data_ptr()
        model(input_ids=torch.tensor([[1, 2, 3]]), past_key_values=cache, use_cache=True)
        crop_to(cache, ids.shape[1] + 1)
        assert cache.get_seq_length() == ids.shape[1] + 1 and layer.keys.shape[-2] == ids.shape[1] + 1
        model(input_ids=torch.tensor([[4, 5, 6]]), past_key_values=cache, use_cache=True)
    assert layer.key_buffer.data_ptr() == buffer and cache.reallocations == 0
    model(input_ids=torch.tensor([[1]]), past_key_values=cache, use_cache=True)  # past the capacity: grows
    assert cache.reallocations == len(cache.layers) and cache.get_seq_length() == ids.shape[1] + 5


def test_compaction_moves_only_the_rows_out_of_place():
    cache = KVCache(8)
    keys = torch.arange(8.0).reshape(1, 1, 8, 1).expand(1, 2, 8, 3).contiguous()
    cache.update(keys, keys + 100, 0)
    keep_positions(cache, 3, [3, 4, 6])  # rows 3, 4 stay where they are; row 6 moves to 5
    layer = cache.layers[0]
    assert layer.keys[0, 0, :, 0].tolist() == [0, 1, 2, 3, 4, 6]
    assert layer.values[0, 1, :, 0].tolist() == [100, 101, 102, 103, 104, 106]
    dynamic = DynamicCache()
    dynamic.update(keys, keys + 100, 0)
    keep_positions(dynamic, 3, torch.tensor([3, 4, 6]))  # the DynamicCache path keeps working
    assert torch.equal(dynamic.layers[0].keys, layer.keys)


@pytest.mark.parametrize("method,params", [("ar", {}), ("linear", {"k": 3}), ("linear", {"k": 2, "lookup": 2}),
                                           ("tree", {"depth": 3}), ("dynatree", {}),
                                           ("tree", {"depth": 3, "padded": True}),
                                           ("dynatree", {"padded": True, "max_nodes": 30})])
def test_methods_allocate_their_caches_once(llama, monkeypatch, method, params):
    made = []

    class Recorded(KVCache):
        def __init__(self, capacity):
            super().__init__(capacity)
            made.append(self)

    spec = get_method(method)
    loop = {"dynatree": "tree"}.get(method, method)  # dynatree runs tree's loop
    monkeypatch.setattr(importlib.import_module(f"decodebench.methods.{loop}"), "KVCache", Recorded)
    model, ids = llama
    ctx = GenContext(target=model, draft=model if spec.needs_draft else None, prompt_ids=ids,
                     budget=Budget(12, None), params=spec.make_params(params), clock=Unmeasured())
    spec.generate(ctx)
    assert len(made) == (1 if method == "ar" else 2)
    assert all(c.reallocations == 0 for c in made)
