"""Greedy autoregressive decoding with a KV cache: the baseline.

Prefill the prompt once with ``logits_to_keep=1`` (only the last position's logits, as every
method's prefill), then feed one token per forward; each token is the argmax of the float32
logits (``methods.greedy``) and is committed as soon as it exists. Stops after
``budget.max_new_tokens`` tokens, or after an EOS token when EOS is enabled (the EOS token is
part of the output, as in ``generate``). N tokens take N target forwards.

The KV cache is a ``kvcache.KVCache`` of capacity prompt + max_new_tokens, allocated on the
prefill and written in place (no per-token ``torch.cat`` of the whole cache). Each token is
read on the host once (``int(token)``, the one synchronisation per token, needed to commit it
and to test for EOS).
"""

from __future__ import annotations

import torch

from ..kvcache import KVCache, capacity_for
from ..method_params import CACHE_WIDTH
from .base import GenContext, GenerationOutput, greedy


@torch.inference_mode()
def generate(ctx: GenContext) -> GenerationOutput:
    model = ctx.target
    cache = KVCache(capacity_for(ctx.prompt_ids, ctx.budget.max_new_tokens, CACHE_WIDTH["ar"](None)))
    out = model(input_ids=ctx.prompt_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    token = greedy(out.logits[:, -1, :])[:, None]  # [1, 1]
    new_ids = [int(token)]
    ctx.commit(1)
    while len(new_ids) < ctx.budget.max_new_tokens and not ctx.budget.is_eos(new_ids[-1]):
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        token = greedy(out.logits[:, -1, :])[:, None]
        new_ids.append(int(token))
        ctx.commit(1)
    return GenerationOutput(new_ids=new_ids)
