"""Greedy speculative decoding with a fixed-shape draft tree, verified in one target forward.

Each round (``speculate``), with the last committed token as the tree's root:

1. Draft (``grow_tree``): the draft feeds the committed tokens it has not seen yet (the root
   last) over its own KV cache, which is kept across rounds. Then level by level, on the
   device (``expand_level``): every node of the last level that may expand gets its
   top-``branching`` draft tokens as children, with cumulative draft log-prob = parent's +
   the token's. A child whose cumulative probability is below ``tau`` is pruned; the
   survivors of a level are kept in order of cumulative probability while the tree has fewer
   than ``max_nodes`` draft nodes. The new level is fed to the draft as one batch with a tree
   attention mask (each node sees the draft's prefix and its own ancestors only; siblings
   never see each other), until depth ``depth``. The last level is not fed (its children are
   not needed).
2. Verify (``verify_tree``): the target feeds the root and all draft nodes in ONE forward,
   node at depth d at position prefix_len + d, with the tree mask (``decodebench.token_tree``).
   Its argmax at each node is its greedy choice after that node's path; the longest path it
   agrees with is found on the device, then read with everything the round needs to know
   (``Verdict``) in one transfer.
3. Commit the accepted path plus the target's own token after it. The target's cache keeps
   the prefix, the root and the accepted nodes' keys/values, compacted
   (``kvcache.keep_positions``; nothing is re-computed); the draft's cache likewise keeps the
   accepted nodes it was fed, and the rest of the committed tokens wait for its next round.

Host reads: by default each level is read on the host (its size and how many of its nodes
may expand: the next draft forward feeds exactly those), at most depth + 1 reads plus the
verdict per round. With ``padded = True`` every level is grown at the most slots it could
need (``method_params.tree_level_widths``), its dead slots masked out of every live node's
view, every slot below the last level is fed, the tree always grows to the round's depth cap
and the target verifies the live slots first in a fixed width: one host read per round, the
verdict, for more draft and verification tokens (a GPU's trade; on a CPU the tokens cost
more than the reads). Both modes grow the same live trees (same nodes, same order), so the
same outputs and per-round statistics (tested).

Each round's depth is capped so that the round commits at most the remaining budget; the
output stops after an EOS among the committed tokens (EOS included), as in ``ar``. Outputs
equal greedy AR's (up to floating-point ties). Statistics per round (``speculative.Round``):
proposed = draft nodes in the tree, accepted = draft tokens committed, depth = tree depth.
The target's prefill (``logits_to_keep=1``) commits the first token; it and the draft's
prefill are timed as phase "prefill", outside every round. Greedy choices (the target's at
each node) are argmaxes over float32 logits; the draft's tree grows from float32 log-probs.

Parameters (defaults): depth D = 4, branching B = 2, tau = 0.05 (tau = 0 prunes nothing),
max_nodes = 64 (draft nodes per tree, root excluded), oracle_alpha = None (off; the oracle
draft mode of ``methods.oracle``: each node of the tree's first path, the draft's most
probable one, is replaced with probability alpha by greedy AR's token at its position before
it is fed to the draft; needs ``ctx.oracle_ids``), padded = False.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .. import token_tree as T
from ..kvcache import KVCache, cache_length, capacity_for, keep_positions
from ..method_params import TreeParams, tree_widths
from .base import GenContext, GenerationOutput, greedy
from .oracle import Oracle
from .speculative import Round

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass
class TreeShape:
    """How one round's draft tree grows."""
    max_depth: int
    max_nodes: int
    tau: float
    num_children: Callable[[torch.Tensor], torch.Tensor]  # top-1 draft prob at nodes [m] -> children [m]
    may_expand: Callable[[torch.Tensor, int], torch.Tensor]  # (cumulative prob [m], depth) -> bool [m]
    max_children: int  # the most children num_children gives a node (the top-k width, fixed per shape)


@dataclass
class DraftState:
    model: PreTrainedModel
    cache: object  # KVCache over the committed tokens except `pending`
    pending: list[int]  # committed tokens the draft has not been fed yet; the last is the root
    prefix_len: int | None = None  # this round: cache length once `pending` was fed (root included)
    fed: list[torch.Tensor] = field(default_factory=list)  # this round: the slots fed after the prefix, in cache order


