"""The draft model class of a distilled draft, and its loader (``decodebench.draft`` builds it).

Kept apart from the builder so that loading a model (``decodebench.models``) does not import
the distillation code, and the builder can import the loader's module without a cycle.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep


class ReducedVocabLlamaForCausalLM(LlamaForCausalLM):
    """A Llama whose output layer covers ``config.draft_vocab_size`` token ids (the persistent
    buffer ``vocab_ids``, ascending) of the full ``config.vocab_size``; ``forward`` returns
    full-vocabulary logits with ``finfo.min`` outside the reduced vocabulary."""

    _tied_weights_keys = {}

    def __init__(self, config: LlamaConfig):
        config.tie_word_embeddings = False
        super().__init__(config)
        self.lm_head = nn.Linear(config.hidden_size, config.draft_vocab_size, bias=False)
        self.register_buffer("vocab_ids", torch.arange(config.draft_vocab_size), persistent=True)
        self.post_init()

    def reduced_logits(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        """[batch, seq] -> [batch, seq, draft_vocab_size] (training and evaluation)."""
        return self.lm_head(self.model(input_ids=input_ids, **kwargs).last_hidden_state)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, logits_to_keep=0,
                **kwargs) -> CausalLMOutputWithPast:
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=past_key_values, inputs_embeds=inputs_embeds,
                             use_cache=use_cache, **kwargs)
        reduced = self.lm_head(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))
        logits = reduced.new_full((*reduced.shape[:-1], self.config.vocab_size),
                                  torch.finfo(reduced.dtype).min)  # [batch, seq, vocab]
        logits.index_copy_(-1, self.vocab_ids, reduced)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        # past_key_values: the name transformers 4.x knows; 5.x calls it cache (and keeps this one as an alias)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=outputs.past_key_values,  # type: ignore[call-arg]
                                      hidden_states=outputs.hidden_states, attentions=outputs.attentions)


def load_draft(local: Path, dtype: torch.dtype):
    return ReducedVocabLlamaForCausalLM.from_pretrained(local, dtype=dtype)
