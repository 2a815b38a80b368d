"""DynaTree: greedy tree speculation whose tree adapts to the draft's confidence and to history.

The round loop, the draft's batched level expansion over its reused KV cache, the one-forward
verification with the tree mask and the cache compaction are those of ``methods.tree``
(``speculate`` / ``grow_tree``); only the tree's shape differs. With p(n) the draft's top-1
probability at node n (its confidence about the next token) and c(n) the cumulative draft
probability of the path root → n (root: 1):

- Breadth: node n gets ``children_confident`` (1) children if p(n) > ``high_conf``,
  ``children_uncertain`` (3) if p(n) < ``low_conf``, otherwise ``children_mid`` (2); the
  children are the draft's top tokens at n.
- Pruning: a child with c < ``tau`` is dropped; a level's survivors are kept in order of c
  while the tree has fewer than ``max_nodes`` draft nodes.
- Depth: a node at depth d (root: 0) is expanded only if d < ``max_depth``,
  c(n) >= ``early_stop``, and either d < ``base_depth`` or c(n) >= ``deep_expand``. So the
  tree grows to ``base_depth`` while paths stay above the early-stop threshold, and beyond it,
  up to ``max_depth``, only along paths that stay above the deep-expansion threshold. The
  depth of a round is further capped so that it commits at most the remaining budget.
- History (between rounds): each round with a tree of depth >= 1 records its depth
  acceptance accepted / depth (the fraction of the tree's depth the target accepted). Once
  ``window`` rounds are recorded, their mean m is compared with ``target_acceptance``:
  m > target: ``base_depth`` += 1 (at most ``max_depth``), ``high_conf`` and ``low_conf``
  -= ``step`` (deeper, narrower trees: more nodes count as confident); m < target:
  ``base_depth`` -= 1 (at least 1), both thresholds += ``step`` (shallower, wider trees);
  thresholds stay within 0 <= low_conf <= high_conf <= 1. The record is then cleared
  (non-overlapping windows). The state starts from the parameters for every prompt.

Ablation switches: ``adaptive = False`` gives every node ``children_mid`` children and
expands to ``base_depth`` with no early stop or deep expansion (a fixed tree; history then
only moves the depth); ``history = False`` keeps the parameters fixed.

Parameters (defaults): base_depth 5, max_depth 8, high_conf 0.9, low_conf 0.4,
children_confident 1, children_mid 2, children_uncertain 3, tau 0.05, early_stop 0.1,
deep_expand 0.5, max_nodes 256, window 10, target_acceptance 0.7, step 0.05,
adaptive True, history True, oracle_alpha None (off; the oracle draft mode of ``methods.tree``
and ``methods.oracle``: the tree's first path replaced by greedy AR's tokens with probability
alpha, which also drives the history's depth adjustments), padded False (``methods.tree``:
levels at their largest width, one host read per round; with the defaults a padded tree
verifies 257 slots and feeds the draft 875 per round, so it pays only where tokens are
nearly free).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..method_params import DynaTreeParams, TreeParams
from .base import GenContext, GenerationOutput
from .speculative import Round
from .tree import TreeShape, fixed_shape, speculate


@dataclass(frozen=True)
class ShapeState:
    """What the history rule moves."""
    base_depth: int
    high_conf: float
    low_conf: float


def adjust(state: ShapeState, acceptances: list[float], p: DynaTreeParams) -> ShapeState:
    """The history rule: one window of per-round depth acceptances -> the next state."""
    mean = sum(acceptances) / len(acceptances)
    if mean > p.target_acceptance:
        high = max(state.high_conf - p.step, 0.0)
        low = min(max(state.low_conf - p.step, 0.0), high)
        return ShapeState(min(state.base_depth + 1, p.max_depth), high, low)
    if mean < p.target_acceptance:
        low = min(state.low_conf + p.step, 1.0)
        high = max(min(state.high_conf + p.step, 1.0), low)
        return ShapeState(max(state.base_depth - 1, 1), high, low)
    return state


def shape_for(state: ShapeState, p: DynaTreeParams) -> TreeShape:
    if not p.adaptive:  # the fixed tree of method `tree`
        return fixed_shape(TreeParams(depth=state.base_depth, branching=p.children_mid, tau=p.tau,
                                      max_nodes=p.max_nodes))

    def num_children(top1: torch.Tensor) -> torch.Tensor:  # [m] -> [m]
        # torch.where, not boolean-mask assignment (a nonzero, i.e. a host synchronisation, on CUDA)
        counts = torch.full_like(top1, p.children_mid, dtype=torch.long)
        counts = torch.where(top1 > state.high_conf, p.children_confident, counts)
        return torch.where(top1 < state.low_conf, p.children_uncertain, counts)

    def may_expand(cum: torch.Tensor, depth: int) -> torch.Tensor:  # [m] -> [m] bool
        return (cum >= p.early_stop) & ((depth < state.base_depth) | (cum >= p.deep_expand))

    return TreeShape(max_depth=p.max_depth, max_nodes=p.max_nodes, tau=p.tau,
                     num_children=num_children, may_expand=may_expand,
                     max_children=max(p.children_confident, p.children_mid, p.children_uncertain))


def generate(ctx: GenContext) -> GenerationOutput:
    p: DynaTreeParams = ctx.params
    state = ShapeState(p.base_depth, p.high_conf, p.low_conf)
    window: list[float] = []
    base_depths: list[int] = []

    def next_shape() -> TreeShape:
        base_depths.append(state.base_depth)
        return shape_for(state, p)

    def after_round(r: Round) -> None:
        nonlocal state
        if not p.history or r.depth == 0:
            return
        window.append(r.accepted / r.depth)
        if len(window) == p.window:
            state = adjust(state, window, p)
            window.clear()

    out = speculate(ctx, next_shape, after_round)
    out.stats["extra"]["base_depth_per_round"] = base_depths
    return out

