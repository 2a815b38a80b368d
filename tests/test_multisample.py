"""Multi-sample methods: naive, naive_batched, shared_prefill, eab_deepcopy, eab_shared_prefix
(tiny random Llama/NeoX, fp32)."""

import json

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, DynamicCache, GenerationConfig
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from decodebench import harness
from decodebench.config import ConfigError, load_config
from decodebench.jobs import resolve_job
from decodebench.measurement import Tracker
from decodebench.methods import Budget, GenContext, eab, get_method, method_aliases
from decodebench.multisample import DeepCopyStore, SharedPrefixStore, path_attention, sample_seed
from decodebench.results import load_result

METHODS = ["naive", "naive_batched", "shared_prefill", "eab_deepcopy", "eab_shared_prefix"]
INDEPENDENT = [("naive", {}), ("naive_batched", {}), ("shared_prefill", {"store": "shared_prefix"}),
               ("shared_prefill", {"store": "deepcopy"})]


@pytest.fixture(scope="module")
def models(tiny_models):
    return {arch: AutoModelForCausalLM.from_pretrained(tiny_models[arch]).eval() for arch in ("llama", "gpt_neox")}


def prompt(length=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 300, (1, length), generator=g)


def run(method_id, model, ids, n, max_new_tokens=10, params=None, seed=0, eos=None, temperature=1.0):
    spec = get_method(method_id)
    torch.manual_seed(seed)  # as the harness does before each measured generation
    with Tracker("cpu").measure() as m:
        ctx = GenContext(target=model, draft=None, prompt_ids=ids,
                         budget=Budget(max_new_tokens, frozenset(eos) if eos else None),
                         params=spec.make_params(params or {}), clock=m, seed=seed, num_samples=n,
                         temperature=temperature)
        return spec.generate(ctx)


def hf_samples(model, ids, n, max_new_tokens, seed, temperature=1.0):
    torch.manual_seed(seed)
    gen = GenerationConfig(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=True,
                           top_k=0, top_p=1.0, temperature=temperature, num_return_sequences=n,
                           eos_token_id=None, pad_token_id=0)
    return model.generate(ids, generation_config=gen)[:, ids.shape[1]:].tolist()


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_each_sample_is_what_transformers_draws_with_its_seed(models, arch):
    """Sample i of a generation seeded with s is transformers' sample with seed sample_seed(s, i)."""
    model, ids = models[arch], prompt()
    for seed in (0, 1):
        out = run("naive", model, ids, 3, seed=seed, temperature=0.7)
        assert out.samples == [hf_samples(model, ids, 1, 10, sample_seed(seed, i), temperature=0.7)[0]
                               for i in range(3)]
    assert sample_seed(7, 0) == 7 and len({sample_seed(s, i) for s in range(50) for i in range(50)}) == 2500


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
@pytest.mark.parametrize("eos", [None, range(0, 320, 7)])  # with EOS, rows leave the batch at different steps
def test_independent_samplers_give_naive_samples(models, arch, eos):
    """naive_batched and shared_prefill (either store) draw exactly naive's samples: each sample
    has its own generator, whatever batch it is decoded in (fp32)."""
    model, ids = models[arch], prompt(33, seed=2)
    for seed in (0, 3):
        want = run("naive", model, ids, 5, seed=seed, eos=eos)
        assert len(set(map(tuple, want.samples))) == 5
        for method, params in INDEPENDENT[1:]:
            got = run(method, model, ids, 5, params=params, seed=seed, eos=eos)
            assert got.samples == want.samples, (method, params)
            assert got.stats["extra"]["sample_logprob"] == pytest.approx(want.stats["extra"]["sample_logprob"],
                                                                         abs=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
@pytest.mark.parametrize("method", ["eab_deepcopy", "eab_shared_prefix"])
def test_eab_one_path_without_branching_is_sampling_ar(models, arch, method):
    model, ids = models[arch], prompt()
    for seed in (0, 1, 2):
        out = run(method, model, ids, 1, max_new_tokens=12, params={"entropy_threshold": 1.0}, seed=seed)
        assert out.samples == run("naive", model, ids, 1, max_new_tokens=12, seed=seed).samples
        assert out.stats["branch_points"] == 0


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
@pytest.mark.parametrize("case", [
    {"n": 6, "params": {}},
    {"n": 5, "params": {"branch_factor": 4, "max_paths": 9}},  # more paths than samples: pruning + selection
    {"n": 4, "params": {"max_paths": 2}},  # budget below N: a top-up round
    {"n": 6, "params": {}, "eos": range(0, 320, 7)},  # paths end early
])
def test_the_stores_give_identical_samples_in_fp32(models, arch, case):
    model, ids = models[arch], prompt(40, seed=3)
    a = run("eab_deepcopy", model, ids, case["n"], params=case["params"], seed=5, eos=case.get("eos"))
    b = run("eab_shared_prefix", model, ids, case["n"], params=case["params"], seed=5, eos=case.get("eos"))
    assert a.samples == b.samples
    assert a.stats["branch_points"] > 0  # the comparison covers branching, not one lone path
    assert {k: v for k, v in a.stats.items() if k != "extra"} == {k: v for k, v in b.stats.items() if k != "extra"}
    assert a.stats["extra"]["sample_branch_steps"] == b.stats["extra"]["sample_branch_steps"]
    assert a.stats["extra"]["sample_logprob"] == pytest.approx(b.stats["extra"]["sample_logprob"], abs=1e-4)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n, params, eos", [
    (1, {}, None), (7, {}, None), (5, {"entropy_threshold": 1.0}, None),  # no branching: top-up
    (5, {"max_paths": 12, "branch_factor": 5}, None), (6, {}, range(0, 320, 5)),
])
def test_exactly_n_samples(models, method, n, params, eos):
    params = params if method.startswith("eab") else {}
    out = run(method, models["llama"], prompt(), n, max_new_tokens=8, params=params, eos=eos)
    assert len(out.samples) == out.stats["num_samples"] == n
    assert all(1 <= len(s) <= 8 for s in out.samples)
    if eos is None:
        assert all(len(s) == 8 for s in out.samples)
    else:  # a sample ends exactly at its first EOS
        assert all(len(s) == 8 or (s[-1] in eos and not set(s[:-1]) & set(eos)) for s in out.samples)
    assert out.num_new_tokens == sum(len(s) for s in out.samples)
    extra = out.stats["extra"]
    assert len(extra["sample_logprob"]) == n and all(lp < 0 for lp in extra["sample_logprob"])
    if method.startswith("eab"):
        assert len(extra["sample_branch_steps"]) == n


