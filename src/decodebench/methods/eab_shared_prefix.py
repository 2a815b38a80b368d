"""EAB with the shared-prefix, copy-on-branch KV store: the prompt's KV once, shared by every path.

Per-path rows hold only the generated tokens, preallocated to max_new_tokens; a branch copies
its parent's generated tokens into the children's rows (``decodebench.multisample.
SharedPrefixStore``). Alias: ``eab_cow`` (the old id). The algorithm, parameters and defaults:
``decodebench.methods.eab``.
"""

from __future__ import annotations

from . import eab
from .base import GenContext, GenerationOutput


def generate(ctx: GenContext) -> GenerationOutput:
    return eab.generate(ctx, "shared_prefix")
