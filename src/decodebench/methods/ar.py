"""Greedy autoregressive decoding with a KV cache: the baseline.

Prefill the prompt once, then feed one token per forward, taking the argmax of the last
logits. Stops after ``budget.max_new_tokens`` tokens, or after an EOS token when EOS is
enabled (the EOS token is part of the output, as in ``generate``).
"""

from __future__ import annotations

import torch

from . import GenContext, GenerationOutput


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    model = ctx.target
    out = model(input_ids=ctx.prompt_ids, use_cache=True)
    cache = out.past_key_values
    token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)  # [1, 1]
    ctx.clock.mark_first_token()
    new_ids = [int(token)]
    while len(new_ids) < ctx.budget.max_new_tokens and not ctx.budget.is_eos(new_ids[-1]):
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        new_ids.append(int(token))
    return GenerationOutput(new_ids=new_ids)