@dataclass
class Level:
    """A level chosen on the device, `width` slots, live nodes first."""
    tokens: torch.Tensor  # [width] long
    parents: torch.Tensor  # [width] long (slots of the previous level)
    logprobs: torch.Tensor  # [width] float32 cumulative
    alive: torch.Tensor  # [width] bool
    expand: torch.Tensor  # [width] bool
    reach: torch.Tensor  # [width] bool

    def head(self, n: int) -> Level:
        return Level(*(t[:n] for t in (self.tokens, self.parents, self.logprobs, self.alive, self.expand,
                                       self.reach)))


def expand_level(tree: T.Tree, logits: torch.Tensor, fed: torch.Tensor, shape: TreeShape, depth: int, width: int,
                 room: int | torch.Tensor) -> Level:
    """Level `depth` of the tree, chosen on the device without a host read.

    `logits` [f, vocab] are the draft's at the fed slots `fed` [f] of the previous level. Each
    fed node that may expand offers its top ``num_children`` tokens; a child survives if its
    cumulative probability is >= tau; the survivors are ranked by cumulative log-prob
    (descending, ties in fed then top-k order) and the first `room` of them are the level's
    nodes. The level has `width` slots (>= the nodes it can hold): its nodes, then padding."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # [f, vocab]
    counts = torch.where(tree.expand[fed], shape.num_children(logprobs.max(dim=-1).values.exp()), 0)  # [f]
    k = min(shape.max_children, logprobs.shape[-1])
    top_lp, top_tok = logprobs.topk(k, dim=-1)  # [f, k]
    cum = (tree.logprobs[fed][:, None] + top_lp).flatten()  # [f * k]
    keep = (torch.arange(k, device=cum.device)[None, :] < counts[:, None]).flatten() & (cum.exp() >= shape.tau)
    # survivors first, each group by cumulative log-prob: two stable sorts (a survivor at -inf,
    # possible with tau = 0, still ranks before every pruned child)
    order = torch.argsort(cum, descending=True, stable=True)
    order = order[torch.argsort(keep[order].to(torch.uint8), descending=True, stable=True)][:width]
    alive = keep[order] & (torch.arange(order.shape[0], device=cum.device) < room)
    cum = cum[order]
    return Level(tokens=top_tok.flatten()[order], parents=fed[order // k], logprobs=cum, alive=alive,
                 expand=alive & shape.may_expand(cum.exp(), depth), reach=alive)


def follow_lead(level: Level, lead: torch.Tensor, start: int, replacement: int | None) -> torch.Tensor:
    """The oracle on the tree's first path, on the device: the level's first node whose parent
    is `lead` [1] (the most probable child; none if -1) gets `replacement` (if not None), and a
    sibling already carrying that token becomes unreachable. Returns the new lead's slot [1]."""
    match = level.alive & (level.parents == lead)
    found = match.any(dim=0, keepdim=True)
    first = match.to(torch.uint8).argmax(dim=0, keepdim=True)
    if replacement is not None:
        hit = found & (torch.arange(len(match), device=match.device) == first)
        level.reach = level.reach & ~(match & (level.tokens == replacement) & ~hit)
        level.tokens = torch.where(hit, replacement, level.tokens)
    return torch.where(found, start + first, -1)


