"""Pieces shared by the multi-sample methods: sampling, entropy, and the two EAB KV stores.

Sampling is the same everywhere, and the same as transformers' ``generate(do_sample=True,
top_k=0, top_p=1.0)``: ``probs = softmax(logits.float() / temperature)``, then
``torch.multinomial(probs, 1)`` on the global RNG the harness seeds. So one path of EAB with
branching disabled draws exactly the tokens naive sampling draws with the same seed.

Token-steps (the one definition for every method): the number of token positions fed to the
target, i.e. the sum over forwards of rows x query length. Prefill counts its prompt length per
row that encodes it; a sampled token counts once it is fed back; the last sampled token of a
sample, and the token of a pruned child, are never fed and never count.

The two KV stores of EAB hold the keys and values of the live paths (one batch row per path):

- ``DeepCopyStore`` (``cache: original``): a ``DynamicCache`` with one full-length row per path,
  prompt included. Branching gathers rows with ``index_select``: every child gets its own copy
  of its parent's whole cache. Memory ~ paths x (prompt + generated).
- ``SharedPrefixStore`` (``cache: cow``): the prompt's keys/values once, ``[1, kv_heads,
  prompt, head_dim]`` per layer, shared by every path without being copied or concatenated;
  plus per-path suffix buffers ``[paths, kv_heads, max_new_tokens, head_dim]`` for the
  generated tokens, written in place. Branching gathers suffix rows only. Attention runs through
  ``shared_prefix_attention`` (registered with transformers' ``AttentionInterface``), which
  scores the query against the prefix (paths folded into the matmul rows, no broadcast copy)
  and against the path's suffix, and takes one softmax over both. Memory ~ prompt + paths x
  generated. Limits: the generated tokens that siblings share before they diverge are copied
  at the branch (suffix rows only, at most ``max_new_tokens`` each); decode steps must have
  query length 1; the model's attention must go through ``ALL_ATTENTION_FUNCTIONS`` and
  ``past_key_values.update`` (Llama, GPT-NeoX and most transformers decoders; not sliding-window
  or hybrid caches).
"""

from __future__ import annotations

import contextlib
import math

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import Cache, DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward

SHARED_PREFIX_ATTENTION = "decodebench_shared_prefix"


# --- sampling ---------------------------------------------------------------------------------

