"""KV-cache operations shared by every method: length, crop, keep selected positions.

Works on transformers' ``DynamicCache`` (one layer object per decoder layer with ``keys`` and
``values`` of shape ``[batch, kv_heads, seq, head_dim]``). Written against the layer tensors
directly, because ``DynamicCache.crop``'s argument changed meaning between versions.
"""

from __future__ import annotations

import torch


def cache_length(cache) -> int:
    return int(cache.get_seq_length())


def crop_to(cache, length: int) -> None:
    """Keep the first `length` positions of every layer (after a rejected draft)."""
    for layer in cache.layers:
        if getattr(layer, "is_initialized", True) and layer.keys is not None and layer.keys.numel():
            layer.keys = layer.keys[..., :length, :]
            layer.values = layer.values[..., :length, :]


def keep_positions(cache, start: int, positions: torch.Tensor) -> None:
    """Keep positions [0, start) and then `positions` (absolute, ascending), dropping the rest.

    After tree verification: the prefix stays, and of the tree's nodes only the accepted
    path (``positions`` = prefix_len + node indices) is compacted behind it.
    """
    for layer in cache.layers:
        if not getattr(layer, "is_initialized", True) or layer.keys is None or not layer.keys.numel():
            continue
        keep = torch.cat([torch.arange(start, device=layer.keys.device), positions.to(layer.keys.device)])
        layer.keys = layer.keys.index_select(-2, keep)
        layer.values = layer.values.index_select(-2, keep)