def grow_tree(draft: DraftState, shape: TreeShape, max_depth: int, padded: bool = False,
              replacements: list[int | None] | None = None) -> T.Tree:
    """Draft a tree under the root `draft.pending[-1]`, at most `max_depth` levels deep.

    ``padded = False``: each level holds exactly its nodes, read on the host (one read per
    level: how many nodes, how many may expand); only the nodes that may expand are fed to
    the draft, and growth stops when a level adds nothing or nothing may expand.
    ``padded = True``: each level has the most slots it could need (``method_params.
    tree_level_widths``), every slot of a level below the last is fed (padding included,
    masked out of every live node's view) and the tree grows to `max_depth`: no host read.
    Both give the same live nodes. `replacements[d - 1]`: the oracle's token for the first
    path's node at depth d, or None (no oracle: `replacements` None)."""
    device = draft.model.device
    tree = T.Tree.rooted(draft.pending[-1], device)
    draft.prefix_len, draft.fed = None, []
    if max_depth < 1:
        return tree
    model = draft.model
    out = model(input_ids=torch.tensor([draft.pending], device=device), past_key_values=draft.cache,
                use_cache=True, logits_to_keep=1)
    draft.pending, draft.prefix_len = [], cache_length(draft.cache)
    logits = out.logits[0]  # [fed, vocab]: the root's
    fed = torch.zeros(1, dtype=torch.long, device=device)
    lead = None if replacements is None else torch.zeros(1, dtype=torch.long, device=device)
    used = 0  # padded = False: draft nodes so far
    for depth in range(1, max_depth + 1):
        start = len(tree)
        if padded:
            width = min(fed.shape[0] * shape.max_children, shape.max_nodes)
            level = expand_level(tree, logits, fed, shape, depth, width, shape.max_nodes - tree.alive[1:].sum())
        else:
            width = min(fed.shape[0] * shape.max_children, shape.max_nodes - used)
            level = expand_level(tree, logits, fed, shape, depth, width, width)
            count, expandable = torch.stack([level.alive.sum(), level.expand.sum()]).tolist()  # the level's read
            if count == 0:
                break
            level, used = level.head(count), used + count
        if lead is not None and replacements is not None:
            lead = follow_lead(level, lead, start, replacements[depth - 1])
        slots = tree.add_level(level.tokens, level.parents, level.logprobs, level.alive, level.expand, level.reach)
        if depth == max_depth or (not padded and (used >= shape.max_nodes or expandable == 0)):
            break
        if padded:
            fed = torch.arange(slots.start, slots.stop, device=device)
        else:  # the nodes that may expand, in level order
            fed = slots.start + torch.argsort((~level.expand).to(torch.uint8), stable=True)[:expandable]
        draft.fed.append(fed)
        keys = torch.cat(draft.fed)
        mask = T.tree_attention_mask(tree.anc[fed][:, keys], draft.prefix_len, model.dtype)
        logits = model(input_ids=tree.tokens[fed][None], attention_mask=mask,
                       position_ids=T.tree_position_ids(tree, fed, draft.prefix_len - 1),
                       past_key_values=draft.cache, use_cache=True).logits[0]
    return tree


@dataclass
class Verdict:
    """A round's outcome, read from the device in one transfer."""
    path: list[int]  # accepted slots, from depth 1
    tokens: list[int]  # their tokens
    positions: list[int]  # their index in the verification forward
    draft_offsets: list[int]  # their position after the draft's prefix, -1 if not fed
    next_token: int  # the target's own token after the path
    nodes: int  # live draft nodes of the tree
    depth: int  # the tree's depth (deepest live node)


def verify_tree(target: PreTrainedModel, cache, tree: T.Tree, width: int, draft: DraftState) -> Verdict:
    """One target forward over the root and the tree's live nodes (at most `width` slots; a
    padded tree's live slots go first), acceptance on the device, then ONE host read (the
    verdict); the cache keeps the prefix, the root and the accepted path."""
    device = tree.device
    prefix_len = cache_length(cache)
    n = len(tree)
    every = torch.arange(n, device=device)
    sel = every if width >= n else torch.argsort((~tree.alive).to(torch.uint8), stable=True)[:width]
    logits = target(input_ids=tree.tokens[sel][None],
                    attention_mask=T.tree_attention_mask(tree.anc[sel][:, sel], prefix_len, target.dtype),
                    position_ids=T.tree_position_ids(tree, sel, prefix_len),
                    past_key_values=cache, use_cache=True).logits  # [1, verified, vocab]
    target_next = torch.zeros(n, dtype=torch.long, device=device).scatter(0, sel, greedy(logits[0]))
    path, next_token = T.longest_accepted_path(tree, target_next)
    at = path.clamp(min=0)
    position = torch.full((n,), -1, dtype=torch.long, device=device).scatter(0, sel, every[:len(sel)])
    fed_at = torch.full((n,), -1, dtype=torch.long, device=device)
    if draft.fed:
        fed = torch.cat(draft.fed)
        fed_at = fed_at.scatter(0, fed, torch.arange(len(fed), device=device))
    stats = torch.stack([tree.alive[1:].sum(), (tree.levels * tree.alive).max()])
    d = len(path)
    read = torch.cat([path, tree.tokens[at], position[at], fed_at[at], next_token, stats]).tolist()  # the read
    accepted = sum(s >= 0 for s in read[:d])
    verdict = Verdict(path=read[:accepted], tokens=read[d:d + accepted], positions=read[2 * d:2 * d + accepted],
                      draft_offsets=read[3 * d:3 * d + accepted], next_token=read[4 * d],
                      nodes=read[4 * d + 1], depth=read[4 * d + 2])
    # keep prefix + root, then the accepted nodes (verified slot i sits at prefix_len + i)
    keep_positions(cache, prefix_len + 1, [prefix_len + i for i in verdict.positions])
    return verdict