def next_token_distribution(logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and log-probabilities of the next token, both [rows, vocab] float32."""
    scores = logits.float() / temperature
    return torch.softmax(scores, dim=-1), torch.log_softmax(scores, dim=-1)


def sample(probs: torch.Tensor) -> torch.Tensor:
    """One token per row: [rows, vocab] -> [rows] (transformers' sampling step)."""
    return torch.multinomial(probs, num_samples=1).squeeze(1)


def normalised_entropy(probs: torch.Tensor, logprobs: torch.Tensor) -> torch.Tensor:
    """Entropy of each row divided by log(vocab), in [0, 1]: [rows, vocab] -> [rows]."""
    entropy = -(probs * logprobs.clamp_min(torch.finfo(logprobs.dtype).min)).sum(-1)
    return entropy / math.log(probs.shape[-1])


# --- KV bytes (structural memory measure) ----------------------------------------------------

def tensor_bytes(*tensors: torch.Tensor | None) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def cache_bytes(cache) -> int:
    """Bytes of keys and values a transformers cache holds (DynamicCache or SharedPrefixCache)."""
    total = 0
    for layer in cache.layers:
        total += tensor_bytes(getattr(layer, "keys", None), getattr(layer, "values", None),
                              getattr(layer, "prefix_keys", None), getattr(layer, "prefix_values", None))
    return total


# --- deep-copy store (cache: original) -------------------------------------------------------

class DeepCopyStore:
    """One full KV row per live path; a child copies its parent's row (prompt included)."""

    def __init__(self, prefill_cache: DynamicCache, prompt_len: int):
        self.root = prefill_cache  # [1, ...]: the prompt's KV, parent of every first path
        self.cache = None  # DynamicCache over the live paths
        self.prompt_len = prompt_len

    def start(self, rows: int) -> None:
        """Live paths := `rows` children of the root, each with its own copy of the prompt KV."""
        index = torch.zeros(rows, dtype=torch.long, device=self.root.layers[0].keys.device)
        self.cache = DynamicCache()
        for layer in self.root.layers:
            new = DynamicLayer()
            new.lazy_initialization(layer.keys, layer.values)
            new.keys, new.values = layer.keys.index_select(0, index), layer.values.index_select(0, index)
            self.cache.layers.append(new)

    def select(self, rows: torch.Tensor) -> None:
        """Live paths := rows of the current ones (a row repeated = a parent's children): copies."""
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, rows)
            layer.values = layer.values.index_select(0, rows)

    def forward(self, model, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """Feed one token per live path at `position`: tokens [paths] -> logits [paths, vocab]."""
        positions = torch.full((tokens.shape[0], 1), position, dtype=torch.long, device=tokens.device)
        out = model(input_ids=tokens[:, None], past_key_values=self.cache, position_ids=positions, use_cache=True)
        self.cache = out.past_key_values
        return out.logits[:, -1, :]

    def session(self, model):
        return contextlib.nullcontext()

    def kv_bytes(self) -> int:
        return cache_bytes(self.root) + (cache_bytes(self.cache) if self.cache is not None else 0)


# --- shared-prefix store (cache: cow) --------------------------------------------------------

class SuffixLayer(DynamicLayer):
    """One layer: the shared prefix [1, kv_heads, prompt, dim] and per-path suffix buffers
    ``keys``/``values`` [paths, kv_heads, capacity, dim], of which the first ``length`` positions
    are written. ``update`` writes the new positions in place and returns views of the suffix."""

    def __init__(self, prefix_keys: torch.Tensor, prefix_values: torch.Tensor, capacity: int):
        super().__init__()
        self.prefix_keys, self.prefix_values = prefix_keys, prefix_values
        self.capacity = capacity
        self.length = 0
        self.dtype, self.device = prefix_keys.dtype, prefix_keys.device
        self.is_initialized = True
        self.keys = self.values = None

    def allocate(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        _, heads, _, dim = self.prefix_keys.shape
        shape = (rows, heads, self.capacity, dim)
        return (torch.empty(shape, dtype=self.dtype, device=self.device),
                torch.empty(shape, dtype=self.dtype, device=self.device))

    def start(self, rows: int) -> None:
        self.keys, self.values = self.allocate(rows)
        self.length = 0

    def select(self, rows: torch.Tensor) -> None:
        keys, values = self.allocate(rows.shape[0])
        keys[:, :, : self.length] = self.keys[:, :, : self.length].index_select(0, rows)
        values[:, :, : self.length] = self.values[:, :, : self.length].index_select(0, rows)
        self.keys, self.values = keys, values

    def update(self, key_states, value_states, *args, **kwargs):
        # key_states: [paths, kv_heads, q, dim]
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"shared-prefix cache: suffix capacity {self.capacity} exceeded")
        self.keys[:, :, self.length:end] = key_states
        self.values[:, :, self.length:end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.prefix_keys.shape[-2] + self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0


class SharedPrefixCache(Cache):
    """A transformers Cache of ``SuffixLayer``s; pass it as ``past_key_values`` and as the
    ``shared_prefix`` keyword (which reaches ``shared_prefix_attention``)."""

    def __init__(self, prefill_cache: DynamicCache, capacity: int):
        super().__init__(layers=[SuffixLayer(layer.keys, layer.values, capacity) for layer in prefill_cache.layers])


def shared_prefix_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                            scaling: float | None = None, shared_prefix: SharedPrefixCache | None = None,
                            **kwargs):
    """Attention of one new position per path over [shared prefix ; the path's suffix].

    query [paths, heads, 1, dim]; key/value: the path's suffix [paths, kv_heads, suffix, dim]
    (what ``SuffixLayer.update`` returned); the prefix [1, kv_heads, prompt, dim] comes from
    ``shared_prefix``. Without ``shared_prefix`` (a prefill), this is transformers' SDPA.
    Returns [paths, 1, heads, dim] as every attention function of the interface does.
    """
    if shared_prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    layer = shared_prefix.layers[module.layer_idx]
    paths, heads, q_len, dim = query.shape
    if q_len != 1:
        raise ValueError(f"shared-prefix attention decodes one position per path, got {q_len}")
    kv_heads, prompt_len = layer.prefix_keys.shape[1], layer.prefix_keys.shape[2]
    group = heads // kv_heads  # query heads per kv head (GQA); head h uses kv head h // group
    scaling = dim ** -0.5 if scaling is None else scaling
    q = query.view(paths, kv_heads, group, dim)  # [paths, kv_heads, group, dim]
    # prefix: fold paths into the rows of one matmul per kv head -> [kv_heads, paths*group, prompt]
    q_rows = q.transpose(0, 1).reshape(kv_heads, paths * group, dim)
    s_prefix = torch.matmul(q_rows, layer.prefix_keys[0].transpose(-1, -2))
    s_prefix = s_prefix.view(kv_heads, paths, group, prompt_len).transpose(0, 1)  # [paths, kv_heads, group, prompt]
    s_suffix = torch.matmul(q, key.transpose(-1, -2))  # [paths, kv_heads, group, suffix]
    weights = torch.softmax(torch.cat([s_prefix, s_suffix], dim=-1).float() * scaling, dim=-1).to(query.dtype)
    w_prefix = weights[..., :prompt_len].transpose(0, 1).reshape(kv_heads, paths * group, prompt_len)
    out = torch.matmul(w_prefix, layer.prefix_values[0]).view(kv_heads, paths, group, dim).transpose(0, 1)
    out = out + torch.matmul(weights[..., prompt_len:], value)  # [paths, kv_heads, group, dim]
    return out.reshape(paths, heads, 1, dim).transpose(1, 2).contiguous(), None


AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)


@contextlib.contextmanager
def attention_implementation(model, name: str):
    """Run `model` with attention implementation `name`, restoring the previous one after."""
    previous = model.config._attn_implementation
    model.set_attn_implementation(name)
    if model.config._attn_implementation != name:  # transformers only warns; attending to the suffix alone would be wrong
        raise RuntimeError(f"{type(model).__name__} does not accept attention implementation '{name}' "
                           "(it does not use transformers' AttentionInterface); eab_cow cannot run on it")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


class SharedPrefixStore:
    """The prompt's KV once, shared by every path; per-path suffixes of generated tokens."""

    def __init__(self, prefill_cache: DynamicCache, prompt_len: int, capacity: int):
        self.cache = SharedPrefixCache(prefill_cache, capacity)
        self.prompt_len = prompt_len

    def start(self, rows: int) -> None:
        for layer in self.cache.layers:
            layer.start(rows)

    def select(self, rows: torch.Tensor) -> None:
        for layer in self.cache.layers:
            layer.select(rows)

    def forward(self, model, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """Feed one token per live path at `position` (inside ``session``): [paths] -> [paths, vocab]."""
        positions = torch.full((tokens.shape[0], 1), position, dtype=torch.long, device=tokens.device)
        out = model(input_ids=tokens[:, None], past_key_values=self.cache, position_ids=positions,
                    use_cache=True, shared_prefix=self.cache)
        return out.logits[:, -1, :]

    def session(self, model):
        return attention_implementation(model, SHARED_PREFIX_ATTENTION)

    def kv_bytes(self) -> int:
        return cache_bytes(self.cache)


# --- independent samples (naive, naive_batched) ----------------------------------------------

def sample_rows(ctx, rows: int) -> tuple[list[list[int]], int, int]:
    """`rows` independent samples in one batch, each row re-encoding the prompt.

    Prefill [rows, prompt]; then per step sample one token per live row and feed the live rows
    back in one forward; a row that ends (EOS when enabled, or the budget) leaves the batch.
    Returns (samples, token_steps, kv_computed_peak_bytes).
    """
    model, budget = ctx.target, ctx.budget
    ids = ctx.prompt_ids.expand(rows, -1)  # [rows, prompt]
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)  # only the last position's logits
    cache, logits = out.past_key_values, out.logits[:, -1, :]
    token_steps, kv_peak = ids.numel(), cache_bytes(cache)
    samples: list[list[int]] = [[] for _ in range(rows)]
    live = list(range(rows))  # sample index of each batch row
    position = ids.shape[1]
    while True:
        probs, _ = next_token_distribution(logits, ctx.temperature)
        tokens = sample(probs)  # [live]
        ctx.commit(len(tokens))
        keep = []
        for row, token in enumerate(tokens.tolist()):
            samples[live[row]].append(token)
            if len(samples[live[row]]) < budget.max_new_tokens and not budget.is_eos(token):
                keep.append(row)
        if not keep:
            return samples, token_steps, kv_peak
        if len(keep) != len(live):
            cache.batch_select_indices(torch.tensor(keep, device=tokens.device))
            live = [live[row] for row in keep]
        fed = tokens[keep][:, None]  # [live, 1]
        positions = torch.full_like(fed, position)
        out = model(input_ids=fed, past_key_values=cache, position_ids=positions, use_cache=True)
        cache, logits = out.past_key_values, out.logits[:, -1, :]
        token_steps += len(live)
        kv_peak = max(kv_peak, cache_bytes(cache))
        position += 1
