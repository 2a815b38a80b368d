"""Greedy speculative decoding with a fixed-shape draft tree, verified in one target forward.

Each round (``speculate``), with the last committed token as the tree's root:

1. Draft (``grow_tree``): the draft feeds the committed tokens it has not seen yet (the root
   last) over its own KV cache, which is kept across rounds. Then level by level: every node
   of the frontier gets its top-``branching`` draft tokens as children, with cumulative draft
   log-prob = parent's + the token's. A child whose cumulative probability is below ``tau``
   is pruned; the survivors of a level are kept in order of cumulative probability while the
   tree has fewer than ``max_nodes`` draft nodes. The new level is the next frontier, fed to
   the draft as one batch of nodes with a tree attention mask (each sees the draft's prefix
   and its own ancestors only; siblings never see each other), until depth ``depth``.
   The nodes of the last level are not fed (their children are not needed).
2. Verify: the target feeds the root and all draft nodes in ONE forward, node at depth d at
   position prefix_len + d, with the tree mask (``decodebench.token_tree``). Its argmax at each
   node is its greedy choice after that node's path.
3. Commit the longest path the target agrees with, from the root, plus the target's own
   token after it. The target's cache keeps the prefix, the root and the accepted nodes'
   keys/values, compacted (``kvcache.keep_positions``; nothing is re-computed); the draft's
   cache likewise keeps the accepted nodes it was fed, and the rest of the committed tokens
   wait for its next round.

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
it is fed to the draft; needs ``ctx.oracle_ids``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .. import token_tree as T
from ..kvcache import KVCache, cache_length, capacity_for, keep_positions
from ..method_params import CACHE_WIDTH, TreeParams
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
    slots: dict[int, int] = field(default_factory=dict)  # this round: tree node -> its index among the nodes fed after the prefix


def expand_level(logits: torch.Tensor, frontier_logprobs: torch.Tensor, shape: TreeShape, depth: int,
                 room: int) -> list[tuple[int, int, float, bool]]:
    """One level of the tree, chosen on the device and read in ONE host synchronisation.

    `logits` [m, vocab] are the draft's at the m frontier nodes, `frontier_logprobs` [m] their
    cumulative log-probs; `room` = draft nodes the tree may still add. Each frontier node
    offers its top ``num_children`` tokens; a child survives if its cumulative probability is
    >= tau; the survivors are ranked by cumulative log-prob (descending, ties in frontier then
    top-k order) and the first `room` form the level. Returns, per level node in that order,
    (frontier row of its parent, token, cumulative log-prob, may it be expanded)."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # [m, vocab]
    counts = shape.num_children(logprobs.max(dim=-1).values.exp())  # [m]
    width = min(shape.max_children, logprobs.shape[-1])
    top_lp, top_tok = logprobs.topk(width, dim=-1)  # [m, width]
    cum = (frontier_logprobs[:, None] + top_lp).flatten()  # [m * width]
    keep = (torch.arange(width, device=cum.device)[None, :] < counts[:, None]).flatten() & (cum.exp() >= shape.tau)
    # survivors first, each group by cumulative log-prob: two stable sorts (a survivor at -inf,
    # possible with tau = 0, still ranks before every pruned child)
    order = torch.argsort(cum, descending=True, stable=True)
    order = order[torch.argsort(keep[order].to(torch.uint8), descending=True, stable=True)][:room]
    cum = cum[order]
    # every field is exact in float32 (rows and token ids < 2**24): one tensor, one transfer
    level = torch.stack([(order // width).float(), top_tok.flatten()[order].float(), cum,
                         keep[order].float(), shape.may_expand(cum.exp(), depth).float()]).tolist()
    return [(int(r), int(t), c, bool(e)) for r, t, c, k, e in zip(*level) if k]


def grow_tree(draft: DraftState, shape: TreeShape, max_depth: int, oracle: Oracle | None = None,
              root_position: int = 0) -> T.Tree:
    """Draft a tree under the root `draft.pending[-1]`, at most `max_depth` levels deep.

    With an `oracle`, the first-path node at depth d may get AR's token at output position
    `root_position` + d (the root's position: len(committed) - 1) before it is fed.
    Host synchronisations: one per level (``expand_level``), none for masks and positions
    (built on the draft's device)."""
    tree = T.Tree.rooted(draft.pending[-1])
    lead: int | None = 0  # the first path's node at the previous level
    draft.prefix_len, draft.slots = None, {}
    if max_depth < 1:
        return tree
    model, device = draft.model, draft.model.device
    out = model(input_ids=torch.tensor([draft.pending], device=device), past_key_values=draft.cache,
                use_cache=True, logits_to_keep=1)
    draft.pending, draft.prefix_len = [], cache_length(draft.cache)
    logits = out.logits[0]  # [frontier, vocab]: the root's
    frontier = [0]
    for depth in range(1, max_depth + 1):
        frontier_logprobs = torch.tensor([tree.logprobs[i] for i in frontier], device=logits.device)  # [m]
        chosen = expand_level(logits, frontier_logprobs, shape, depth, shape.max_nodes - tree.num_draft_nodes)
        level = [tree.add(frontier[r], t, c) for r, t, c, _ in chosen]
        if oracle is not None and lead is not None:  # the level is in order of cumulative probability
            lead = next((n for n in level if tree.parents[n] == lead), None)
            if lead is not None and (true := oracle.replacement(root_position + depth)) is not None:
                tree.replace_token(lead, true)
        if not level or depth == max_depth or tree.num_draft_nodes >= shape.max_nodes:
            break
        frontier = [n for n, (*_, expand) in zip(level, chosen) if expand]
        lead = lead if lead in frontier else None
        if not frontier:
            break
        for n in frontier:
            draft.slots[n] = len(draft.slots)  # fed in this order, after the prefix
        mask = T.tree_attention_mask(T.ancestor_matrix(tree.parents, device), draft.prefix_len, list(draft.slots),
                                     frontier, model.dtype, device)
        positions = T.tree_position_ids(tree, frontier, draft.prefix_len - 1, device)
        logits = model(input_ids=torch.tensor([[tree.tokens[i] for i in frontier]], device=device),
                       attention_mask=mask, position_ids=positions, past_key_values=draft.cache,
                       use_cache=True).logits[0]
    return tree


def commit_draft(draft: DraftState, tree: T.Tree, path: list[int], next_token: int) -> None:
    """Keep the accepted nodes the draft was fed; queue the other committed tokens."""
    accepted = [tree.tokens[i] for i in path]
    if draft.prefix_len is None:  # the draft saw nothing this round
        draft.pending += accepted + [next_token]
        return
    fed = [i for i in path if i in draft.slots]  # a prefix of the path: every parent was fed
    keep_positions(draft.cache, draft.prefix_len, [draft.prefix_len + draft.slots[i] for i in fed])
    draft.pending = accepted[len(fed):] + [next_token]


def verify_tree(target: PreTrainedModel, cache, tree: T.Tree) -> tuple[list[int], int]:
    """One target forward over root + draft nodes; keep the accepted path in `cache`.
    One host synchronisation: the target's choices at every node (``.tolist()``)."""
    device = target.device
    prefix_len = cache_length(cache)
    nodes = list(range(len(tree)))
    mask = T.tree_attention_mask(T.ancestor_matrix(tree.parents, device), prefix_len, nodes, nodes,
                                 target.dtype, device)
    logits = target(input_ids=torch.tensor([tree.tokens], device=device), attention_mask=mask,
                    position_ids=T.tree_position_ids(tree, nodes, prefix_len, device),
                    past_key_values=cache, use_cache=True).logits  # [1, nodes, vocab]
    path, next_token = T.longest_accepted_path(tree, greedy(logits[0]).tolist())
    # keep prefix + root, then the accepted nodes (node i sits at prefix_len + i)
    keep_positions(cache, prefix_len + 1, [prefix_len + i for i in path])
    return path, next_token


@torch.inference_mode()
def speculate(ctx: GenContext, next_shape: Callable[[], TreeShape],
              after_round: Callable[[Round], None] | None = None) -> GenerationOutput:
    """The tree-speculation loop shared by ``tree`` and ``dynatree`` (see the module docstring)."""
    if ctx.draft is None:
        raise ValueError("tree speculation needs a draft model")
    for model in (ctx.target, ctx.draft):
        T.check_tree_attention(model)
    budget = ctx.budget
    # the most positions a round appends beyond the committed tokens: the root and max_nodes nodes
    capacity = capacity_for(ctx.prompt_ids, budget.max_new_tokens, CACHE_WIDTH["tree"](ctx.params))  # dynatree: the same width
    with ctx.phase("prefill"):
        cache = KVCache(capacity)
        out = ctx.target(input_ids=ctx.prompt_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        new_ids = [int(greedy(out.logits[0, -1]))]
    ctx.commit(1)
    with ctx.phase("prefill"):
        draft = DraftState(ctx.draft, KVCache(capacity), pending=[new_ids[-1]])
        ctx.draft(input_ids=ctx.prompt_ids, past_key_values=draft.cache, use_cache=True, logits_to_keep=1)
    oracle = Oracle.of(ctx)
    depths = []
    while len(new_ids) < budget.max_new_tokens and not budget.is_eos(new_ids[-1]):
        shape = next_shape()
        remaining = budget.max_new_tokens - len(new_ids)
        with ctx.phase("draft"):
            tree = grow_tree(draft, shape, min(shape.max_depth, remaining - 1), oracle, len(new_ids) - 1)
        with ctx.phase("verify"):
            path, next_token = verify_tree(ctx.target, cache, tree)
        committed = [tree.tokens[i] for i in path] + [next_token]
        eos_at = next((j for j, t in enumerate(committed) if budget.is_eos(t)), None)
        if eos_at is not None:
            committed = committed[: eos_at + 1]
        new_ids += committed
        ctx.commit(len(committed))
        with ctx.phase("draft"):
            commit_draft(draft, tree, path, next_token)
        ctx.add_round(Round(proposed=tree.num_draft_nodes, accepted=min(len(path), len(committed)),
                            depth=tree.depth))
        depths.append(tree.depth)
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
