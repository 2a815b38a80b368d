"""Naive multi-sampling: N independent samples, one after another.

For each sample i of the N: prefill the prompt (re-encoding it), then sample one token per
forward from ``softmax(logits / temperature)`` with ``torch.multinomial`` on sample i's own
generator (``decodebench.multisample.sample_seed``), until EOS (when enabled) or
``max_new_tokens``. The KV cache is the deep-copy store of one row, with the attention every
multi-sample method uses. Only one sample's cache is alive at a time. No parameters.
Token-steps: N x prompt + the tokens fed back.
"""

from __future__ import annotations

import torch

from ..multisample import Samples, sample_rows
from .base import GenContext, GenerationOutput


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    samples = Samples()
    for i in range(ctx.num_samples):
        samples.extend(sample_rows(ctx, 1, prefill_rows=1, store="deepcopy", first=i))
    return GenerationOutput(new_ids=samples.tokens[0], samples=samples.tokens, stats=samples.stats())
