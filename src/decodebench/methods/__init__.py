"""Decoding methods behind one interface.

A method is a function ``generate(ctx: GenContext) -> GenerationOutput`` (the interface types
are in ``methods/base.py``) plus a ``MethodSpec`` that says what it needs (a draft model?), what it claims (lossless w.r.t.
greedy AR?) and its parameters (a dataclass whose defaults are the documented defaults).

The measurement contract every method follows (docs/methods.md, "Definitions"):

- ``ctx.commit(n)`` each time it commits n new tokens, right after reading them on the host:
  latency (TTFT, TPOT and its percentiles) comes from these commit times alone;
- greedy decisions through ``greedy`` (argmax over float32 logits, whatever the weights' dtype);
- target prefill with ``logits_to_keep=1`` (or the number of positions it verifies): no method
  computes logits for prompt positions nobody reads;
- speculative methods time their phases with ``ctx.phase("draft")`` / ``ctx.phase("verify")``
  (``"prefill"`` for a prefill outside any round) and record each verification round with
  ``ctx.add_round(Round(...))``; ``ctx.round_stats()`` turns them into record fields.
  On CUDA the phases are timed with CUDA events, read after the generation, so phase timing
  adds no synchronisation to the timed path.

Target forwards (the denominator of tokens per target forward) are counted by the harness
with a forward hook, the same way for every method. Token counts come from generated ids,
never from re-tokenised text.
"""

from __future__ import annotations

from .base import Budget, ForwardCount, GenContext, GenerationOutput, MethodSpec, counting_forwards, greedy

__all__ = ["Budget", "ForwardCount", "GenContext", "GenerationOutput", "MethodSpec", "all_methods",
           "counting_forwards", "get_method", "greedy", "method_aliases"]


_REGISTRY: dict[str, MethodSpec] = {}
_ALIASES: dict[str, str] = {}  # an old id -> the id it was renamed to


def _load_specs() -> None:
    """The implemented methods (``specs.SPECS``) and the old ids kept as aliases, once."""
    if _REGISTRY:
        return
    from .specs import ALIASES, SPECS

    _REGISTRY.update({spec.id: spec for spec in SPECS})
    _ALIASES.update(ALIASES)  # configs that use an old id keep working: it resolves to the new one


def get_method(method_id: str) -> MethodSpec:
    """The method registered as `method_id`, or the one an alias `method_id` resolves to."""
    _load_specs()
    method_id = _ALIASES.get(method_id, method_id)
    if method_id not in _REGISTRY:
        raise ValueError(f"unknown method '{method_id}' (implemented: {', '.join(sorted(_REGISTRY))}; "
                         f"aliases: {', '.join(f'{a} -> {b}' for a, b in sorted(_ALIASES.items()))})")
    return _REGISTRY[method_id]


def method_aliases() -> dict[str, str]:
    _load_specs()
    return dict(_ALIASES)


def all_methods() -> dict[str, MethodSpec]:
    _load_specs()
    return dict(_REGISTRY)
