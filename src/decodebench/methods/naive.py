"""Naive multi-sampling: N independent samples, one after another.

For each of the N samples: prefill the prompt (re-encoding it), then sample one token per
forward from ``softmax(logits / temperature)`` with ``torch.multinomial`` (the global RNG the
harness seeds), until EOS (when enabled) or ``max_new_tokens``. Only one KV cache is alive at
a time. No parameters. Token-steps: N x prompt + the tokens fed back.
"""

from __future__ import annotations

import torch

from ..multisample import sample_rows
from . import GenContext, GenerationOutput


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    samples, token_steps, kv_peak = [], 0, 0
    for _ in range(ctx.num_samples):
        (one,), steps, kv = sample_rows(ctx, 1)
        samples.append(one)
        token_steps += steps
        kv_peak = max(kv_peak, kv)
    return GenerationOutput(new_ids=samples[0], samples=samples,
                            stats={"num_samples": len(samples), "token_steps": token_steps,
                                   "branch_points": 0, "final_paths": len(samples),
                                   "extra": {"kv_computed_peak_bytes": kv_peak}})
