"""Naive multi-sampling in one batch: the N samples decoded together, each encoding the prompt.

The prompt is repeated N times and prefilled as one batch of N rows (as transformers'
``generate(num_return_sequences=N)`` does); the rows' KV goes to the deep-copy store (one full
row per sample). Each step, every live row samples one token from its own generator (the same
per-sample generators as ``naive``, so the samples are naive's) and the live rows are fed back
in one forward. A row leaves the batch at EOS (when enabled) or ``max_new_tokens``. No
parameters. Token-steps: N x prompt + the tokens fed back. Memory: N full KV rows.
"""

from __future__ import annotations

import torch

from ..multisample import sample_rows
from .base import GenContext, GenerationOutput


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    samples = sample_rows(ctx, ctx.num_samples, prefill_rows=ctx.num_samples, store="deepcopy")
    return GenerationOutput(new_ids=samples.tokens[0], samples=samples.tokens, stats=samples.stats())