def test_eab_topup_when_branching_never_fires(models):
    out = run("eab_shared_prefix", models["llama"], prompt(), 4, params={"entropy_threshold": 1.0})
    assert out.stats["final_paths"] == 1 and out.stats["extra"]["topup_paths"] == 3
    assert len(set(map(tuple, out.samples))) == 4  # independent samples, not copies


@pytest.mark.parametrize("method", METHODS)
def test_token_steps_count_every_position_the_model_computed(models, method):
    """token_steps equals the positions fed to the model, counted by a hook on its forward."""
    model, ids = models["llama"], prompt(30)
    fed = []
    hook = model.model.register_forward_pre_hook(lambda mod, args, kwargs: fed.append(kwargs["input_ids"].numel()),
                                                 with_kwargs=True)
    try:
        out = run(method, model, ids, 5, max_new_tokens=9, eos=range(0, 320, 11))
    finally:
        hook.remove()
    assert out.stats["token_steps"] == sum(fed)
    if method.startswith("naive"):  # every sample re-encodes the prompt; its last token is never fed
        assert out.stats["token_steps"] == 5 * 30 + sum(len(s) - 1 for s in out.samples)
    elif method == "shared_prefill":  # the prompt once, then every sample's tokens but its last
        assert out.stats["token_steps"] == 30 + sum(len(s) - 1 for s in out.samples)
    else:  # the prompt once; far fewer positions than independent samples
        assert sum(fed[1:]) == out.stats["token_steps"] - 30 and fed[0] == 30
        assert out.stats["token_steps"] < 2 * 30 + sum(len(s) for s in out.samples)


class _Module:
    layer_idx = 0
    num_key_value_groups = 2
    is_causal = True
    training = False


