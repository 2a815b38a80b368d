"""Greedy linear speculative decoding: a draft proposes K tokens, the target verifies them at once.

Algorithm, as implemented (parameter ``k``, default 4; batch size 1):

    seq := prompt; both KV caches empty
    repeat (one round):
      k_r := min(k, remaining_budget - 1)        # the round can commit at most k_r + 1 tokens
      draft:  feed the tokens of seq its cache lacks (the whole prompt in round 1, afterwards
              1 token, or 2 when every draft was accepted), argmax -> d_1; then feed d_i one at a
              time -> d_{i+1}, until d_1..d_{k_r}: k_r forwards, the cache is never re-prefilled
      verify: ONE target forward over [tokens of seq its cache lacks] + [d_1..d_{k_r}]: in
              round 1 that is the prompt (prefill and first verification in one forward, as in
              transformers' assisted generation), afterwards the last committed token;
              t_i := argmax of the target's logits after seq + d_1..d_{i-1}, i = 1..k_r+1
      accept: a := number of leading i with d_i == t_i; commit t_1..t_{a+1}
              (= d_1..d_a plus the target's own next token), cut after the first EOS
      crop:   target cache to len(seq) - 1 (everything committed except the newest token,
              whose keys/values the next forward computes); draft cache to
              min(its length, len(seq) - 1) (drops the rejected drafts)
    until EOS was committed or max_new_tokens are committed

Output ids equal greedy AR's (every committed token is the target's argmax after the committed
prefix). The budget is never exceeded: k_r shrinks in the last round (k_r = 0 is a plain target
step). The first tokens exist after round 1's target forward, which commits up to k_1 + 1 of
them at once: time to first token includes round 1's drafting, and the record says how many
tokens that first commit held (``tokens_at_first_commit``). Every greedy choice (draft and
target) is an argmax over float32 logits.

Statistics per round (``methods.speculative.Round``): proposed = depth = k_r, accepted = draft
tokens committed (a, or fewer when an EOS cut the commit). Without an EOS cut,
new tokens = sum(accepted) + rounds. The draft's logits must cover the target's vocabulary.

Lookup, then model (``lookup`` = n > 0, ``lookup_tokens`` = L, default off): each round first
tries prompt lookup on seq (the last n, n-1, ..., 1 tokens; the first earlier occurrence; the up
to min(L, remaining_budget - 1) tokens that followed it, as transformers' prompt lookup does);
when it finds some, they are the round's drafts and the draft model does not run (its cache
catches up in its next round); otherwise the draft model proposes k tokens. Verification and
acceptance are unchanged, so the output still equals greedy AR's.

Oracle draft mode (``oracle_alpha`` = alpha, default None = off; ``methods.oracle``): each model
draft d_i is, with probability alpha, replaced by greedy AR's token at its position before the
draft is fed it (the draft's forwards are unchanged); needs ``ctx.oracle_ids``.

On the device (docs/methods.md, "Loops on the device"): both caches are ``kvcache.KVCache``s
(capacity prompt + max_new_tokens + the widest round, written in place; a crop sets the
length), seq lives in a preallocated device buffer, and drafting never reads a token on the
host: each draft token is fed back as a device tensor. A round synchronises with the device
once, when it reads the target's choices together with the drafts (one ``.tolist()``) to
commit them; lookup works on a host copy of seq, extended with each commit.
"""

from __future__ import annotations

import torch

from ..kvcache import KVCache, cache_length, capacity_for, crop_to
from ..method_params import (
    CACHE_WIDTH,
    LinearParams,  # noqa: F401 (the method's parameters, declared there)
)
from .base import GenContext, GenerationOutput, greedy
from .oracle import Oracle
from .speculative import Round


def lookup(seq: list[int], max_ngram: int, max_tokens: int) -> list[int]:
    """Prompt lookup: for n = max_ngram down to 1, the tokens that followed the first earlier
    occurrence of the last n tokens of `seq` (at most `max_tokens`); [] when none occurs."""
    for n in range(min(max_ngram, len(seq) - 1), 0, -1):
        tail = seq[-n:]
        for start in range(len(seq) - n):
            if seq[start:start + n] == tail:
                return seq[start + n:start + n + max_tokens]
    return []


