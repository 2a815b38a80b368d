"""Entropy-adaptive branching (EAB): N samples that share the computation of their common prefix.

The algorithm as implemented (``eab_deepcopy`` and ``eab_shared_prefix`` differ only in the KV
store, ``decodebench.multisample``; the old ids ``eab_original`` and ``eab_cow`` are aliases):

1. Prefill the prompt once (batch 1). One live path.
2. Each step, for all live paths together: next-token probabilities
   ``softmax(logits / temperature)`` and the normalised entropy ``H / log|V|``.
3. Branching: with ``used`` = live + finished paths and ``remaining = max_paths - used``,
   each path whose entropy exceeds ``entropy_threshold`` (most uncertain first) gets
   ``k = 1 + ceil((branch_factor - 1) * remaining / max_paths)`` children, at most
   ``remaining + 1`` (the branch factor shrinks as the path budget fills; no branching once
   it is full). Every other path has one child. Each child samples its token independently
   (with replacement) from the parent's distribution: one ``torch.multinomial`` over all
   children's rows, from one generator seeded with the generation's seed, so a single path
   without branching samples exactly as naive's sample 0 does.
4. Pruning: if live + finished paths exceed ``max_paths``, the live ones with the lowest
   cumulative log-probability are dropped (stable: ties keep the earlier path).
5. A path ends after an EOS token (when EOS is enabled) or at ``max_new_tokens``. The live
   paths are fed back to the model in ONE batched forward (one row per path).
6. The N samples: if more than N paths ended (``max_paths > N``), the N with the highest
   cumulative log-probability. If fewer than N, a top-up round starts N - P fresh paths
   from the prompt's KV and runs steps 2-5 with a budget of N - P paths, which returns
   exactly N - P (paths are never lost, only pruned back to the budget). The number of top-up
   paths is recorded in ``extra.topup_paths``.

So EAB's samples are not independent draws: siblings share their prefix up to the branch, and
pruning and the final selection favour likely paths (the quality fields of the record,
``decodebench.quality``, show what that costs).

Parameters (``EABParams``) and defaults: ``entropy_threshold`` 0.25, ``branch_factor`` 3,
``max_paths`` None (= N, the protocol's ``num_samples``).

Recorded statistics: ``num_samples`` (= N), ``token_steps`` (prompt once + every live row of
every decode forward; see ``decodebench.multisample``), ``branch_points`` (branching events,
path x step), ``final_paths`` (paths that ended in the first round), and under ``extra``: the
store, each sample's cumulative log-probability and branch steps, pruned paths, top-up paths
and the peak bytes of keys/values held (``kv_computed_peak_bytes``: computed as numel x element
size of the tensors held, not measured; it misses the moment old and new buffers coexist at a
branch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..method_params import EABParams  # noqa: F401 (the method's parameters, declared there)
from ..multisample import STORES, generator, make_store, next_token_distribution, normalised_entropy, sample
from .base import GenContext, GenerationOutput


@dataclass
class Path:
    tokens: list[int]
    logprob: float = 0.0
    branch_steps: list[int] = field(default_factory=list)


@dataclass
class RoundStats:
    token_steps: int = 0
    branch_points: int = 0
    pruned: int = 0
    kv_computed_peak_bytes: int = 0


def children_per_path(entropy: list[float], threshold: float, branch_factor: int, max_paths: int,
                      used: int) -> list[int]:
    """Step 3: how many children each live path gets (1 = no branch)."""
    counts = [1] * len(entropy)
    remaining = max_paths - used
    for i in sorted(range(len(entropy)), key=lambda i: -entropy[i]):
        if remaining <= 0 or entropy[i] <= threshold:
            break
        k = min(1 + math.ceil((branch_factor - 1) * remaining / max_paths), remaining + 1)
        counts[i] = k
        remaining -= k - 1
    return counts


def decode_round(ctx: GenContext, store, logits: torch.Tensor, paths: list[Path], max_paths: int,
                 stats: RoundStats, rng: torch.Generator) -> list[Path]:
    """Steps 2-5 from live `paths` whose next-token logits are `logits` [paths, vocab]; the
    store's rows are those paths. Returns the ended paths, at most `max_paths`."""
    params, budget = ctx.params, ctx.budget
    finished: list[Path] = []
    step = 0
    while paths:
        probs, logprobs = next_token_distribution(logits, ctx.temperature)  # [P, V]
        entropy = normalised_entropy(probs, logprobs).tolist()
        counts = children_per_path(entropy, params.entropy_threshold, params.branch_factor, max_paths,
                                   len(paths) + len(finished))
        rows = torch.repeat_interleave(torch.arange(len(paths), device=logits.device),
                                       torch.tensor(counts, device=logits.device))  # [children]
        tokens = sample(probs.index_select(0, rows), rng)  # [children]
        token_logprobs = logprobs[rows, tokens].tolist()
        ctx.commit(len(tokens))
        stats.branch_points += sum(c > 1 for c in counts)
        children = []
        for row, token, lp in zip(rows.tolist(), tokens.tolist(), token_logprobs):
            parent = paths[row]
            branched = [step] if counts[row] > 1 else []
            children.append(Path(parent.tokens + [token], parent.logprob + lp, parent.branch_steps + branched))
        keep = list(range(len(children)))
        excess = len(children) + len(finished) - max_paths
        if excess > 0:  # step 4
            order = sorted(keep, key=lambda i: -children[i].logprob)  # stable
            keep = sorted(order[: len(children) - excess])
            stats.pruned += excess
        live = []
        for i in keep:
            child = children[i]
            if len(child.tokens) >= budget.max_new_tokens or budget.is_eos(child.tokens[-1]):
                finished.append(child)
            else:
                live.append(i)
        if not live:
            break
        parents = [int(rows[i]) for i in live]
        if parents != list(range(len(paths))):  # branched or lost paths: children copy their parent's rows
            store.select(rows[live])
        paths = [children[i] for i in live]
        logits = store.forward(ctx.target, tokens[live], store.prompt_len + step)  # one batched forward
        stats.token_steps += len(paths)
        stats.kv_computed_peak_bytes = max(stats.kv_computed_peak_bytes, store.kv_bytes())
        step += 1
    return finished


