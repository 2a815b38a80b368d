"""Tree speculation (methods tree and dynatree) and the shared tree pieces (decodebench.tree)."""

import copy

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from decodebench import token_tree as T
from decodebench.config import load_config
from decodebench.harness import run_job
from decodebench.kvcache import keep_positions
from decodebench.measurement import Tracker
from decodebench.method_params import tree_level_widths, tree_widths
from decodebench.methods import Budget, GenContext, get_method
from decodebench.methods.dynatree import DynaTreeParams, ShapeState, adjust, shape_for
from decodebench.results import load_result

PROMPTS = ["To be, or not to be", "The quick brown fox", "whether 'tis nobler in the mind to suffer the"]
ARCHS = ["llama", "gpt_neox"]


def load(path, attn="sdpa"):
    return AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn).eval()


def noisy_copy(model, scale, seed=3):
    """A draft that agrees with `model` often but not always (partial acceptance)."""
    draft = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in draft.parameters():
            if p.dim() > 1:
                p.add_(torch.randn(p.shape, generator=gen) * scale)
    return draft


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one thread is faster, and far faster on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models(tiny_models):
    """Per arch: target, tokenizer and drafts {'small': the tiny draft, 'noisy': a perturbed target copy}."""
    out = {}
    for arch in ARCHS:
        target = load(tiny_models[arch])
        out[arch] = {"target": target, "tok": AutoTokenizer.from_pretrained(tiny_models[arch]),
                     "drafts": {"small": load(tiny_models[f"{arch}_draft"]), "noisy": noisy_copy(target, 0.02)}}
    return out


def run(method_id, target, ids, max_new_tokens, draft=None, params=None, eos=None, oracle_ids=None, seed=0):
    spec = get_method(method_id)
    with Tracker("cpu").measure() as m:
        ctx = GenContext(target=target, draft=draft, prompt_ids=ids,
                         budget=Budget(max_new_tokens, frozenset(eos) if eos else None),
                         params=spec.make_params(params or {}), clock=m, oracle_ids=oracle_ids, seed=seed)
        out = spec.generate(ctx)
    return out, m, ctx


def prompt_ids(models, arch, text):
    return models[arch]["tok"](text, return_tensors="pt").input_ids


# --- one tree forward == sequential decoding of every path -------------------------------------

EXAMPLE_PARENTS = [[0, 0, 0], [1, 1, 2], [4, 4, 6], [7]]  # by level; slots numbered in level order


def example_tree(vocab: int, seed: int = 0) -> tuple[T.Tree, list[int], list[int]]:
    """Root with 3 children; uneven deeper levels (depth 4), tokens random, siblings distinct.
    Returns the tree and its parents and tokens as host lists (slot order)."""
    gen = torch.Generator().manual_seed(seed)
    tokens = [int(torch.randint(vocab, (1,), generator=gen))]
    tree, parents = T.Tree.rooted(tokens[0]), [0]
    for level in EXAMPLE_PARENTS:
        new = []
        for parent in level:
            while True:
                token = int(torch.randint(vocab, (1,), generator=gen))
                if (parent, token) not in zip(parents + level, tokens + new):
                    break
            new.append(token)
        tree.add_nodes(level, new)
        parents, tokens = parents + level, tokens + new
    return tree, parents, tokens


def path_to(parents: list[int], node: int) -> list[int]:
    """Slots from the root's child down to `node` (empty for the root)."""
    path = []
    while node > 0:
        path.append(node)
        node = parents[node]
    return path[::-1]


def sequential_logits(model, prefix, parents, tokens, node):
    ids = torch.tensor([prefix + [tokens[0]] + [tokens[i] for i in path_to(parents, node)]])
    return model(input_ids=ids).logits[0, -1]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("arch", ARCHS)
