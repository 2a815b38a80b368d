"""Host synchronisations per round: the decoding loops read the device only where the
algorithm needs a value on the host (to commit tokens, or to size the next forward).

On CUDA each read below waits for every queued kernel: ``.item()``, ``.tolist()``, ``int()``,
``float()``, ``bool()`` (an ``if`` on a tensor), ``__index__``, ``nonzero`` and boolean-mask
indexing (its output size lives on the device). A ``TorchFunctionMode`` counts those calls
made by the loop, outside the models' forwards (forward hooks mark them), on CPU, where the
same calls would synchronise on a GPU. Bounds (docs/methods.md, "Loops on the device"):

- ar: one per token (it is committed as soon as it exists);
- linear: one per round (the target's choices and the drafts, read together);
- tree / dynatree: one per draft level (its survivors size the next draft forward) and one
  for the verification: at most depth + 2 per round (a last level that adds no node still
  costs its read), plus one for the prefill's token;
- tree / dynatree with ``padded: true``: one per round (the verdict), every level grown at its
  largest width on the device.
"""

import collections
import copy

import pytest
import torch
from test_ar import PROMPTS
from torch.overrides import TorchFunctionMode
from transformers import AutoModelForCausalLM, AutoTokenizer

from decodebench.measurement import Unmeasured
from decodebench.methods import Budget, GenContext, get_method

READS = {"item", "tolist", "__int__", "__float__", "__bool__", "__index__", "nonzero", "argwhere",
         "masked_select", "unique", "unique_consecutive"}


class HostReads(TorchFunctionMode):
    """Counts the calls that make the host wait for the device, outside model forwards."""

    def __init__(self, *models):
        super().__init__()
        self.calls = collections.Counter()
        self.depth = 0  # > 0 inside a model's forward
        self.handles = []
        for model in (m for m in models if m is not None):
            self.handles.append(model.register_forward_pre_hook(lambda *_: self._enter(1)))
            self.handles.append(model.register_forward_hook(lambda *_: self._enter(-1)))

    def _enter(self, step):
        self.depth += step

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        mask_index = name in ("__getitem__", "__setitem__") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool
            for i in (args[1] if isinstance(args[1], tuple) else (args[1],)))
        if self.depth == 0 and (name in READS or mask_index):
            self.calls[name] += 1
        return func(*args, **(kwargs or {}))

    def close(self):
        for h in self.handles:
            h.remove()


@pytest.fixture(scope="module")
def models(tiny_models):
    target = AutoModelForCausalLM.from_pretrained(tiny_models["llama"], attn_implementation="sdpa").eval()
    draft = copy.deepcopy(target)  # a draft that agrees only partly: rounds of every length
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.01)
    tok = AutoTokenizer.from_pretrained(tiny_models["llama"])
    return target, draft, [tok(text, return_tensors="pt").input_ids for text in PROMPTS]


def reads_per_round(method, params, target, draft, ids, new_tokens=24, oracle_ids=None):
    """(reads before the first round, [reads of each round], rounds, output)."""
    spec = get_method(method)
    ctx = GenContext(target=target, draft=draft if spec.needs_draft else None, prompt_ids=ids,
                     budget=Budget(new_tokens, None), params=spec.make_params(params), clock=Unmeasured(),
                     oracle_ids=oracle_ids)
    reads = HostReads(target, draft)
    marks = []
    record = ctx.add_round
    ctx.add_round = lambda r: (marks.append(reads.total), record(r))
    first = {}
    phase = ctx.phase

    def marking_phase(name):  # reads until the first round's drafting starts: the prefill's
        if name != "prefill":
            first.setdefault("start", reads.total)
        return phase(name)

    ctx.phase = marking_phase
    try:
        with reads:
            out = spec.generate(ctx)
    finally:
        reads.close()
    before = first.get("start", 0)
    per_round = [b - a for a, b in zip([before] + marks, marks)]
    return before, per_round, ctx.rounds, out, reads


@pytest.mark.parametrize("prompt", range(len(PROMPTS)))
def test_ar_reads_once_per_token(models, prompt):
    target, _, prompts = models
    _, _, _, out, reads = reads_per_round("ar", {}, target, None, prompts[prompt])
    assert reads.total == len(out.new_ids), reads.calls


@pytest.mark.parametrize("params", [{"k": 3}, {"k": 5}, {"k": 3, "lookup": 2}])
@pytest.mark.parametrize("prompt", range(len(PROMPTS)))
def test_linear_reads_once_per_round(models, params, prompt):
    target, draft, prompts = models
    before, per_round, rounds, _, reads = reads_per_round("linear", params, target, draft, prompts[prompt])
    assert before == (1 if "lookup" in params else 0), reads.calls  # lookup's host copy of the prompt
    assert per_round == [1] * len(rounds), reads.calls


@pytest.mark.parametrize("method,params", [("tree", {}), ("tree", {"depth": 5, "branching": 3, "tau": 0.0}),
                                           ("dynatree", {})])
@pytest.mark.parametrize("prompt", range(len(PROMPTS)))
def test_tree_reads_once_per_level_and_once_to_verify(models, method, params, prompt):
    target, draft, prompts = models
    before, per_round, rounds, _, reads = reads_per_round(method, params, target, draft, prompts[prompt])
    assert before == 1, reads.calls  # the prefill's first token
    assert set(reads.calls) <= {"tolist", "__int__"}, reads.calls  # no nonzero, masks, bool()
    assert all(n <= r.depth + 2 for n, r in zip(per_round, rounds)), (per_round, [r.depth for r in rounds])
    max_depth = get_method(method).make_params(params)
    max_depth = getattr(max_depth, "depth", None) or max_depth.max_depth
    assert max(per_round) <= max_depth + 2


@pytest.mark.parametrize("method,params", [("tree", {"padded": True}),
                                           ("tree", {"depth": 5, "branching": 3, "tau": 0.0, "padded": True}),
                                           ("dynatree", {"padded": True, "max_nodes": 40}),
                                           ("tree", {"padded": True, "oracle_alpha": 0.7})])
@pytest.mark.parametrize("prompt", range(len(PROMPTS)))
def test_padded_tree_reads_once_per_round(models, method, params, prompt):
    target, draft, prompts = models
    oracle_ids = None
    if "oracle_alpha" in params:
        oracle_ids = reads_per_round("ar", {}, target, None, prompts[prompt])[3].new_ids
    before, per_round, rounds, _, reads = reads_per_round(method, params, target, draft, prompts[prompt],
                                                          oracle_ids=oracle_ids)
    assert before == 1, reads.calls  # the prefill's first token
    assert per_round == [1] * len(rounds), reads.calls
    assert set(reads.calls) == {"tolist", "__int__"}, reads.calls