@pytest.mark.parametrize("store_cls", [SharedPrefixStore, DeepCopyStore])
def test_path_attention_equals_sdpa_on_concatenated_keys(store_cls):
    """One attention function for both stores, equal to SDPA over [prompt ; suffix] per path."""
    torch.manual_seed(0)
    paths, heads, kv_heads, dim, prompt_len, suffix = 3, 4, 2, 8, 11, 5
    prefill = DynamicCache()
    pk, pv = torch.randn(1, kv_heads, prompt_len, dim), torch.randn(1, kv_heads, prompt_len, dim)
    prefill.update(pk, pv, 0)
    store = store_cls(prefill, prompt_len, max_new_tokens=suffix)
    store.start(paths)
    sk, sv = torch.randn(paths, kv_heads, suffix, dim), torch.randn(paths, kv_heads, suffix, dim)
    keys, values = store.cache.layers[0].update(sk, sv)
    query = torch.randn(paths, heads, 1, dim)
    got, _ = path_attention(_Module(), query, keys, values, None, scaling=dim ** -0.5, path_cache=store.cache)
    full_k = torch.cat([pk.expand(paths, -1, -1, -1), sk], dim=2)
    full_v = torch.cat([pv.expand(paths, -1, -1, -1), sv], dim=2)
    want, _ = sdpa_attention_forward(_Module(), query, full_k, full_v, None, scaling=dim ** -0.5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_shared_prefix_store_shares_the_prompt_and_stores_only_generated_tokens(models):
    """The prefix stays one [1, ...] tensor, never copied while paths branch; suffixes are per path."""
    model, ids = models["llama"], prompt(50)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        store = SharedPrefixStore(out.past_key_values, 50, max_new_tokens=4)
        pointers = [layer.prompt_keys.data_ptr() for layer in store.cache.layers]
        store.start(1)
        with store.session(model):
            store.forward(model, torch.tensor([5]), 50)
            store.select(torch.tensor([0, 0, 0]))  # branch into three children
            logits = store.forward(model, torch.tensor([6, 7, 8]), 51)
    assert logits.shape[0] == 3
    for layer, ptr in zip(store.cache.layers, pointers):
        assert layer.prompt_keys.data_ptr() == ptr and layer.prompt_keys.shape[0] == 1
        assert layer.keys.shape == (3, layer.prompt_keys.shape[1], 4, layer.prompt_keys.shape[3])
        assert layer.length == 2
        torch.testing.assert_close(layer.keys[1, :, 0], layer.keys[0, :, 0])  # the parent's token, copied
    assert model.config._attn_implementation == "sdpa"  # restored after the session


@pytest.mark.parametrize("store_cls", [DeepCopyStore, SharedPrefixStore])
def test_stores_write_in_place_between_branches(models, store_cls):
    """No per-step concatenation: without a branch the rows stay the same preallocated buffers."""
    model, ids = models["llama"], prompt(20)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        store = store_cls(out.past_key_values, 20, max_new_tokens=5)
        store.start(2)
        pointers = [(layer.keys.data_ptr(), layer.values.data_ptr()) for layer in store.cache.layers]
        with store.session(model):
            for step in range(4):
                store.forward(model, torch.tensor([5 + step, 9 + step]), 20 + step)
        assert [(layer.keys.data_ptr(), layer.values.data_ptr()) for layer in store.cache.layers] == pointers
        store.select(torch.tensor([1, 1]))
        assert all(layer.keys.data_ptr() != p[0] for layer, p in zip(store.cache.layers, pointers))
    if store_cls is DeepCopyStore:  # each row: its own copy of the prompt, then its tokens
        layer = store.cache.layers[0]
        assert layer.keys.shape[2] == 20 + 5 and layer.length == 24
        torch.testing.assert_close(layer.keys[:, :, :20], out.past_key_values.layers[0].keys.expand(2, -1, -1, -1))


def test_shared_prefix_holds_less_kv_than_deepcopy_on_a_long_prompt(models):
    """Structural memory: peak key/value bytes held, long prompt, many samples."""
    model, ids, n, new = models["llama"], prompt(400), 8, 6
    deep = run("eab_deepcopy", model, ids, n, max_new_tokens=new)
    shared = run("eab_shared_prefix", model, ids, n, max_new_tokens=new)
    assert deep.samples == shared.samples
    cfg = model.config
    per_position = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads) * 4
    # shared: the prompt once + per-path rows of max_new_tokens; deepcopy: a prompt copy per path
    # (rows preallocated to prompt + max_new_tokens) + the prompt kept for top-up paths
    assert shared.stats["extra"]["kv_computed_peak_bytes"] == per_position * (400 + n * new)
    assert deep.stats["extra"]["kv_computed_peak_bytes"] == per_position * (400 + n * (400 + new))
    assert shared.stats["extra"]["kv_computed_peak_bytes"] * 4 < deep.stats["extra"]["kv_computed_peak_bytes"]