def generate(ctx: GenContext, store_kind: str) -> GenerationOutput:
    """EAB with the KV store `store_kind` (a key of ``decodebench.multisample.STORES``)."""
    if store_kind not in STORES:
        raise ValueError(f"store_kind must be one of {', '.join(STORES)}, got {store_kind!r}")
    with torch.inference_mode():
        return _generate(ctx, store_kind)


def _generate(ctx: GenContext, store_kind: str) -> GenerationOutput:
    n = ctx.num_samples
    max_paths = ctx.params.max_paths or n
    prompt_len = ctx.prompt_ids.shape[1]
    out = ctx.target(input_ids=ctx.prompt_ids, use_cache=True, logits_to_keep=1)
    root_logits = out.logits[:, -1, :]  # [1, V]
    store = make_store(store_kind, out.past_key_values, prompt_len, ctx.budget.max_new_tokens)
    del out
    rng = generator(ctx.device, ctx.seed)
    stats = RoundStats(token_steps=prompt_len)
    with store.session(ctx.target):
        store.start(1)  # the prompt's KV is kept: the parent of top-up paths
        ended = decode_round(ctx, store, root_logits, [Path([])], max_paths, stats, rng)
        final_paths = len(ended)
        topup = n - len(ended)
        if topup > 0:
            store.start(topup)
            ended += decode_round(ctx, store, root_logits.expand(topup, -1),
                                  [Path([]) for _ in range(topup)], topup, stats, rng)
    if len(ended) > n:
        best = sorted(range(len(ended)), key=lambda i: -ended[i].logprob)[:n]
        ended = [ended[i] for i in sorted(best)]
    if len(ended) != n:
        raise RuntimeError(f"eab returned {len(ended)} samples, expected {n}")
    samples = [p.tokens for p in ended]
    return GenerationOutput(
        new_ids=samples[0], samples=samples,
        stats={"num_samples": n, "token_steps": stats.token_steps, "branch_points": stats.branch_points,
               "final_paths": final_paths,
               "extra": {"cache": store_kind, "sample_logprob": [p.logprob for p in ended],
                         "sample_branch_steps": [p.branch_steps for p in ended],
                         "pruned_paths": stats.pruned, "topup_paths": max(topup, 0),
                         "kv_computed_peak_bytes": stats.kv_computed_peak_bytes}})