def test_tree_forward_logits_equal_sequential_decoding(tiny_models, arch, attn):
    model = load(tiny_models[arch], attn)
    prefix = AutoTokenizer.from_pretrained(tiny_models[arch])(PROMPTS[2]).input_ids
    tree, parents, tokens = example_tree(model.config.vocab_size)
    assert tree.depth_bound == 4 and tree.levels.tolist() == [0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    nodes = torch.arange(len(tree))
    with torch.no_grad():
        expected = torch.stack([sequential_logits(model, prefix, parents, tokens, i) for i in range(len(tree))])

        # Target scheme: the whole tree (root included) in one forward over the prefix cache.
        cache = model(input_ids=torch.tensor([prefix]), use_cache=True).past_key_values
        L = len(prefix)
        logits = model(input_ids=tree.tokens[None], past_key_values=cache, use_cache=True,
                       attention_mask=T.tree_attention_mask(tree.anc, L, model.dtype),
                       position_ids=T.tree_position_ids(tree, nodes, L)).logits[0]
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)

        # After compaction to one accepted path the cache continues like sequential decoding.
        path = path_to(parents, 8)  # 1 -> 4 -> 8, depth 3
        keep_positions(cache, L + 1, L + torch.tensor(path))
        assert cache.get_seq_length() == L + 1 + len(path)
        nxt = model(input_ids=torch.tensor([[5]]), past_key_values=cache, use_cache=True).logits[0, -1]
        ref = model(input_ids=torch.tensor([prefix + [tokens[0]] + [tokens[i] for i in path] + [5]]))
        torch.testing.assert_close(nxt, ref.logits[0, -1], atol=1e-4, rtol=1e-4)

        # Draft scheme: root fed causally, then one level at a time over the growing cache.
        cache = model(input_ids=torch.tensor([prefix + [tokens[0]]]), use_cache=True).past_key_values
        P = len(prefix) + 1
        fed, got = [], {}
        for depth in range(1, tree.depth_bound + 1):
            level = nodes[tree.level(depth)]
            fed.append(level)
            out = model(input_ids=tree.tokens[level][None], past_key_values=cache, use_cache=True,
                        attention_mask=T.tree_attention_mask(tree.anc[level][:, torch.cat(fed)], P, model.dtype),
                        position_ids=T.tree_position_ids(tree, level, P - 1)).logits[0]
            got.update(zip(level.tolist(), out))
        torch.testing.assert_close(torch.stack([got[i] for i in range(1, len(tree))]), expected[1:],
                                   atol=1e-4, rtol=1e-4)


def test_ancestors_and_longest_path():
    tree = T.Tree.rooted(10)
    assert tree.add_nodes([0, 0], [11, 12]) == slice(1, 3)
    a, b = 1, 2
    assert tree.add_nodes([a, b], [13, 14]) == slice(3, 5)
    c, d = 3, 4
    assert tree.anc[c].tolist() == [True, True, False, True, False]
    assert tree.anc[d].tolist() == [True, False, True, False, True]

    def accept(next_tokens):
        path, nxt = T.longest_accepted_path(tree, torch.tensor(next_tokens))
        return path.tolist(), nxt.tolist()

    # target: after root -> 12, after b -> 14, after d -> 99: path 0 -> b -> d, then 99
    assert accept([12, 0, 14, 0, 99]) == ([b, d], [99])
    assert accept([7, 0, 0, 0, 0]) == ([-1, -1], [7])
    assert accept([11, 0, 0, 0, 0]) == ([a, -1], [0])  # a's child is 13, the target wants 0
    # a dead slot (padding) or an unreachable one is never followed
    tree.reach[b] = False
    assert accept([12, 0, 14, 0, 99]) == ([-1, -1], [12])


def test_flash_attention_is_refused(models):
    model = copy.copy(models["llama"]["target"])
    model.config = copy.deepcopy(model.config)
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="attn_implementation"):
        T.check_tree_attention(model)


# --- lossless: output ids equal AR's ---------------------------------------------------------

TREE_CASES = [{}, {"depth": 1}, {"branching": 1}, {"tau": 0}, {"tau": 0, "max_nodes": 3},
              {"depth": 6, "branching": 3, "tau": 0, "max_nodes": 20}]
DYNATREE_CASES = [{}, {"window": 2}, {"adaptive": False, "history": False}, {"history": False},
                  {"tau": 0, "early_stop": 0, "max_nodes": 30, "window": 2}, {"base_depth": 1, "max_depth": 1}]
# padded levels (one host read per round): the same live trees, so the same outputs
PADDED_CASES = [("tree", {"padded": True}), ("tree", {"tau": 0, "max_nodes": 3, "padded": True}),
                ("tree", {"depth": 6, "branching": 3, "tau": 0, "max_nodes": 20, "padded": True}),
                ("dynatree", {"padded": True}),
                ("dynatree", {"tau": 0, "early_stop": 0, "max_nodes": 30, "window": 2, "padded": True})]
