"""Token trees for speculative decoding, held on the model's device: structure, masks,
positions, acceptance.

A tree hangs off its *root*: the last committed token, which the model verifying the tree
has not seen yet. A tree is a list of *slots* grown level by level: slot 0 is the root
(level 0); level d occupies slots ``starts[d]:starts[d + 1]`` and each of its slots has a
parent in level d - 1. A slot holds a node of the tree when it is ``alive``; a dead slot is
padding (a level grown at a width fixed in advance, so that the host need not read how many
nodes survived). Dead slots are nobody's ancestor, so they never change what a live node sees.

With a prefix of length ``L`` in a model's KV cache, a forward over tree slots feeds each
slot at position ``L + level`` (the root at ``L``) and lets it attend to the whole prefix,
its ancestors and itself only, never to siblings or cousins (``tree_attention_mask``). So the
logits at a slot are those of decoding the path root -> slot after the prefix.

The mask is the 4D ``[1, 1, queries, prefix + keys]`` additive float mask (0 = visible,
dtype minimum = hidden) that transformers' attention functions take as-is: ``sdpa`` passes
it to ``scaled_dot_product_attention`` as ``attn_mask`` and ``eager`` adds it to the scores
(transformers 5.x ``masking_utils`` returns any 4D mask unchanged). Flash and flex
attention do not take such a mask; ``check_tree_attention`` refuses them.

Nothing here reads the device from the host: sizes are host integers (the level widths),
everything else stays a tensor, and acceptance (``longest_accepted_path``) returns tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel

TREE_ATTENTION = ("sdpa", "eager")


@dataclass
class Tree:
    """One round's draft tree. Every tensor is indexed by slot, on one device."""
    tokens: torch.Tensor  # [S] long
    parents: torch.Tensor  # [S] long; the root's parent is itself (0)
    logprobs: torch.Tensor  # [S] float32: cumulative draft log-prob of the path root -> slot (root 0)
    alive: torch.Tensor  # [S] bool: the slot holds a node (False: padding)
    expand: torch.Tensor  # [S] bool: the node may get children
    reach: torch.Tensor  # [S] bool: acceptance may follow the node (alive, not shadowed: methods.tree.follow_lead)
    levels: torch.Tensor  # [S] long: the slot's level (its depth)
    anc: torch.Tensor  # [S, S] bool: anc[i, j] = slot j is slot i or one of its ancestors
    starts: list[int]  # level d = slots starts[d]:starts[d + 1]

    @classmethod
    def rooted(cls, token: int, device: torch.device | str | None = None) -> Tree:
        one = torch.ones(1, dtype=torch.bool, device=device)
        zero = torch.zeros(1, dtype=torch.long, device=device)
        return cls(tokens=torch.tensor([token], dtype=torch.long, device=device), parents=zero, levels=zero,
                   logprobs=torch.zeros(1, dtype=torch.float32, device=device), alive=one, expand=one, reach=one,
                   anc=torch.ones((1, 1), dtype=torch.bool, device=device), starts=[0, 1])

    def __len__(self) -> int:
        return self.starts[-1]

    @property
    def depth_bound(self) -> int:
        """Levels grown below the root (the tree's depth, counting levels of padding only)."""
        return len(self.starts) - 2

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def level(self, d: int) -> slice:
        return slice(self.starts[d], self.starts[d + 1])

    def add_level(self, tokens: torch.Tensor, parents: torch.Tensor, logprobs: torch.Tensor,
                  alive: torch.Tensor | None = None, expand: torch.Tensor | None = None,
                  reach: torch.Tensor | None = None) -> slice:
        """Append a level of w slots (each tensor [w]; `parents` are slots of the last level);
        alive / expand / reach default to all True. Returns the level's slots."""
        n, w = len(self), tokens.shape[0]
        true = torch.ones(w, dtype=torch.bool, device=self.device)
        alive = true if alive is None else alive
        anc = torch.zeros((n + w, n + w), dtype=torch.bool, device=self.device)
        anc[:n, :n] = self.anc
        anc[n:, :n] = self.anc[parents]
        anc[n:, n:] = torch.eye(w, dtype=torch.bool, device=self.device)
        depth = len(self.starts) - 1
        self.tokens = torch.cat([self.tokens, tokens])
        self.parents = torch.cat([self.parents, parents])
        self.logprobs = torch.cat([self.logprobs, logprobs.float()])
        self.alive = torch.cat([self.alive, alive])
        self.expand = torch.cat([self.expand, alive if expand is None else expand])
        self.reach = torch.cat([self.reach, alive if reach is None else reach])
        self.levels = torch.cat([self.levels, torch.full((w,), depth, dtype=torch.long, device=self.device)])
        self.anc = anc
        self.starts.append(n + w)
        return self.level(depth)

    def add_nodes(self, parents: list[int], tokens: list[int]) -> slice:
        """Append one level of live nodes from host lists (tests and examples)."""
        device = self.device
        return self.add_level(torch.tensor(tokens, dtype=torch.long, device=device),
                              torch.tensor(parents, dtype=torch.long, device=device),
                              torch.zeros(len(tokens), device=device))


def tree_attention_mask(visible: torch.Tensor, prefix_len: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive mask for a forward of q queries over a cache holding a prefix of `prefix_len`
    positions followed by k tree slots: `visible` [q, k] bool says which slot each query may
    see (rows and columns of ``Tree.anc``; the queries' own keys are the last ones).
    # [1, 1, q, prefix_len + k], on `visible`'s device"""
    q, k = visible.shape
    mask = torch.zeros((q, prefix_len + k), dtype=dtype, device=visible.device)
    mask[:, prefix_len:].masked_fill_(~visible, torch.finfo(dtype).min)
    return mask[None, None]


def tree_position_ids(tree: Tree, slots: torch.Tensor, root_position: int) -> torch.Tensor:
    """Position of each slot: root_position + its level. # [1, len(slots)]"""
    return (tree.levels[slots] + root_position)[None]


def longest_accepted_path(tree: Tree, target_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy acceptance on the device: `target_next` [S] long is the target's argmax after
    each slot (anything at slots it did not score).

    From the root, follow the reachable child whose token is the target's choice as long as
    one exists (siblings carry distinct tokens among reachable nodes). Returns the accepted
    slot at each level, -1 once the path has ended (# [depth_bound]), and the target's own next
    token after the path's last slot (# [1])."""
    device = tree.device
    node = torch.zeros(1, dtype=torch.long, device=device)
    going = torch.ones(1, dtype=torch.bool, device=device)
    path = []
    for d in range(1, tree.depth_bound + 1):
        level = tree.level(d)
        match = tree.reach[level] & (tree.parents[level] == node) & (tree.tokens[level] == target_next[node])
        found = going & match.any(dim=0, keepdim=True)
        child = level.start + match.to(torch.uint8).argmax(dim=0, keepdim=True)
        node = torch.where(found, child, node)
        going = found
        path.append(torch.where(found, child, -1))
    path_slots = torch.cat(path) if path else torch.zeros(0, dtype=torch.long, device=device)
    return path_slots, target_next[node]


def check_tree_attention(model: PreTrainedModel) -> None:
    impl = getattr(model.config, "_attn_implementation", None)
    if impl not in TREE_ATTENTION:
        raise ValueError(f"tree attention needs attn_implementation in {TREE_ATTENTION} (a 4D additive mask); "
                         f"model {model.config.name_or_path!r} uses {impl!r}")