def test_eab_params_are_validated():
    spec = get_method("eab_shared_prefix")
    assert spec.resolve_params({}) == {"entropy_threshold": 0.25, "branch_factor": 3, "max_paths": None}
    for bad in ({"branch_factor": 1}, {"max_paths": 0}, {"entropy_threshold": -0.1}, {"threshold": 0.2}):
        with pytest.raises(ValueError):
            spec.make_params(bad)


def test_children_per_path_shrinks_as_the_budget_fills():
    # budget 10, 1 used: the most uncertain path first
    assert eab.children_per_path([0.9], 0.5, 3, 10, 1) == [3]
    assert eab.children_per_path([0.9, 0.2, 0.8], 0.5, 3, 10, 3) == [3, 1, 2]  # 7 left, then 5
    assert eab.children_per_path([0.9, 0.8], 0.5, 3, 10, 9) == [2, 1]  # one slot left
    assert eab.children_per_path([0.9, 0.8], 0.5, 3, 10, 10) == [1, 1]  # full
    assert eab.children_per_path([0.9], 0.5, 5, 20, 15) == [2]  # 1 + ceil(4 * 5 / 20)
    assert eab.children_per_path([0.9], 0.5, 5, 20, 1) == [5]  # 1 + ceil(4 * 19 / 20)


# --- config and harness ---------------------------------------------------------------------

def multisample_config(tiny_config, tmp_path, methods=None):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["protocol"]["num_samples"] = 4
    cfg["protocol"]["max_new_tokens"] = 6
    cfg["experiments"]["multisample"] = {
        "baseline": "naive", "datasets": ["docs"], "protocol": {"reference_samples": 8},
        "methods": methods or {"naive": {"method": "naive"}, "naive_batched": {"method": "naive_batched"},
                               "shared_prefill": {"method": "shared_prefill"},
                               "eab": {"method": "eab", "cache": "both", "params": {"entropy_threshold": 0.5}}},
    }
    path = tmp_path / "multisample.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_cache_both_runs_the_two_eab_variants_side_by_side(tiny_config, tmp_path):
    cfg = load_config(multisample_config(tiny_config, tmp_path))
    methods = cfg["experiments"]["multisample"]["methods"]
    assert list(methods) == METHODS
    assert methods["eab_deepcopy"] == {"method": "eab_deepcopy", "params": {"entropy_threshold": 0.5}}
    assert methods["eab_shared_prefix"]["method"] == "eab_shared_prefix"
    one = load_config(multisample_config(tiny_config, tmp_path, {"naive": {"method": "naive"},
                                                                 "e": {"method": "eab", "cache": "shared_prefix"}}))
    assert one["experiments"]["multisample"]["methods"]["e"] == {"method": "eab_shared_prefix"}


def test_old_ids_are_aliases_of_the_renamed_methods(tiny_config, tmp_path):
    """A config written with eab_original / eab_cow (or cache: original / cow) still runs, as the
    renamed methods, and the job records the new id."""
    assert method_aliases() == {"eab_original": "eab_deepcopy", "eab_cow": "eab_shared_prefix"}
    assert get_method("eab_original") is get_method("eab_deepcopy")
    assert get_method("eab_cow") is get_method("eab_shared_prefix")
    cfg = load_config(multisample_config(tiny_config, tmp_path, {
        "naive": {"method": "naive"}, "old_original": {"method": "eab_original", "params": {"branch_factor": 4}},
        "old_cow": {"method": "eab_cow"}, "short": {"method": "eab", "cache": "cow"},
        "both": {"method": "eab", "cache": "both", "label": "EAB"}}))
    methods = cfg["experiments"]["multisample"]["methods"]
    assert methods["short"] == {"method": "eab_shared_prefix"}
    assert methods["both_deepcopy"] == {"method": "eab_deepcopy", "label": "EAB (deep copy)"}
    assert methods["both_shared_prefix"]["label"] == "EAB (shared prefix)"
    assert resolve_job(cfg, "multisample", "docs", "old_original").method_id == "eab_deepcopy"
    assert resolve_job(cfg, "multisample", "docs", "old_original").params["branch_factor"] == 4
    assert resolve_job(cfg, "multisample", "docs", "old_cow").method_id == "eab_shared_prefix"


@pytest.mark.parametrize("bad", [{"method": "eab"}, {"method": "naive", "cache": "cow"}])
def test_cache_goes_with_method_eab_only(tiny_config, tmp_path, bad):
    path = multisample_config(tiny_config, tmp_path, {"naive": {"method": "naive"}, "x": bad})
    with pytest.raises(ConfigError, match=r"multisample\.yaml: experiments\.multisample\.methods\.x: 'cache'"):
        load_config(path)