CASES = [("tree", p) for p in TREE_CASES] + [("dynatree", p) for p in DYNATREE_CASES] + PADDED_CASES


@pytest.mark.parametrize("draft_kind", ["small", "noisy"])
@pytest.mark.parametrize("arch", ARCHS)
def test_lossless_equals_ar(models, arch, draft_kind):
    target, draft = models[arch]["target"], models[arch]["drafts"][draft_kind]
    accepted_any = 0
    for text in PROMPTS:
        ids = prompt_ids(models, arch, text)
        ref, _, _ = run("ar", target, ids, 24)
        for method, params in CASES:
            out, m, ctx = run(method, target, ids, 24, draft=draft, params=params)
            assert out.new_ids == ref.new_ids, (method, params, text)
            s = out.stats
            assert s["acceptance_rate"] is None or 0 <= s["acceptance_rate"] <= 1
            assert len(ref.new_ids) == 1 + s["rounds"] + s["draft_tokens_accepted"]
            assert s["extra"]["tree_size_per_round"] == s["proposed_per_round"]
            assert all(a <= d for a, d in zip(s["accepted_per_round"], s["extra"]["tree_depth_per_round"]))
            phases = ctx.phase_times()
            assert phases["draft_time_s"] > 0 and phases["verify_time_s"] > 0 and phases["prefill_time_s"] > 0
            assert len(phases["verify_time_per_round_s"]) == s["rounds"]
            assert 0 < m.ttft_s <= m.wall_time_s
            accepted_any += s["draft_tokens_accepted"]
            if "max_nodes" in params:
                assert max(s["proposed_per_round"]) == params["max_nodes"]
            if method == "tree" and params.get("branching") == 1:
                assert max(s["proposed_per_round"]) <= 4  # a chain of depth 4
    if draft_kind == "noisy":  # the test must exercise partial acceptance, not only rejection
        assert accepted_any > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_draft_equal_to_target_accepts_every_level(models, arch):
    target = models[arch]["target"]
    ids = prompt_ids(models, arch, PROMPTS[0])
    ref, _, _ = run("ar", target, ids, 21)
    out, _, _ = run("tree", target, ids, 21, draft=target, params={"tau": 0, "depth": 4})
    s = out.stats
    assert out.new_ids == ref.new_ids
    assert s["accepted_per_round"] == [4] * 4  # 1 + 4 rounds x (4 accepted + 1 own) = 21
    assert s["proposed_per_round"] == [2 + 4 + 8 + 16] * 4
    assert s["acceptance_by_depth"] == [1.0] * 4
    assert s["tokens_per_round"] == 5


@pytest.mark.parametrize("method,params", [("tree", {}), ("dynatree", {}), ("tree", {"padded": True})])
def test_caches_are_reused_not_refilled(models, method, params):
    """After the prefills: the draft only sees pending tokens and tree levels over its kept cache;
    the target runs one forward per round over root + tree nodes, never re-feeding accepted tokens."""
    target = copy.deepcopy(models["llama"]["target"])
    draft = noisy_copy(target, 0.02)
    calls = {"target": [], "draft": []}

    def recorder(name):
        def hook(module, args, kwargs):
            cache = kwargs.get("past_key_values")
            calls[name].append((kwargs["input_ids"].shape[1], cache.get_seq_length() if cache is not None else 0))
        return hook

    target.register_forward_pre_hook(recorder("target"), with_kwargs=True)
    draft.register_forward_pre_hook(recorder("draft"), with_kwargs=True)
    ids = prompt_ids(models, "llama", PROMPTS[2])
    out, _, _ = run(method, target, ids, 30, draft=draft, params=params)
    s = out.stats
    assert out.new_ids == run("ar", models["llama"]["target"], ids, 30)[0].new_ids
    assert calls["target"][0] == (ids.shape[1], 0) and calls["draft"][0] == (ids.shape[1], 0)
    assert all(past > 0 for _, past in calls["draft"][1:] + calls["target"][1:])
    widths = [n for n, _ in calls["target"][1:]]
    fed = sum(n for n, _ in calls["draft"][1:])
    if not params.get("padded"):
        assert widths == [size + 1 for size in s["proposed_per_round"]]
        # every draft forward after the prefill: 1-2 committed tokens, or one tree level
        assert fed <= sum(2 + size for size in s["proposed_per_round"])
    else:  # the padded tree: 1 + 2 + 4 + 8 + 16 slots, fewer only where the budget caps the depth
        assert all(size + 1 <= w <= 31 for size, w in zip(s["proposed_per_round"], widths))
        assert widths[:-2] == [31] * (len(widths) - 2) and max(s["proposed_per_round"]) < 30
        assert fed <= sum(2 + 14 for _ in widths)  # levels 1-3 fed whole: 2 + 4 + 8 slots


