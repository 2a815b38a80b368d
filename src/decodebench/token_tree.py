"""Token trees for speculative decoding: structure, verification mask, positions, acceptance.

A tree hangs off its *root*: the last committed token, which the model verifying the tree
has not seen yet. Node 0 is the root (depth 0, parent -1, cumulative log-prob 0). Every
other node is a draft token whose parent has a smaller index (trees grow level by level),
at depth parent's depth + 1.

With a prefix of length ``L`` in a model's KV cache, a forward over tree nodes feeds each
node ``i`` at position ``L + depth[i]`` (the root at ``L``), and lets it attend to the whole
prefix, its ancestors and itself only, never to siblings or cousins (``tree_attention_mask``).
So the logits at node ``i`` are those of decoding the path root → i after the prefix.

The mask is the 4D ``[1, 1, queries, prefix + keys]`` additive float mask (0 = visible,
dtype minimum = hidden) that transformers' attention functions take as-is: ``sdpa`` passes
it to ``scaled_dot_product_attention`` as ``attn_mask`` and ``eager`` adds it to the scores
(transformers 5.x ``masking_utils`` returns any 4D mask unchanged). Flash and flex
attention do not take such a mask; ``check_tree_attention`` refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel

TREE_ATTENTION = ("sdpa", "eager")


@dataclass
class Tree:
    tokens: list[int]
    parents: list[int]  # -1 for the root
    depths: list[int]  # root: 0
    logprobs: list[float]  # cumulative draft log-prob of the path root → node (root: 0)
    _children: dict = field(default_factory=dict, repr=False)  # (parent, token) -> node

    @classmethod
    def rooted(cls, token: int) -> Tree:
        return cls(tokens=[token], parents=[-1], depths=[0], logprobs=[0.0])

    def add(self, parent: int, token: int, logprob: float) -> int:
        if (parent, token) in self._children:
            raise ValueError(f"node {parent} already has a child with token {token}")
        node = len(self.tokens)
        self.tokens.append(token)
        self.parents.append(parent)
        self.depths.append(self.depths[parent] + 1)
        self.logprobs.append(logprob)
        self._children[(parent, token)] = node
        return node

    def replace_token(self, node: int, token: int) -> None:
        """Give `node` another token (oracle draft mode); a sibling with that token becomes
        unreachable through ``child``."""
        parent = self.parents[node]
        if self._children.get((parent, self.tokens[node])) == node:
            del self._children[(parent, self.tokens[node])]
        self.tokens[node] = token
        self._children[(parent, token)] = node

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def num_draft_nodes(self) -> int:
        return len(self.tokens) - 1

    @property
    def depth(self) -> int:
        return max(self.depths)

    def child(self, parent: int, token: int) -> int | None:
        return self._children.get((parent, token))

    def path_to(self, node: int) -> list[int]:
        """Nodes from the root's first child down to `node` (empty for the root)."""
        path = []
        while node > 0:
            path.append(node)
            node = self.parents[node]
        return path[::-1]


def ancestor_matrix(parents: list[int], device: torch.device | str | None = None) -> torch.Tensor:
    """anc[i, j] = node j is node i or one of its ancestors. # [n, n] bool, on `device` (CPU if None)

    Built on the device in depth(tree) steps, a number known on the host, so it never waits
    for the device (the loop used to test ``(cur >= 0).any()`` on the host each step)."""
    depth = [0] * len(parents)
    for i, p in enumerate(parents):
        depth[i] = depth[p] + 1 if p >= 0 else 0
    n = len(parents)
    parent = torch.tensor(parents, dtype=torch.long, device=device)
    anc = torch.eye(n, dtype=torch.bool, device=parent.device)
    rows = torch.arange(n, device=parent.device)
    cur = parent
    for _ in range(max(depth, default=0)):  # cur = each node's ancestor one level further up (-1: none)
        valid = cur >= 0
        at = cur.clamp(min=0)
        anc[rows, at] |= valid
        cur = torch.where(valid, parent[at], cur)
    return anc


def tree_attention_mask(anc: torch.Tensor, prefix_len: int, key_nodes: list[int], query_nodes: list[int],
                        dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Additive mask for a forward of `query_nodes` over a cache holding a prefix of
    `prefix_len` positions followed by `key_nodes` (in cache order; the queries' own keys are
    the last ones, so `key_nodes` ends with `query_nodes`). # [1, 1, queries, prefix_len + keys]

    Built where `anc` lives (``ancestor_matrix(parents, device)``: on the model's device); only
    the two node lists travel from the host."""
    anc = anc.to(device)
    q = torch.tensor(query_nodes, dtype=torch.long, device=device)
    k = torch.tensor(key_nodes, dtype=torch.long, device=device)
    mask = torch.zeros((len(query_nodes), prefix_len + len(key_nodes)), dtype=dtype, device=device)
    mask[:, prefix_len:].masked_fill_(~anc[q[:, None], k[None, :]], torch.finfo(dtype).min)
    return mask[None, None]


def tree_position_ids(tree: Tree, nodes: list[int], root_position: int, device: torch.device) -> torch.Tensor:
    """Position of each node: root_position + depth. # [1, len(nodes)]"""
    return torch.tensor([[root_position + tree.depths[i] for i in nodes]], dtype=torch.long, device=device)


def longest_accepted_path(tree: Tree, target_next: list[int]) -> tuple[list[int], int]:
    """Greedy acceptance: `target_next[i]` is the target's argmax after node i.

    From the root, follow the child whose token is the target's choice as long as one exists.
    Returns the accepted nodes (root excluded, in path order) and the target's own next token
    after the last of them.
    """
    path, node = [], 0
    while (child := tree.child(node, target_next[node])) is not None:
        path.append(child)
        node = child
    return path, target_next[node]


def check_tree_attention(model: PreTrainedModel) -> None:
    impl = getattr(model.config, "_attn_implementation", None)
    if impl not in TREE_ATTENTION:
        raise ValueError(f"tree attention needs attn_implementation in {TREE_ATTENTION} (a 4D additive mask); "
                         f"model {model.config.name_or_path!r} uses {impl!r}")