def test_run_job_for_each_method(tiny_config, tmp_path):
    cfg = load_config(multisample_config(tiny_config, tmp_path))
    hashes, quality = {}, {}
    for method in METHODS:
        out = tmp_path / f"{method}.json"
        harness.run_job(cfg, "multisample", "docs", method, out=out, progress=False)
        result = load_result(out)  # validates against the schema
        assert result["protocol"]["num_samples"] == 4
        assert result["protocol"]["prompts_requested"] == result["protocol"]["prompts_measured"] == 3
        assert not result["errors"]
        for r in result["records"]:
            assert r["num_samples"] == 4 and r["new_tokens"] == 4 * 6
            assert r["token_steps"] > 0 and r["final_paths"] >= 1
            assert r["peak_memory_overhead_mib"] >= 0
        hashes[method] = [r["output_sha256"] for r in result["records"]]
        quality[method] = [{k: r[k] for k in ("distinct_1", "distinct_2", "self_bleu", "sample_logprob_mean",
                                              "sample_logprob_std", "nll_per_token", "nll_per_token_reference",
                                              "nll_per_token_error")} for r in result["records"]]
        assert result["protocol"]["reference_samples"] == 8
        for r in result["records"]:
            assert r["nll_per_token"] == pytest.approx(-sum(r["extra"]["sample_logprob"]) / r["new_tokens"])
            assert r["nll_per_token_error"] == pytest.approx(r["nll_per_token"] - r["nll_per_token_reference"])
        if method.startswith("eab"):
            assert result["method"]["params"] == {"entropy_threshold": 0.5, "branch_factor": 3, "max_paths": None}
    assert hashes["eab_deepcopy"] == hashes["eab_shared_prefix"]
    assert hashes["naive"] == hashes["naive_batched"] == hashes["shared_prefill"]
    assert hashes["naive"] != hashes["eab_shared_prefix"]
    # one reference per prompt, whichever method's job drew it (fixed seed, fixed sample indices)
    references = {m: [q["nll_per_token_reference"] for q in quality[m]] for m in METHODS}
    assert all(ref == references["naive"] for ref in references.values())
    assert all(ref > 0 for ref in references["naive"])
    for method in ("naive_batched", "shared_prefill"):  # the same samples: the same quality, up to rounding
        for got, want in zip(quality[method], quality["naive"]):
            assert got == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_a_failing_prompt_is_an_error_in_the_result(tiny_config, tmp_path, monkeypatch, method):
    cfg = load_config(multisample_config(tiny_config, tmp_path))
    spec = get_method(method)
    real = spec.generate

    def failing_on_prompt_1(ctx):
        if ctx.seed == cfg["seed"] + 1:  # the harness seeds prompt i with seed + i
            raise RuntimeError("out of memory (simulated)")
        return real(ctx)

    monkeypatch.setattr(type(spec), "generate", property(lambda self: failing_on_prompt_1))
    out = tmp_path / "r.json"
    harness.run_job(cfg, "multisample", "docs", method, out=out, progress=False)
    result = json.loads(out.read_text())
    assert result["protocol"]["prompts_requested"] == 3 and result["protocol"]["prompts_measured"] == 2
    assert [e["prompt_index"] for e in result["errors"]] == [1]
    assert "out of memory (simulated)" in result["errors"][0]["message"]
    assert [r["prompt_index"] for r in result["records"]] == [0, 2]


def test_methods_refuse_a_model_that_ignores_the_attention_implementation(models, monkeypatch):
    model = models["llama"]
    monkeypatch.setattr(model, "set_attn_implementation", lambda name: None)  # as transformers does: warn only
    for method in METHODS:  # every method runs through the stores' attention
        with pytest.raises(RuntimeError, match="KV stores cannot run on it"):
            run(method, model, prompt(), 2)