def _vocab_size(model) -> int:
    return model.get_output_embeddings().weight.shape[0]


@torch.inference_mode()
def propose(draft, cache: KVCache, seq: torch.Tensor, k: int, vocab_size: int,
            oracle: Oracle | None = None, position: int = 0) -> torch.Tensor:
    """k greedy draft tokens after `seq` [1, n], appending to the draft's `cache`. -> [1, k]

    `cache` must hold a prefix of `seq` (at most n - 1 positions); the tokens it lacks are
    fed in the first forward. With an `oracle`, draft i may be replaced by AR's token at output
    position `position` + i (the first draft's) before it is fed."""
    drafts = seq.new_empty((1, k))  # [1, k]
    token = seq[:, cache_length(cache):]  # [1, n - cached]
    for i in range(k):
        logits = draft(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        if logits.shape[-1] != vocab_size:
            raise ValueError(f"draft logits cover {logits.shape[-1]} tokens but the target's vocabulary has "
                             f"{vocab_size}: linear speculation needs the draft to score the target's vocabulary")
        token = greedy(logits[:, -1:, :])  # [1, 1]
        if oracle is not None and (true := oracle.replacement(position + i)) is not None:
            token = token.new_tensor([[true]])
        drafts[:, i:i + 1] = token
    return drafts


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    if ctx.draft is None:
        raise ValueError("method 'linear' needs a draft model (models.draft in the config)")
    target, draft, budget, p = ctx.target, ctx.draft, ctx.budget, ctx.params
    vocab_size = _vocab_size(target)
    oracle = Oracle.of(ctx)
    capacity = capacity_for(ctx.prompt_ids, budget.max_new_tokens, CACHE_WIDTH["linear"](p))
    target_cache, draft_cache = KVCache(capacity), KVCache(capacity)
    ids = ctx.prompt_ids.new_empty((1, capacity))  # [1, capacity]: prompt + committed tokens, on the device
    n = ctx.prompt_ids.shape[1]  # committed length of `ids`
    ids[:, :n] = ctx.prompt_ids
    host_seq = ctx.prompt_ids[0].tolist() if p.lookup else None  # lookup's copy of ids[:n], kept on the host
    new_ids: list[int] = []
    done = False
    while not done:
        room = budget.max_new_tokens - len(new_ids) - 1
        with ctx.phase("draft"):
            found = lookup(host_seq, p.lookup, min(p.lookup_tokens, room)) if host_seq is not None and room > 0 else []
            if found:  # the draft model does not run; its cache catches up in its next round
                drafts = ids.new_tensor([found])  # [1, k]
            else:
                drafts = propose(draft, draft_cache, ids[:, :n], min(p.k, room), vocab_size,
                                 oracle, len(new_ids))  # [1, k]
            k = drafts.shape[1]
        with ctx.phase("verify"):
            fed = torch.cat([ids[:, cache_length(target_cache):n], drafts], dim=1)  # [1, m + k]
            logits = target(input_ids=fed, past_key_values=target_cache, use_cache=True,
                            logits_to_keep=k + 1).logits  # [1, k + 1, vocab]
            choice = greedy(logits[0])  # [k + 1]: the target's token after seq + d_1..d_i
            # the round's one host synchronisation: the target's choices and the drafts, together
            row = torch.cat([choice, drafts[0]]).tolist()
            targets, proposed = row[:k + 1], row[k + 1:]
            matches = next((i for i in range(k) if proposed[i] != targets[i]), k)
            commit = targets[:matches + 1]
            eos_at = next((i for i, t in enumerate(commit) if budget.is_eos(t)), None)
            if eos_at is not None:
                commit = commit[:eos_at + 1]
            ids[:, n:n + len(commit)] = choice[None, :len(commit)]
            n += len(commit)
            crop_to(target_cache, n - 1)
            crop_to(draft_cache, n - 1)  # a no-op when the draft's cache is shorter
        if host_seq is not None:
            host_seq.extend(commit)
        new_ids.extend(commit)
        ctx.commit(len(commit))
        ctx.add_round(Round(proposed=k, accepted=min(matches, len(commit)), depth=k))
        done = eos_at is not None or len(new_ids) >= budget.max_new_tokens
    return GenerationOutput(new_ids=new_ids, stats=ctx.round_stats())