def commit_draft(draft: DraftState, verdict: Verdict) -> None:
    """Keep the accepted nodes the draft was fed; queue the other committed tokens."""
    if draft.prefix_len is None:  # the draft saw nothing this round
        draft.pending += verdict.tokens + [verdict.next_token]
        return
    fed = [o for o in verdict.draft_offsets if o >= 0]  # a prefix of the path: every parent was fed
    keep_positions(draft.cache, draft.prefix_len, [draft.prefix_len + o for o in fed])
    draft.pending = verdict.tokens[len(fed):] + [verdict.next_token]


@torch.inference_mode()
def speculate(ctx: GenContext, next_shape: Callable[[], TreeShape],
              after_round: Callable[[Round], None] | None = None) -> GenerationOutput:
    """The tree-speculation loop shared by ``tree`` and ``dynatree`` (see the module docstring)."""
    if ctx.draft is None:
        raise ValueError("tree speculation needs a draft model")
    for model in (ctx.target, ctx.draft):
        T.check_tree_attention(model)
    budget, padded = ctx.budget, bool(ctx.params.padded)
    target_width, draft_width = tree_widths(ctx.params)
    with ctx.phase("prefill"):
        cache = KVCache(capacity_for(ctx.prompt_ids, budget.max_new_tokens, target_width))
        out = ctx.target(input_ids=ctx.prompt_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        new_ids = [int(greedy(out.logits[0, -1]))]
    ctx.commit(1)
    with ctx.phase("prefill"):
        draft = DraftState(ctx.draft, KVCache(capacity_for(ctx.prompt_ids, budget.max_new_tokens, draft_width)),
                           pending=[new_ids[-1]])
        ctx.draft(input_ids=ctx.prompt_ids, past_key_values=draft.cache, use_cache=True, logits_to_keep=1)
    oracle = Oracle.of(ctx)
    depths = []
    while len(new_ids) < budget.max_new_tokens and not budget.is_eos(new_ids[-1]):
        shape = next_shape()
        max_depth = min(shape.max_depth, budget.max_new_tokens - len(new_ids) - 1)
        # the oracle's draws: one per level the round may grow (the root is committed token len - 1)
        replacements = None if oracle is None else [oracle.replacement(len(new_ids) - 1 + d)
                                                    for d in range(1, max_depth + 1)]
        with ctx.phase("draft"):
            tree = grow_tree(draft, shape, max_depth, padded, replacements)
        with ctx.phase("verify"):
            verdict = verify_tree(ctx.target, cache, tree, min(len(tree), shape.max_nodes + 1), draft)
        committed = verdict.tokens + [verdict.next_token]
        eos_at = next((j for j, t in enumerate(committed) if budget.is_eos(t)), None)
        if eos_at is not None:
            committed = committed[: eos_at + 1]
        new_ids += committed
        ctx.commit(len(committed))
        with ctx.phase("draft"):
            commit_draft(draft, verdict)
        ctx.add_round(Round(proposed=verdict.nodes, accepted=min(len(verdict.path), len(committed)),
                            depth=verdict.depth))
        depths.append(verdict.depth)
        if after_round is not None:
            after_round(ctx.rounds[-1])
    stats = ctx.round_stats()
    stats["extra"] = {"tree_size_per_round": [r.proposed for r in ctx.rounds], "tree_depth_per_round": depths}
    return GenerationOutput(new_ids=new_ids, stats=stats)


def fixed_shape(p: TreeParams) -> TreeShape:
    return TreeShape(max_depth=p.depth, max_nodes=p.max_nodes, tau=p.tau,
                     num_children=lambda top1: torch.full_like(top1, p.branching, dtype=torch.long),
                     may_expand=lambda cum, depth: torch.ones_like(cum, dtype=torch.bool), max_children=p.branching)


def generate(ctx: GenContext) -> GenerationOutput:
    shape = fixed_shape(ctx.params)
    return speculate(ctx, lambda: shape)