def test_multisample_results_pass_the_result_rules(tiny_config, tmp_path):
    """Through the harness and check: EAB's commit log (tokens sampled, a shared prefix once)
    is consistent with its records, and every result rule passes."""
    import yaml

    from decodebench.check import check_paths
    from decodebench.config import load_config
    from decodebench.harness import run_group

    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["protocol"].update(num_samples=3, temperature=1.0, max_new_tokens=6)
    cfg["datasets"]["docs"]["num_prompts"] = 2
    cfg["experiments"]["main"] = {"baseline": "naive", "datasets": ["docs"],
                                  "methods": {"naive": {"method": "naive"}, "eab": {"method": "eab", "cache": "both"}}}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cfg = load_config(tiny_config)
    methods = ["naive", "eab_deepcopy", "eab_shared_prefix"]
    root = tmp_path / "ws"
    outs = {m: root / "results" / "raw" / "tiny" / "main" / "docs" / f"{m}.json" for m in methods}
    results = run_group(cfg, "main", "docs", methods, outs, progress=False)
    for result in results.values():  # no protocol.reference_samples: quality without a reference
        assert result["protocol"]["reference_samples"] is None
        for r in result["records"]:
            assert r["nll_per_token"] > 0 and 0 < r["distinct_1"] <= 1 and r["self_bleu"] is not None
            assert r["nll_per_token_reference"] is None and r["nll_per_token_error"] is None
    report = check_paths([root / "results" / "raw"], cfg=cfg, root=root, regenerate_prompts=False,
                         cv_threshold=10.0)  # a tiny model's timing noise is not under test
    bad = [f for f in report.findings if f.severity == "error"]
    assert not bad, report.text()


def test_the_light_store_names_are_the_stores():
    from decodebench import method_params
    from decodebench.multisample import STORES

    assert tuple(STORES) == method_params.STORES


def test_a_vary_sweep_measures_each_variant_against_its_own_baseline(tiny_config, tmp_path):
    """vary's variants in one paired job: each records its own N and temperature, N = 2 of an
    independent sampler is the first 2 of its N = 3 samples, the quality reference is drawn per
    temperature, and the result rules (comparability with each variant's baseline) pass."""
    import yaml

    from decodebench.analysis import aggregate_files, wide_table
    from decodebench.check import check_paths
    from decodebench.harness import run_group

    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["protocol"].update(num_samples=3, temperature=1.0, max_new_tokens=4)
    cfg["datasets"]["docs"]["num_prompts"] = 2
    cfg["experiments"] = {"multisample_sweep": {
        "baseline": "sp", "datasets": ["docs"], "protocol": {"reference_samples": 4},
        "methods": {"sp": {"method": "shared_prefill"}, "eab": {"method": "eab", "cache": "shared_prefix"}},
        "vary": {"num_samples": [2], "temperature": [0.5], "branch_factor": [2]}}}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cfg = load_config(tiny_config)
    methods = list(cfg["experiments"]["multisample_sweep"]["methods"])
    assert methods == ["sp", "eab", "sp_n2", "eab_n2", "sp_temp0.5", "eab_temp0.5", "eab_bf2"]
    root = tmp_path / "ws"
    outs = {m: root / "results" / "raw" / "tiny" / "multisample_sweep" / "docs" / f"{m}.json" for m in methods}
    results = run_group(cfg, "multisample_sweep", "docs", methods, outs, progress=False)
    assert {m: (r["protocol"]["num_samples"], r["protocol"]["temperature"]) for m, r in results.items()} == {
        "sp": (3, 1.0), "eab": (3, 1.0), "sp_n2": (2, 1.0), "eab_n2": (2, 1.0), "sp_temp0.5": (3, 0.5),
        "eab_temp0.5": (3, 0.5), "eab_bf2": (3, 1.0)}
    assert results["eab_bf2"]["method"]["params"]["branch_factor"] == 2
    for full, two in zip(results["sp"]["records"], results["sp_n2"]["records"]):
        assert two["sample_sha256"] == full["sample_sha256"][:2]  # sample i's generator: seed and i only
    for cold, hot in zip(results["sp_temp0.5"]["records"], results["sp"]["records"]):
        assert cold["nll_per_token_reference"] != hot["nll_per_token_reference"]
    report = check_paths([root / "results" / "raw"], cfg=cfg, root=root, regenerate_prompts=False, cv_threshold=10.0)
    bad = [f for f in report.findings if f.severity == "error"]
    assert not bad, report.text()
    table = wide_table(aggregate_files(cfg, "multisample_sweep", list(outs.values())))
    assert dict(zip(table["method"], table["baseline"])) == {
        "sp": "sp", "eab": "sp", "sp_n2": "sp_n2", "eab_n2": "sp_n2", "sp_temp0.5": "sp_temp0.5",
        "eab_temp0.5": "sp_temp0.5", "eab_bf2": "sp"}
    assert table["speedup_kind"].tolist().count("paired") == 4