@pytest.mark.parametrize("method,params", [("tree", {"tau": 0}), ("dynatree", {"tau": 0, "early_stop": 0}),
                                           ("tree", {"tau": 0, "padded": True})])
@pytest.mark.parametrize("arch", ARCHS)
def test_budget_ending_mid_round(models, arch, method, params):
    target = models[arch]["target"]
    ids = prompt_ids(models, arch, PROMPTS[1])
    ref, _, _ = run("ar", target, ids, 13)
    for n in range(1, 14):
        for draft in (target, models[arch]["drafts"]["noisy"]):
            out, _, _ = run(method, target, ids, n, draft=draft, params=params)
            assert out.new_ids == ref.new_ids[:n], (n, method)


@pytest.mark.parametrize("method", ["tree", "dynatree"])
@pytest.mark.parametrize("arch", ARCHS)
def test_eos_inside_an_accepted_draft(models, arch, method):
    target = models[arch]["target"]
    ids = prompt_ids(models, arch, PROMPTS[0])
    full, _, _ = run("ar", target, ids, 20)
    # an EOS token first produced at index j in 2..4: inside round 1's accepted path (self-draft)
    j = next(j for j in range(2, 5) if full.new_ids[j] not in full.new_ids[:j])
    eos = {full.new_ids[j]}
    ref, _, _ = run("ar", target, ids, 20, eos=eos)
    assert ref.new_ids == full.new_ids[: j + 1]
    params = {"tau": 0} if method == "tree" else {"tau": 0, "early_stop": 0}
    out, _, _ = run(method, target, ids, 20, draft=target, params=params, eos=eos)
    assert out.new_ids == ref.new_ids
    assert out.stats["accepted_per_round"][0] == j  # EOS itself was a draft token, committed and last


def run_rounds(method_id, target, draft, ids, params, max_new_tokens, oracle_ids=None):
    out, _, _ = run(method_id, target, ids, max_new_tokens, draft=draft, params=params, oracle_ids=oracle_ids, seed=7)
    s = out.stats
    return out.new_ids, s["proposed_per_round"], s["accepted_per_round"], s["extra"]["tree_depth_per_round"]


@pytest.mark.parametrize("oracle", [None, 0.7])
@pytest.mark.parametrize("method,params", [("tree", {}), ("tree", {"depth": 5, "branching": 3, "max_nodes": 12}),
                                           ("dynatree", {}), ("dynatree", {"window": 2, "max_nodes": 40}),
                                           ("dynatree", {"adaptive": False, "window": 2})])
@pytest.mark.parametrize("arch", ARCHS)
def test_padded_levels_grow_the_same_trees(models, arch, method, params, oracle):
    """Padded levels change what is fed and read, not the tree: outputs and every round's size,
    acceptance and depth equal those of levels read on the host, oracle draws included."""
    target, draft = models[arch]["target"], models[arch]["drafts"]["noisy"]
    for text in PROMPTS:
        ids = prompt_ids(models, arch, text)
        reference = run("ar", target, ids, 30)[0].new_ids if oracle is not None else None
        params = {**params, "oracle_alpha": oracle}
        read = run_rounds(method, target, draft, ids, params, 30, reference)
        padded = run_rounds(method, target, draft, ids, {**params, "padded": True}, 30, reference)
        assert padded == read, (method, params, text)
        assert read[0] == run("ar", target, ids, 30)[0].new_ids


def test_padded_widths_hold_every_level():
    p = get_method("tree").make_params({"depth": 4, "branching": 2, "max_nodes": 64, "padded": True})
    assert tree_level_widths(p) == [2, 4, 8, 16] and tree_widths(p) == (31, 14)
    p = get_method("dynatree").make_params({"padded": True})
    assert tree_level_widths(p) == [3, 9, 27, 81, 243, 256, 256, 256]
    assert tree_widths(p) == (257, 875)  # the target verifies at most max_nodes + 1 slots
    assert tree_widths(get_method("dynatree").make_params({})) == (257, 257)


