"""Pieces shared by the multi-sample methods: sampling, entropy, the KV stores, their attention.

Sampling is the same everywhere, and the same as transformers' ``generate(do_sample=True,
top_k=0, top_p=1.0)``: ``probs = softmax(logits.float() / temperature)``, then
``torch.multinomial(probs, 1)``. The random numbers come from ``torch.Generator``s seeded from
the generation's seed (``ctx.seed``), never from the global RNG:

- independent samples (``naive``, ``naive_batched``, ``shared_prefill``): sample i has its own
  generator, seeded with ``sample_seed(seed, i) = (seed + i * 0x9E3779B9) mod 2**32``, and draws one token per
  step from it, whichever batch it is decoded in. So the three methods give the same samples
  (up to the float rounding of a different batch shape), and sample 0 of a generation draws
  exactly what ``torch.manual_seed(seed)`` + transformers' sampling would.
- EAB: one generator seeded with ``seed`` for all paths (its children are sampled jointly), so
  one EAB path without branching draws exactly naive's sample 0.

Token-steps (the one definition for every method): the number of token positions fed to the
target, i.e. the sum over forwards of rows x query length. Prefill counts its prompt length per
row that encodes it; a sampled token counts once it is fed back; the last sampled token of a
sample, and the token of a pruned child, are never fed and never count.

The KV stores hold the keys and values of the live paths (one batch row per path) in buffers
preallocated for the whole generation and written in place (no ``torch.cat`` per step). Both
use ONE attention function, ``path_attention`` (registered with transformers'
``AttentionInterface``), so that a difference between stores is a difference of storage:

- ``DeepCopyStore`` (``deepcopy``): each path's row holds its own copy of the prompt's KV and of
  its generated tokens, ``[paths, kv_heads, prompt + max_new_tokens, head_dim]`` per layer.
  Branching, pruning and ending paths gather whole rows into new buffers: a child copies its
  parent's prompt and suffix. Memory ~ paths x (prompt + max_new_tokens).
- ``SharedPrefixStore`` (``shared_prefix``): the prompt's keys/values once, ``[1, kv_heads,
  prompt, head_dim]`` per layer (the prefill's own tensors, never copied), shared by every path;
  per-path suffix buffers ``[paths, kv_heads, max_new_tokens, head_dim]``. Branching gathers
  suffix rows into new buffers (copy on branch). Memory ~ prompt + paths x max_new_tokens.

``path_attention`` scores the query of each path against the shared prefix (if the store has
one; the paths folded into the rows of one matmul per KV head, no broadcast copy) and against
the path's own row, takes one softmax over both and sums the value products. Limits: decode
steps must have query length 1 (a prefill runs transformers' SDPA); the model must route
attention through ``ALL_ATTENTION_FUNCTIONS`` and ``past_key_values.update`` (Llama, GPT-NeoX
and most transformers decoders; not sliding-window or hybrid caches).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import Cache, DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward

PATH_ATTENTION = "decodebench_paths"
# Odd, so i -> seed + i * stride is one-to-one mod 2**32 (torch's CPU generator keeps 32 bits of a
# seed); the golden-ratio constant keeps the seeds of nearby generation seeds (study seed + prompt
# index) apart.
SAMPLE_SEED_STRIDE = 0x9E3779B9


# --- sampling ---------------------------------------------------------------------------------

def next_token_distribution(logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and log-probabilities of the next token, both [rows, vocab] float32."""
    scores = logits.float() / temperature
    return torch.softmax(scores, dim=-1), torch.log_softmax(scores, dim=-1)


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row: [rows, vocab] -> [rows] (transformers' sampling step)."""
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample `index`'s generator in a generation seeded with `seed` (sample 0: `seed`)."""
    return (seed + index * SAMPLE_SEED_STRIDE) % 2 ** 32


def generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def sample_each(probs: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Row i's token from generator i: [rows, vocab] -> [rows]. One draw per row, so a sample's
    tokens do not depend on which other samples share its batch."""
    return torch.cat([torch.multinomial(p[None], 1, generator=g)[0] for p, g in zip(probs, generators)])


def normalised_entropy(probs: torch.Tensor, logprobs: torch.Tensor) -> torch.Tensor:
    """Entropy of each row divided by log(vocab), in [0, 1]: [rows, vocab] -> [rows]."""
    entropy = -(probs * logprobs.clamp_min(torch.finfo(logprobs.dtype).min)).sum(-1)
    return entropy / math.log(probs.shape[-1])


# --- KV bytes (structural memory measure) ----------------------------------------------------

def tensor_bytes(*tensors: torch.Tensor | None) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def cache_bytes(cache) -> int:
    """Bytes of keys and values a transformers cache holds (DynamicCache or PathCache)."""
    total = 0
    for layer in cache.layers:
        total += tensor_bytes(getattr(layer, "keys", None), getattr(layer, "values", None),
                              getattr(layer, "prompt_keys", None), getattr(layer, "prompt_values", None))
    return total


# --- the stores ------------------------------------------------------------------------------

class PathLayer(DynamicLayer):
    """One layer of a store: the prefill's keys/values ``prompt_keys``/``prompt_values``
    [prefill rows, kv_heads, prompt, dim], and per-path buffers ``keys``/``values`` [paths,
    kv_heads, capacity, dim] of which the first ``length`` positions are written.

    share_prompt: the prompt stays one tensor that ``path_attention`` reads as the shared prefix,
    and a path's row holds only its generated tokens (capacity = max_new_tokens). Otherwise each
    row starts with a copy of the prompt (capacity = prompt + max_new_tokens)."""

    def __init__(self, prompt_keys: torch.Tensor, prompt_values: torch.Tensor, max_new_tokens: int,
                 share_prompt: bool):
        super().__init__()
        if share_prompt and prompt_keys.shape[0] != 1:
            raise ValueError(f"a shared prefix is one prefill row, got {prompt_keys.shape[0]}")
        # None once released (start with keep_prompt=False)
        self.prompt_keys: torch.Tensor | None = prompt_keys
        self.prompt_values: torch.Tensor | None = prompt_values
        self.share_prompt = share_prompt
        self.prompt_len = prompt_keys.shape[-2]
        self.capacity = max_new_tokens + (0 if share_prompt else self.prompt_len)
        self.length = 0
        self.dtype, self.device = prompt_keys.dtype, prompt_keys.device
        self.kv_heads, self.head_dim = prompt_keys.shape[1], prompt_keys.shape[3]
        self.is_initialized = True
        self.keys = self.values = None

    @property
    def prefix(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The keys/values every path attends to without holding them: [1, kv_heads, prompt, dim]."""
        if not self.share_prompt or self.prompt_keys is None or self.prompt_values is None:
            return None  # a shared prefix is never released
        return self.prompt_keys, self.prompt_values

    def allocate(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (rows, self.kv_heads, self.capacity, self.head_dim)
        return (torch.empty(shape, dtype=self.dtype, device=self.device),
                torch.empty(shape, dtype=self.dtype, device=self.device))

    def start(self, rows: int, keep_prompt: bool) -> None:
        """`rows` paths that have generated nothing yet. Without a shared prefix, each row gets a
        copy of the prompt (of prefill row i, or of the one prefill row); `keep_prompt=False`
        then releases the prefill's tensors (no later start will need them)."""
        self.keys, self.values = self.allocate(rows)
        self.length = 0
        if self.share_prompt:
            return
        if self.prompt_keys is None or self.prompt_values is None:
            raise ValueError("the prefill was released (an earlier start with keep_prompt=False)")
        if self.prompt_keys.shape[0] not in (1, rows):
            raise ValueError(f"cannot start {rows} paths from a prefill of {self.prompt_keys.shape[0]} rows")
        self.keys[:, :, : self.prompt_len] = self.prompt_keys
        self.values[:, :, : self.prompt_len] = self.prompt_values
        self.length = self.prompt_len
        if not keep_prompt:
            self.prompt_keys = self.prompt_values = None

    def select(self, rows: torch.Tensor) -> None:
        """Paths := `rows` of the current ones (a row repeated: a parent's children), gathered
        into new buffers (copy on branch)."""
        assert self.keys is not None and self.values is not None  # allocated by start()
        keys, values = self.allocate(rows.shape[0])
        keys[:, :, : self.length] = self.keys[:, :, : self.length].index_select(0, rows)
        values[:, :, : self.length] = self.values[:, :, : self.length].index_select(0, rows)
        self.keys, self.values = keys, values

    def update(self, key_states, value_states, *args, **kwargs):
        # key_states: [paths, kv_heads, q, dim]
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"KV store: row capacity {self.capacity} exceeded")
        self.keys[:, :, self.length:end] = key_states
        self.values[:, :, self.length:end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.length + (self.prompt_len if self.share_prompt else 0)

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0


class PathCache(Cache):
    """A transformers Cache of ``PathLayer``s; pass it as ``past_key_values`` and as the
    ``path_cache`` keyword (which reaches ``path_attention``)."""

    def __init__(self, prefill_cache: DynamicCache, max_new_tokens: int, share_prompt: bool):
        self.path_layers = [PathLayer(*_prefill_kv(layer), max_new_tokens, share_prompt)
                            for layer in prefill_cache.layers]
        super().__init__(layers=[*self.path_layers])


def _prefill_kv(layer) -> tuple[torch.Tensor, torch.Tensor]:
    keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
    if keys is None or values is None:
        raise ValueError(f"multi-sample paths start from a prefilled key/value cache, got a {type(layer).__name__}")
    return keys, values


def path_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                   scaling: float | None = None, path_cache: PathCache | None = None, **kwargs):
    """Attention of one new position per path over [shared prefix ;] the path's own row.

    query [paths, heads, 1, dim]; key/value: the path's row [paths, kv_heads, length, dim]
    (what ``PathLayer.update`` returned); the shared prefix [1, kv_heads, prompt, dim], if the
    store has one, comes from ``path_cache``. Without ``path_cache`` (a prefill), this is
    transformers' SDPA. Returns [paths, 1, heads, dim] as every attention function of the
    interface does.
    """
    if path_cache is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    prefix = path_cache.layers[module.layer_idx].prefix
    paths, heads, q_len, dim = query.shape
    if q_len != 1:
        raise ValueError(f"path attention decodes one position per path, got {q_len}")
    kv_heads = key.shape[1]
    group = heads // kv_heads  # query heads per kv head (GQA); head h uses kv head h // group
    scaling = dim ** -0.5 if scaling is None else scaling
    q = query.view(paths, kv_heads, group, dim)  # [paths, kv_heads, group, dim]
    scores = torch.matmul(q, key.transpose(-1, -2))  # [paths, kv_heads, group, length]
    if prefix is None:
        weights = torch.softmax(scores.float() * scaling, dim=-1).to(query.dtype)
        out = torch.matmul(weights, value)  # [paths, kv_heads, group, dim]
        return out.reshape(paths, heads, 1, dim).transpose(1, 2).contiguous(), None
    prefix_keys, prefix_values = prefix
    prompt_len = prefix_keys.shape[2]
    # prefix: fold paths into the rows of one matmul per kv head -> [kv_heads, paths*group, prompt]
    q_rows = q.transpose(0, 1).reshape(kv_heads, paths * group, dim)
    s_prefix = torch.matmul(q_rows, prefix_keys[0].transpose(-1, -2))
    s_prefix = s_prefix.view(kv_heads, paths, group, prompt_len).transpose(0, 1)  # [paths, kv_heads, group, prompt]
    weights = torch.softmax(torch.cat([s_prefix, scores], dim=-1).float() * scaling, dim=-1).to(query.dtype)
    w_prefix = weights[..., :prompt_len].transpose(0, 1).reshape(kv_heads, paths * group, prompt_len)
    out = torch.matmul(w_prefix, prefix_values[0]).view(kv_heads, paths, group, dim).transpose(0, 1)
    out = out + torch.matmul(weights[..., prompt_len:], value)  # [paths, kv_heads, group, dim]
    return out.reshape(paths, heads, 1, dim).transpose(1, 2).contiguous(), None


AttentionInterface.register(PATH_ATTENTION, path_attention)


@contextlib.contextmanager
def attention_implementation(model, name: str):
    """Run `model` with attention implementation `name`, restoring the previous one after."""
    previous = model.config._attn_implementation
    model.set_attn_implementation(name)
    if model.config._attn_implementation != name:  # transformers only warns; attending to the suffix alone would be wrong
        raise RuntimeError(f"{type(model).__name__} does not accept attention implementation '{name}' "
                           "(it does not use transformers' AttentionInterface); the multi-sample KV stores "
                           "cannot run on it")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


class PathStore:
    """The live paths' keys/values (one row per path) over one prefill; see the module docstring."""

    share_prompt: bool = False

    def __init__(self, prefill_cache: DynamicCache, prompt_len: int, max_new_tokens: int):
        self.cache = PathCache(prefill_cache, max_new_tokens, self.share_prompt)
        self.prompt_len = prompt_len

    def start(self, rows: int, keep_prompt: bool = True) -> None:
        """Live paths := `rows` fresh paths over the prompt."""
        for layer in self.cache.path_layers:
            layer.start(rows, keep_prompt)

    def select(self, rows: torch.Tensor) -> None:
        """Live paths := rows of the current ones (a row repeated = a parent's children)."""
        for layer in self.cache.path_layers:
            layer.select(rows)

    def forward(self, model, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """Feed one token per live path at `position` (inside ``session``): [paths] -> [paths, vocab]."""
        positions = torch.full((tokens.shape[0], 1), position, dtype=torch.long, device=tokens.device)
        out = model(input_ids=tokens[:, None], past_key_values=self.cache, position_ids=positions,
                    use_cache=True, path_cache=self.cache)
        return out.logits[:, -1, :]

    def session(self, model):
        return attention_implementation(model, PATH_ATTENTION)

    def kv_bytes(self) -> int:
        return cache_bytes(self.cache)


class DeepCopyStore(PathStore):
    """Each path's row holds its own copy of the prompt and its generated tokens."""

    share_prompt = False


class SharedPrefixStore(PathStore):
    """The prompt's KV once, shared by every path; per-path rows of generated tokens."""

    share_prompt = True


STORES = {"deepcopy": DeepCopyStore, "shared_prefix": SharedPrefixStore}  # method_params.STORES names them


def make_store(kind: str, prefill_cache: DynamicCache, prompt_len: int, max_new_tokens: int) -> PathStore:
    if kind not in STORES:
        raise ValueError(f"unknown KV store {kind!r} (known: {', '.join(STORES)})")
    return STORES[kind](prefill_cache, prompt_len, max_new_tokens)


# --- independent samples (naive, naive_batched, shared_prefill) -------------------------------

@dataclass
class Samples:
    """Samples of one decode, with what they cost."""
    tokens: list[list[int]] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)  # each sample's log-probability (sampling distribution)
    token_steps: int = 0
    kv_computed_peak_bytes: int = 0

    def extend(self, other: Samples) -> None:
        self.tokens += other.tokens
        self.logprobs += other.logprobs
        self.token_steps += other.token_steps
        self.kv_computed_peak_bytes = max(self.kv_computed_peak_bytes, other.kv_computed_peak_bytes)

    def stats(self, **extra) -> dict:
        """The record fields of independent samples (no branching)."""
        return {"num_samples": len(self.tokens), "token_steps": self.token_steps, "branch_points": 0,
                "final_paths": len(self.tokens),
                "extra": {"sample_logprob": self.logprobs, "kv_computed_peak_bytes": self.kv_computed_peak_bytes,
                          **extra}}


def sample_rows(ctx, rows: int, *, prefill_rows: int, store: str, first: int = 0) -> Samples:
    """Samples `first` .. `first + rows - 1`, independent, decoded in one batch of `rows` rows.

    prefill_rows = rows: the prompt repeated and prefilled as `rows` rows (each sample encodes
    it); prefill_rows = 1: one prefill whose KV the store gives every row. Then per step each
    live row samples one token from its own generator (``sample_each``) and the live rows are
    fed back in one forward through the store; a row that ends (EOS when enabled, or the budget)
    leaves the batch.
    """
    model, budget = ctx.target, ctx.budget
    ids = ctx.prompt_ids.expand(prefill_rows, -1)  # [prefill_rows, prompt]
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)  # only the last position's logits
    logits = out.logits[:, -1, :].expand(rows, -1)  # [rows, vocab]
    kv = make_store(store, out.past_key_values, ids.shape[1], budget.max_new_tokens)
    del out
    result = Samples(tokens=[[] for _ in range(rows)], logprobs=[0.0] * rows, token_steps=ids.numel())
    generators = [generator(ctx.device, sample_seed(ctx.seed, first + i)) for i in range(rows)]
    live = list(range(rows))  # sample index of each batch row
    position = ids.shape[1]
    with kv.session(model):
        kv.start(rows, keep_prompt=False)
        result.kv_computed_peak_bytes = kv.kv_bytes()
        while True:
            probs, logprobs = next_token_distribution(logits, ctx.temperature)
            tokens = sample_each(probs, [generators[i] for i in live])  # [live]
            token_logprobs = logprobs.gather(1, tokens[:, None]).squeeze(1).tolist()
            ctx.commit(len(tokens))
            keep = []
            for row, (token, lp) in enumerate(zip(tokens.tolist(), token_logprobs)):
                result.tokens[live[row]].append(token)
                result.logprobs[live[row]] += lp
                if len(result.tokens[live[row]]) < budget.max_new_tokens and not budget.is_eos(token):
                    keep.append(row)
            if not keep:
                return result
            if len(keep) != len(live):
                kv.select(torch.tensor(keep, device=tokens.device))
                live = [live[row] for row in keep]
            logits = kv.forward(model, tokens[keep], position)  # one batched forward
            result.token_steps += len(live)
            position += 1
            result.kv_computed_peak_bytes = max(result.kv_computed_peak_bytes, kv.kv_bytes())
