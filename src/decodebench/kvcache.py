"""KV-cache operations shared by every method: a preallocated cache, its length, crop, compaction.

``KVCache`` is a transformers ``Cache`` whose layers (``PreallocatedLayer``) allocate their
keys and values once, at a fixed capacity, on the first forward (shape, dtype and device are
taken from that forward's key states, so one class serves every architecture the project
runs: Llama, GPT-NeoX, ...). A forward writes its new keys/values in place at the current
length and attends over a view of the first ``length`` positions, the same tensor values
and the same shapes as a ``DynamicCache`` would give it, so masks, positions and outputs are
unchanged; what changes is the cost (gpt-fast's ``KVCache`` likewise writes in place):

- no ``torch.cat`` per forward (``DynamicCache`` copies the whole layer on every forward, an
  O(context) copy per step that penalises AR, one token per forward, more than speculation);
- cropping after a rejected draft sets the length (``crop_to``); nothing is copied;
- compaction after tree acceptance (``keep_positions``) moves only the accepted rows that are
  not already in place, with one index tensor per device, instead of ``index_select``-ing
  the whole cache of every layer.

The length is a Python int, so ``get_seq_length`` (called by the model for positions and the
mask) never synchronises with the device. Capacity: what a generation can hold at most,
prompt + max_new_tokens + the widest verification (``capacity_for``); a write beyond it grows
the buffers (a copy, counted in ``KVCache.reallocations``, which the tests assert stays 0).

``crop_to`` and ``keep_positions`` also accept a ``DynamicCache`` (the tests' and external
callers' caches; transformers' own loops, ``hf_assisted`` / ``pld``, keep theirs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


class PreallocatedLayer(CacheLayerMixin):
    """One decoder layer's keys and values, ``[batch, kv_heads, capacity, head_dim]``, written
    in place; ``keys`` / ``values`` are views of the first ``length`` positions."""

    is_sliding = False
    is_croppable = True
    is_compileable = False  # shapes vary with the length: transformers treats it like a dynamic layer

    def __init__(self, capacity: int):
        # no super().__init__(): it would assign `keys`/`values`, which are views here
        self.capacity = capacity
        self.length = 0
        self.reallocations = 0
        self.is_initialized = False
        self.key_buffer: torch.Tensor | None = None
        self.value_buffer: torch.Tensor | None = None

    @property  # a view of the buffer, not a stored tensor as in CacheLayerMixin
    def keys(self) -> torch.Tensor | None:  # type: ignore[override]
        return None if self.key_buffer is None else self.key_buffer[..., :self.length, :]

    @property
    def values(self) -> torch.Tensor | None:  # type: ignore[override]
        return None if self.value_buffer is None else self.value_buffer[..., :self.length, :]

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        batch, heads = key_states.shape[:2]
        # torch.empty: positions past `length` are never read, and on CPU pages of the tail that
        # no forward reaches stay unresident
        self.key_buffer = key_states.new_empty((batch, heads, self.capacity, key_states.shape[-1]))
        self.value_buffer = value_states.new_empty((batch, heads, self.capacity, value_states.shape[-1]))
        self.is_initialized = True

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * self.capacity)
        for name in ("key_buffer", "value_buffer"):
            old = getattr(self, name)
            new = old.new_empty((*old.shape[:2], capacity, old.shape[-1]))
            new[..., :self.length, :] = old[..., :self.length, :]
            setattr(self, name, new)
        self.capacity = capacity
        self.reallocations += 1

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, end = self.length, self.length + key_states.shape[-2]
        if end > self.capacity:
            self._grow(end)
        keys, values = self.key_buffer, self.value_buffer
        assert keys is not None and values is not None  # allocated by lazy_initialization
        keys[..., start:end, :] = key_states
        values[..., start:end, :] = value_states
        self.length = end
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0  # as DynamicLayer: keys = the cached ones + the queries'

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return -1  # grows if it must (see the module docstring)

    def crop(self, tokens_to_remove: int) -> None:
        """transformers' convention: a negative count of positions to drop."""
        if tokens_to_remove > 0:
            raise ValueError("crop takes a negative number of positions to remove")
        self.length = max(self.length + tokens_to_remove, 0)

    def reset(self) -> None:
        self.length = 0


class KVCache(Cache):
    """A transformers ``Cache`` of ``PreallocatedLayer``s, one per decoder layer (created on the
    first forward). Pass it as ``past_key_values``."""

    def __init__(self, capacity: int):
        # transformers calls layer_class_to_replicate() with no arguments: a factory serves
        super().__init__(layer_class_to_replicate=lambda: PreallocatedLayer(capacity))  # type: ignore[arg-type]
        self.capacity = capacity

    @property
    def reallocations(self) -> int:
        return sum(getattr(layer, "reallocations", 0) for layer in self.layers)


def capacity_for(prompt_ids: torch.Tensor, max_new_tokens: int, width: int) -> int:
    """Positions a generation's cache can need: prompt + budget + the most positions one
    forward appends beyond the committed tokens (a verification's drafts or tree nodes)."""
    return prompt_ids.shape[-1] + max_new_tokens + width


def cache_length(cache) -> int:
    return int(cache.get_seq_length())


def crop_to(cache, length: int) -> None:
    """Keep the first `length` positions of every layer (after a rejected draft)."""
    for layer in cache.layers:
        if isinstance(layer, PreallocatedLayer):
            layer.length = min(layer.length, length)
        elif getattr(layer, "is_initialized", True) and layer.keys is not None and layer.keys.numel():
            layer.keys = layer.keys[..., :length, :]
            layer.values = layer.values[..., :length, :]


def keep_positions(cache, start: int, positions: Sequence[int] | torch.Tensor) -> None:
    """Keep positions [0, start) and then `positions` (absolute, ascending, each >= its
    destination), dropping the rest.

    After tree verification: the prefix stays, and of the tree's nodes only the accepted
    path (``positions`` = prefix_len + node indices) is compacted behind it. In a ``KVCache``
    only the rows not already in place move (a path 1, 2, 3 directly behind the root moves
    nothing); the index is built once per device, not once per layer.
    """
    positions = positions.tolist() if isinstance(positions, torch.Tensor) else list(positions)
    moved = next((i for i, p in enumerate(positions) if p != start + i), len(positions))
    index: dict = {}  # device (KVCache rows to move) or ("all", device) (DynamicCache) -> index
    for layer in cache.layers:
        if isinstance(layer, PreallocatedLayer):
            if not layer.is_initialized:
                continue
            keys, values = layer.key_buffer, layer.value_buffer
            if moved < len(positions) and keys is not None and values is not None:
                device = keys.device
                if device not in index:
                    index[device] = torch.tensor(positions[moved:], dtype=torch.long, device=device)
                dst = slice(start + moved, start + len(positions))
                # index_select copies the rows first, so sources and destinations may overlap
                keys[..., dst, :] = keys.index_select(-2, index[device])
                values[..., dst, :] = values.index_select(-2, index[device])
            layer.length = start + len(positions)
            continue
        if not getattr(layer, "is_initialized", True) or layer.keys is None or not layer.keys.numel():
            continue
        device = layer.keys.device
        if ("all", device) not in index:  # a DynamicCache: the prefix and the kept positions
            index["all", device] = torch.cat([torch.arange(start, device=device),
                                              torch.tensor(positions, dtype=torch.long, device=device)])
        layer.keys = layer.keys.index_select(-2, index["all", device])
        layer.values = layer.values.index_select(-2, index["all", device])
