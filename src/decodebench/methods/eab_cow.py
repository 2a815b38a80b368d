"""EAB with ``cache: cow``: the prompt's keys/values are shared by every path, never copied.

Per-path storage holds only the generated tokens; attention reads [shared prefix ; own
suffix] without concatenating them (``decodebench.multisample.SharedPrefixStore`` and
``shared_prefix_attention``). The algorithm, parameters and defaults:
``decodebench.methods.eab``.
"""

from __future__ import annotations

from . import GenContext, GenerationOutput, eab


def generate(ctx: GenContext) -> GenerationOutput:
    return eab.generate(ctx, "cow")