# --- dynatree's rules -----------------------------------------------------------------------

def test_history_rule_moves_depth_and_thresholds_in_the_intended_direction():
    p = DynaTreeParams()
    s = ShapeState(p.base_depth, p.high_conf, p.low_conf)
    up = adjust(s, [1.0, 0.8, 0.9], p)  # accepting more than the target: deeper, narrower
    assert up.base_depth == 6 and up.high_conf == pytest.approx(0.85) and up.low_conf == pytest.approx(0.35)
    down = adjust(s, [0.2, 0.5, 0.0], p)  # accepting less: shallower, wider
    assert down.base_depth == 4 and down.high_conf == pytest.approx(0.95) and down.low_conf == pytest.approx(0.45)
    assert adjust(s, [0.7, 0.7], p) == s
    top = ShapeState(p.max_depth, 0.02, 0.01)
    assert adjust(top, [1.0], p) == ShapeState(p.max_depth, 0.0, 0.0)  # clamped
    bottom = ShapeState(1, 0.98, 0.97)
    assert adjust(bottom, [0.0], p) == ShapeState(1, 1.0, 1.0)


def test_confidence_sets_children_and_cumulative_probability_sets_depth():
    p = DynaTreeParams()
    shape = shape_for(ShapeState(p.base_depth, p.high_conf, p.low_conf), p)
    assert shape.num_children(torch.tensor([0.95, 0.9, 0.5, 0.4, 0.1])).tolist() == [1, 2, 2, 2, 3]
    cum = torch.tensor([0.05, 0.3, 0.6])
    assert shape.may_expand(cum, 2).tolist() == [False, True, True]  # early stop below 0.1
    assert shape.may_expand(cum, 5).tolist() == [False, False, True]  # beyond base depth: >= 0.5 only
    assert shape.max_depth == 8
    fixed = shape_for(ShapeState(3, p.high_conf, p.low_conf), DynaTreeParams(adaptive=False))
    assert fixed.max_depth == 3 and fixed.num_children(torch.tensor([0.99, 0.01])).tolist() == [2, 2]


@pytest.mark.parametrize("arch", ARCHS)
def test_history_applied_between_rounds(models, arch):
    target = models[arch]["target"]
    ids = prompt_ids(models, arch, PROMPTS[0])
    chain = {"children_confident": 1, "children_mid": 1, "children_uncertain": 1}
    params = {"window": 2, "tau": 0, "early_stop": 0, **chain}
    out, _, _ = run("dynatree", target, ids, 40, draft=target, params=params)  # a chain, always accepted
    depths = out.stats["extra"]["base_depth_per_round"]
    assert depths[:5] == [5, 5, 6, 6, 7]  # +1 after each window of 2 rounds
    assert out.stats["accepted_per_round"] == out.stats["extra"]["tree_depth_per_round"]
    out, _, _ = run("dynatree", target, ids, 40, draft=target, params={**params, "history": False})
    assert set(out.stats["extra"]["base_depth_per_round"]) == {5}


def test_bad_params_are_named():
    with pytest.raises(ValueError, match="branching"):
        get_method("tree").make_params({"branching": 0})
    with pytest.raises(ValueError, match="tau"):
        get_method("tree").make_params({"tau": 1.5})
    with pytest.raises(ValueError, match="base_depth"):
        get_method("dynatree").make_params({"base_depth": 9})
    with pytest.raises(ValueError, match="low_conf"):
        get_method("dynatree").make_params({"low_conf": 0.95})


# --- through the harness ----------------------------------------------------------------------

@pytest.mark.parametrize("method,params", [("tree", {"depth": 3}), ("dynatree", {"window": 2})])
def test_run_job_writes_statistics(tiny_config, tmp_path, method, params):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["experiments"]["main"]["methods"][method] = {"method": method, "params": params}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = tmp_path / f"{method}.json"
    run_job(load_config(tiny_config), "main", "docs", method, out, progress=False)
    data = load_result(out)
    assert data["method"]["id"] == method and data["models"]["draft"] is not None
    for r in data["records"]:
        assert r["new_tokens"] == 12
        assert r["rounds"] >= 1 and len(r["proposed_per_round"]) == r["rounds"]
        assert 0 <= r["acceptance_rate"] <= 1
        assert r["draft_time_s"] > 0 and r["verify_time_s"] > 0
        assert r["extra"]["tree_size_per_round"] == r["proposed_per_round"]
