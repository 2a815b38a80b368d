"""Greedy autoregressive decoding with a KV cache: the baseline.

Prefill the prompt once with ``logits_to_keep=1`` (only the last position's logits, as every
method's prefill), then feed one token per forward; each token is the argmax of the float32
logits (``methods.greedy``) and is committed as soon as it exists. Stops after
``budget.max_new_tokens`` tokens, or after an EOS token when EOS is enabled (the EOS token is
part of the output, as in ``generate``). N tokens take N target forwards.
"""

from __future__ import annotations

import torch

from . import GenContext, GenerationOutput, greedy


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    model = ctx.target
    out = model(input_ids=ctx.prompt_ids, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    token = greedy(out.logits[:, -1, :])[:, None]  # [1, 1]
    new_ids = [int(token)]
    ctx.commit(1)
    while len(new_ids) < ctx.budget.max_new_tokens and not ctx.budget.is_eos(new_ids[-1]):
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        token = greedy(out.logits[:, -1, :])[:, None]
        new_ids.append(int(token))
        ctx.commit(1)
    return GenerationOutput(new_ids=new_ids)
