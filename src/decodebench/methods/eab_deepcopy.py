"""EAB with the deep-copy KV store: each path's row holds its own copy of prompt + generated tokens.

Rows are preallocated to prompt + max_new_tokens and written in place; branching, pruning and
ending paths gather whole rows into new buffers, so a child copies its parent's prompt and
suffix (``decodebench.multisample.DeepCopyStore``). Alias: ``eab_original`` (the old id). The
algorithm, parameters and defaults: ``decodebench.methods.eab``.
"""

from __future__ import annotations

from . import eab
from .base import GenContext, GenerationOutput


def generate(ctx: GenContext) -> GenerationOutput:
    return eab.generate(ctx, "deepcopy")
