"""Oracle draft mode: speculation at a controlled acceptance, with the real draft's cost.

A method parameter ``oracle_alpha`` (``linear``, ``tree``, ``dynatree``; default None = off).
When set, the draft model runs exactly as without it (same forwards, same widths, so its cost
is real), but each proposed token is, with probability alpha, replaced by the token greedy AR
commits at that output position, before the draft is fed it and before verification:

- ``linear``: each of the round's model drafts d_1..d_k (not prompt-lookup candidates); the
  draft then continues from the replaced token, so its cache matches what was proposed;
- ``tree`` / ``dynatree``: the nodes of the tree's first path only (from the root, each level's
  child of the previous first-path node with the highest cumulative draft probability, i.e.
  the draft's most probable path). The round draws once per level it may grow (its depth
  cap), before the tree grows, whether or not the first path reaches that level, so the draws
  never wait for the device (a padded tree reads it once per round). The replaced node keeps the cumulative
  probability of the token it replaced, so the tree's shape (pruning, sizes, expansion) is the
  draft's own; its children are the draft's top tokens after the replaced token. A sibling
  with the same token becomes unreachable (acceptance follows the replaced node).

The draws come from ``random.Random(ctx.seed)``, one per replaceable proposal (linear: each
model draft; trees: each level of the round's depth cap), in the order they are proposed; a proposal past the
reference (after its EOS) draws but keeps the draft's token. So a seed fixes the draws, and
alpha = 0 gives the plain method's rounds. The reference is ``ctx.oracle_ids``: the new ids of
greedy AR on the same prompt and budget, computed by the caller outside the timed region
(``greedy_reference``; the harness does it). Verification is unchanged, so outputs stay
lossless; acceptance rises with alpha (a token is right with probability at least alpha,
whatever the draft), which is the point: the speedup at acceptance alpha from real costs,
to hold against the cost model's prediction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..measurement import Unmeasured
from ..method_params import check_oracle_alpha  # noqa: F401 (declared with the parameters)
from .base import Budget, GenContext

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def uses_oracle(params) -> bool:
    return getattr(params, "oracle_alpha", None) is not None


@dataclass
class Oracle:
    alpha: float
    reference: list[int]  # greedy AR's new ids for this prompt and budget
    rng: random.Random

    @classmethod
    def of(cls, ctx: GenContext) -> Oracle | None:
        """The generation's oracle, or None when its params leave oracle_alpha off."""
        if not uses_oracle(ctx.params):
            return None
        if ctx.oracle_ids is None:
            raise ValueError("oracle_alpha is set but GenContext.oracle_ids is None: the oracle draft mode needs "
                             "greedy AR's new ids for the prompt (methods.oracle.greedy_reference, run outside the "
                             "timed region)")
        return cls(float(ctx.params.oracle_alpha), list(ctx.oracle_ids), random.Random(ctx.seed))

    def replacement(self, position: int) -> int | None:
        """AR's token at output position `position` (0 = the first new token) if this draw
        replaces the proposal there, else None. One draw per call."""
        hit = self.rng.random() < self.alpha
        return self.reference[position] if hit and position < len(self.reference) else None


@torch.inference_mode()
def greedy_reference(target: PreTrainedModel, prompt_ids: torch.Tensor, budget: Budget) -> list[int]:
    """Greedy AR's new ids after `prompt_ids` [1, n] under `budget`: the oracle's reference."""
    from .ar import generate

    ctx = GenContext(target=target, draft=None, prompt_ids=prompt_ids, budget=budget, params=None,
                     clock=Unmeasured())
    return generate(ctx).new_ids
