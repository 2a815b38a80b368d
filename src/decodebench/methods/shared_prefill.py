"""Shared-prefill independent sampling: one prefill, then N independent samples in one batch.

The prompt is prefilled once (one row); the KV store gives its keys/values to N paths
(``store``: ``shared_prefix`` holds the prompt once, ``deepcopy`` copies it into each row).
Each step, every live path samples one token from its own generator (the same per-sample
generators as ``naive``, so the samples are naive's) and the live paths are fed back in one
forward; a path leaves the batch at EOS (when enabled) or ``max_new_tokens``. No branching, no
pruning: the N samples are independent draws. It is EAB with ``entropy_threshold`` 0 and
``branch_factor`` N minus the joint sampling, so EAB's speedup over it is what branching buys.

Parameters (``SharedPrefillParams``): ``store`` = ``shared_prefix``. Token-steps: the prompt
once + the tokens fed back.
"""

from __future__ import annotations

import torch

from ..method_params import SharedPrefillParams  # noqa: F401 (the method's parameters, declared there)
from ..multisample import sample_rows
from .base import GenContext, GenerationOutput


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    samples = sample_rows(ctx, ctx.num_samples, prefill_rows=1, store=ctx.params.store)
    return GenerationOutput(new_ids=samples.tokens[0], samples=samples.tokens,
                            stats=samples.stats(cache=ctx.params.store))
