"""EAB with ``cache: original``: each child gets a deep copy of its parent's KV cache.

The live paths are rows of one ``DynamicCache``, prompt included; branching and pruning
gather rows with ``index_select`` (``decodebench.multisample.DeepCopyStore``). The algorithm,
parameters and defaults: ``decodebench.methods.eab``.
"""

from __future__ import annotations

from . import GenContext, GenerationOutput, eab


def generate(ctx: GenContext) -> GenerationOutput:
    return eab.generate(ctx, "original")
