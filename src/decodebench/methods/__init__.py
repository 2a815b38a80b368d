"""Decoding methods behind one interface.

A method is a function ``generate(ctx: GenContext) -> GenerationOutput`` plus a
``MethodSpec`` that says what it needs (a draft model?), what it claims (lossless w.r.t.
greedy AR?) and its parameters (a dataclass whose defaults are the documented defaults).

The method calls ``ctx.clock.mark_first_token()`` as soon as its first new token exists, and
times its draft and verify phases with ``ctx.phase("draft")`` / ``ctx.phase("verify")``.
Token counts come from generated ids, never from re-tokenised text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..measurement import Measurement, synchronize


@dataclass
class Budget:
    max_new_tokens: int
    eos_token_ids: frozenset[int] | None  # None: EOS disabled, exactly max_new_tokens are produced

    def is_eos(self, token: int) -> bool:
        return self.eos_token_ids is not None and token in self.eos_token_ids


@dataclass
class GenContext:
    target: torch.nn.Module
    draft: torch.nn.Module | None
    prompt_ids: torch.Tensor  # [1, prompt_len]
    budget: Budget
    params: Any  # the method's params dataclass
    clock: Measurement
    seed: int = 0
    num_samples: int = 1
    temperature: float = 1.0
    phase_time_s: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.prompt_ids.device

    @contextlib.contextmanager
    def phase(self, name: str):
        """Accumulate synchronised wall time of a phase (draft, verify)."""
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.phase_time_s[name] = self.phase_time_s.get(name, 0.0) + time.perf_counter() - start


@dataclass
class GenerationOutput:
    new_ids: list[int]  # generated ids of the (first) sequence; multi-sample: all samples concatenated
    samples: list[list[int]] | None = None  # multi-sample methods: one id list per sample
    stats: dict = field(default_factory=dict)  # record fields (rounds, draft_tokens_accepted, ...)

    @property
    def num_new_tokens(self) -> int:
        if self.samples is not None:
            return sum(len(s) for s in self.samples)
        return len(self.new_ids)


@dataclass
class NoParams:
    """A method without parameters."""


@dataclass(frozen=True)
class MethodSpec:
    id: str
    module: str
    params_cls: type = NoParams
    needs_draft: bool = False
    lossless: bool = False  # output ids equal greedy AR's
    greedy: bool = True
    multi_sample: bool = False

    @property
    def generate(self) -> Callable[[GenContext], GenerationOutput]:
        return importlib.import_module(f"{__name__}.{self.module}").generate

    def make_params(self, params: dict) -> Any:
        names = {f.name for f in dataclasses.fields(self.params_cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for method '{self.id}' "
                             f"(allowed: {', '.join(sorted(names)) or 'none'})")
        obj = self.params_cls(**params)
        if hasattr(obj, "validate"):
            obj.validate()
        return obj

    def resolve_params(self, params: dict) -> dict:
        """Every parameter with defaults filled in, as plain data for the result file."""
        return dataclasses.asdict(self.make_params(params))


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    _REGISTRY[spec.id] = spec
    return spec


def get_method(method_id: str) -> MethodSpec:
    _load_specs()
    if method_id not in _REGISTRY:
        raise ValueError(f"unknown method '{method_id}' (implemented: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[method_id]


def all_methods() -> dict[str, MethodSpec]:
    _load_specs()
    return dict(_REGISTRY)


def _load_specs() -> None:
    # Each module registers its spec on import; the list is the set of implemented methods.
    from . import specs  # noqa: F401
