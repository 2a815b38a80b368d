"""transformers' assisted generation: ``target.generate(assistant_model=draft, do_sample=False)``.

Algorithm (transformers' ``_assisted_decoding`` with ``AssistedCandidateGenerator``): each round
the draft greedily generates up to ``num_assistant_tokens`` candidates with its own KV cache;
the target scores prompt/last token + candidates in one forward (round 1 includes the prefill);
the longest prefix of candidates equal to the target's argmax is committed plus the target's
next token; both caches are cropped. Output ids equal greedy AR's.

Parameters (set on ``draft.generation_config`` for the call, because transformers reads them
there and silently ignores the generate() keywords; the draft's config is restored afterwards):

- ``num_assistant_tokens`` (default 4): candidates per round (K).
- ``schedule`` (default "constant"; or "heuristic"): transformers' ``num_assistant_tokens_schedule``.
  "heuristic" adds 2 after a fully accepted round and subtracts 1 (minimum 1) otherwise. Since
  the draft's config is restored after every generation, every prompt starts again from
  ``num_assistant_tokens`` (transformers' own "heuristic" would carry it over between calls).
- ``confidence_threshold`` (default 0.0 = off): transformers' ``assistant_confidence_threshold``;
  drafting stops early once the draft's top probability falls below it. transformers' own
  default is 0.4; ours is off so that every round proposes exactly K tokens, like ``linear``.

Budget: ``max_new_tokens`` is passed; with EOS disabled ``eos_token_id=None`` is passed as a
keyword (a ``GenerationConfig`` field left ``None`` would be filled from the model's config), and
set on the draft's config too (else the draft stops drafting at its EOS), so exactly
``max_new_tokens`` are produced and an EOS id is an ordinary token, as in AR. No
``min_new_tokens``: it masks EOS logits and would change greedy choices.

Statistics: the candidate generator is wrapped for the call (``_get_candidate_generator``, a
private hook of transformers 5.x) so that each round records proposed = candidates submitted and
accepted = candidates committed (the leading committed tokens equal to candidates), and times
``get_candidates`` as the draft phase and the rest of the round up to
``update_candidate_strategy`` (target forward, acceptance, cache crops) as the verify phase.
Commits: a streamer receives each round's committed tokens from generate() and commits them
(the first round, which encodes the prompt, may commit several at once). Greedy choices are
transformers' argmax over the logits it upcasts to float32, the same choice as
``methods.greedy``. If the hook stops firing in a later transformers, generate raises instead of
reporting nothing.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from transformers import GenerationMixin
from transformers.generation.streamers import BaseStreamer

from ..method_params import HFAssistedParams  # noqa: F401 (the method's parameters, declared there)
from .base import GenContext, GenerationOutput
from .speculative import Round


class _CommitStreamer(BaseStreamer):
    """generate() puts the prompt first, then each round's committed tokens: one commit each."""

    def __init__(self, ctx: GenContext):
        self.ctx = ctx
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.ctx.commit(len(value.reshape(-1).tolist()))  # host ids, as every method commits

    def end(self) -> None:
        pass


@contextlib.contextmanager
def _recording_rounds(ctx: GenContext):
    """Wrap the candidate generator that generate() builds on ctx.target, for one call.

    The wrappers are instance attributes closing over the generator's own bound methods, a
    reference cycle; they are deleted when the call ends, so the generator (and the draft's KV
    cache it holds) is freed at once, not at some later garbage collection."""
    model = ctx.target
    build = model._get_candidate_generator  # bound method of transformers' GenerationMixin
    built = []

    def recording_build(*args, **kwargs):
        generator = build(*args, **kwargs)
        get_candidates, update = generator.get_candidates, generator.update_candidate_strategy
        pending = {}

        def timed_get_candidates(input_ids, **kw):
            with ctx.phase("draft"):
                candidate_ids, candidate_logits = get_candidates(input_ids, **kw)
            pending["start"] = input_ids.shape[1]
            pending["candidates"] = candidate_ids[0, input_ids.shape[1]:]  # [proposed]
            pending["verify"] = ctx.phase("verify")
            pending["verify"].__enter__()  # closed in recorded_update, at the end of the round
            return candidate_ids, candidate_logits

        def recorded_update(input_ids, scores, num_matches):
            pending.pop("verify").__exit__(None, None, None)
            candidates = pending["candidates"]
            committed = input_ids[0, pending["start"]:].to(candidates.device)  # [accepted + 1], or less at EOS/budget
            n = min(len(candidates), len(committed))
            accepted = int((committed[:n] == candidates[:n]).int().cumprod(dim=0).sum())
            ctx.add_round(Round(proposed=len(candidates), accepted=accepted, depth=len(candidates)))
            return update(input_ids, scores, num_matches)

        generator.get_candidates = timed_get_candidates
        generator.update_candidate_strategy = recorded_update
        built.append(generator)
        return generator

    # an instance attribute shadows the method (nn.Module types attributes as tensors or modules)
    model._get_candidate_generator = recording_build  # type: ignore[assignment]
    try:
        yield
    finally:
        del model._get_candidate_generator
        for generator in built:  # break the cycles (see the docstring)
            del generator.get_candidates, generator.update_candidate_strategy
        built.clear()


def hf_generate(ctx: GenContext, **assist) -> GenerationOutput:
    """Run target.generate with `assist` (assistant_model=... or prompt_lookup_num_tokens=...),
    greedy, within the budget; record rounds and commits. Shared with ``pld``."""
    budget, prompt = ctx.budget, ctx.prompt_ids  # prompt: [1, n]
    eos = sorted(budget.eos_token_ids) if budget.eos_token_ids is not None else None
    target = ctx.target
    assert isinstance(target, GenerationMixin)  # every causal LM generates (typed so from transformers 5)
    pad = target.generation_config.pad_token_id
    with _recording_rounds(ctx):
        out = target.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                  max_new_tokens=budget.max_new_tokens, eos_token_id=eos,
                                  pad_token_id=pad if pad is not None else (eos[0] if eos else 0),
                                  streamer=_CommitStreamer(ctx), **assist)
    new_ids = out[0, prompt.shape[1]:].tolist()
    if new_ids and not ctx.rounds:
        raise RuntimeError("transformers' assisted generation ran no recorded round: the candidate-generator "
                           "hook (_get_candidate_generator) no longer fires in this transformers version")
    return GenerationOutput(new_ids=new_ids, stats=ctx.round_stats())


@contextlib.contextmanager
def assistant_settings(draft, **fields):
    """Set fields on draft.generation_config for one call, then restore it."""
    saved = draft.generation_config
    draft.generation_config = copy.deepcopy(saved)
    for name, value in fields.items():
        setattr(draft.generation_config, name, value)
    try:
        yield
    finally:
        draft.generation_config = saved


def generate(ctx: GenContext) -> GenerationOutput:
    if ctx.draft is None:
        raise ValueError("method 'hf_assisted' needs a draft model (models.draft in the config)")
    p, eos = ctx.params, ctx.budget.eos_token_ids
    with assistant_settings(ctx.draft, num_assistant_tokens=p.num_assistant_tokens,
                            num_assistant_tokens_schedule=p.schedule,
                            assistant_confidence_threshold=float(p.confidence_threshold),
                            eos_token_id=sorted(eos) if eos is not None else None):
        return hf_generate(ctx, assistant_model=ctx.draft)
