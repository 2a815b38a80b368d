"""Naive multi-sampling in one batch: the N samples decoded together.

The prompt is repeated N times and prefilled as one batch of N rows (as transformers'
``generate(num_return_sequences=N)`` does); then each step samples one token per live row from
``softmax(logits / temperature)`` with ``torch.multinomial`` and feeds the live rows back in
one forward. A row leaves the batch at EOS (when enabled) or ``max_new_tokens``. No
parameters. Token-steps: N x prompt + the tokens fed back. Memory: N full KV caches.
"""

from __future__ import annotations

import torch

from ..multisample import sample_rows
from . import GenContext, GenerationOutput


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    samples, token_steps, kv_peak = sample_rows(ctx, ctx.num_samples)
    return GenerationOutput(new_ids=samples[0], samples=samples,
                            stats={"num_samples": len(samples), "token_steps": token_steps,
                                   "branch_points": 0, "final_paths": len(samples),
                                   "extra": {"kv_computed_peak_bytes": kv_peak}})
