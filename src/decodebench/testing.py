"""Tiny random-weight models and a tiny tokenizer, built from a config (no network).

Used by the tests and by the pipeline's test config: ``decodebench make-tiny-model DIR``.
The tokenizer is a byte-level BPE trained on a few lines of the embedded corpus, so the
same tiny model can run every loader, including Gutenberg.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

ARCHS = ("llama", "gpt_neox")
_CORPUS = [
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer",
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles,",
    "and by opposing end them. To die, to sleep; no more; and by a sleep to say we end",
    "The quick brown fox jumps over the lazy dog. 0123456789 = - , . ; : ! ? ' \" ( )",
]


def make_tokenizer(vocab_size: int = 320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")


def make_tiny_model(directory: str | Path, arch: str = "llama", seed: int = 0, layers: int = 2,
                    hidden: int = 64, vocab_size: int = 320) -> Path:
    """Write a random-weight causal LM with a matching tokenizer to `directory`."""
    from transformers import AutoModelForCausalLM, GPTNeoXConfig, LlamaConfig

    tokenizer = make_tokenizer(vocab_size)
    vocab = len(tokenizer)
    eos = tokenizer.eos_token_id
    if arch == "llama":
        config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                             num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=2048, eos_token_id=eos, bos_token_id=eos,
                             pad_token_id=eos, tie_word_embeddings=False)
    elif arch == "gpt_neox":
        config = GPTNeoXConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                               num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=2048,
                               eos_token_id=eos, bos_token_id=eos, pad_token_id=eos, rotary_pct=0.25,
                               use_parallel_residual=True)
    else:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Larger-than-default init so that greedy outputs vary with the context (random tiny
    # models otherwise repeat one token, which would make lossless tests weak).
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    (directory / "tiny_model.json").write_text(json.dumps({"arch": arch, "seed": seed, "layers": layers,
                                                           "hidden": hidden}) + "\n")
    return directory
