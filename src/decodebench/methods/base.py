"""The interface every decoding method implements: ``generate(ctx: GenContext) ->
GenerationOutput``, the greedy choice, the budget, and the forward counting the harness does.
The measurement contract these types carry is in ``decodebench.methods`` (the package
docstring) and docs/methods.md, "Definitions"."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..measurement import Measurement, Unmeasured
from ..method_params import NoParams, make_params
from .speculative import Round, round_stats

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The greedy choice over the last dimension, taken over float32 logits: [..., vocab] -> [...]."""
    return logits.float().argmax(dim=-1)


@dataclass
class ForwardCount:
    """Forwards of one model and the tokens fed to them (batch rows x query length)."""
    forwards: int = 0
    tokens: int = 0
    last_tokens: int = 0  # tokens of the latest forward


def _fed_tokens(args, kwargs) -> int:
    ids = kwargs.get("input_ids", args[0] if args else None)
    if ids is None:
        embeds = kwargs.get("inputs_embeds")
        return 0 if embeds is None else int(embeds.shape[0] * embeds.shape[1])
    return int(ids.numel())


@dataclass
class Budget:
    max_new_tokens: int
    eos_token_ids: frozenset[int] | None  # None: EOS disabled, exactly max_new_tokens are produced

    def is_eos(self, token: int) -> bool:
        return self.eos_token_ids is not None and token in self.eos_token_ids


@dataclass
class GenContext:
    target: PreTrainedModel
    draft: PreTrainedModel | None
    prompt_ids: torch.Tensor  # [1, prompt_len]
    budget: Budget
    params: Any  # the method's params dataclass
    clock: Measurement | Unmeasured
    seed: int = 0
    num_samples: int = 1
    temperature: float = 1.0
    oracle_ids: list[int] | None = None  # greedy AR's new ids for this prompt: the oracle draft mode's reference
    rounds: list[Round] = field(default_factory=list)
    forward_counts: dict[str, ForwardCount] = field(default_factory=dict)  # "target"/"draft", while counting
    # (name, round index, start, end): perf_counter floats, or CUDA events
    _phases: list[tuple[str, int, torch.cuda.Event | float, torch.cuda.Event | float]] = field(default_factory=list)
    _draft_since: tuple[int, int] = (0, 0)  # draft (forwards, tokens) when the current round began

    @property
    def device(self) -> torch.device:
        return self.prompt_ids.device

    def commit(self, tokens: int) -> None:
        self.clock.commit(tokens)

    def add_round(self, r: Round) -> None:
        """Record a verification round; while forwards are counted, it gets the width of the
        latest target forward (its verification) and the draft's forwards since the last round."""
        target, draft = self.forward_counts.get("target"), self.forward_counts.get("draft")
        if target is not None and r.verify_tokens is None:
            r.verify_tokens = target.last_tokens
        if draft is not None and r.draft_forwards is None:
            r.draft_forwards = draft.forwards - self._draft_since[0]
            r.draft_tokens_fed = draft.tokens - self._draft_since[1]
        self._restart_draft_count()
        self.rounds.append(r)

    def _restart_draft_count(self) -> None:
        draft = self.forward_counts.get("draft")
        self._draft_since = (draft.forwards, draft.tokens) if draft is not None else (0, 0)

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time a phase ("draft", "verify", "prefill") of the round being built (the next one
        ``add_round`` records). CPU: perf_counter; CUDA: events, resolved by ``phase_times``."""
        start = self._mark()
        try:
            yield
        finally:
            end = self._mark()
            self._phases.append((name, len(self.rounds), start, end))
            if name == "prefill":  # a prefill belongs to no round
                self._restart_draft_count()

    def _mark(self) -> torch.cuda.Event | float:
        """Now: a recorded CUDA event on CUDA, perf_counter on CPU."""
        if self.device.type != "cuda":
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def phase_times(self) -> dict:
        """Phase totals and per-round draft/verify times, in seconds; call after the timed
        region (on CUDA it waits for the events)."""
        if not self._phases:
            return {}
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        totals: dict[str, float] = {}
        per_round = {"draft": [0.0] * len(self.rounds), "verify": [0.0] * len(self.rounds)}
        for name, index, start, end in self._phases:
            seconds = _elapsed_s(start, end)
            totals[name] = totals.get(name, 0.0) + seconds
            if name in per_round and index < len(self.rounds):
                per_round[name][index] += seconds
        out: dict[str, float | list[float]] = {f"{name}_time_s": t for name, t in totals.items()}
        if self.rounds:
            out["draft_time_per_round_s"] = per_round["draft"]
            out["verify_time_per_round_s"] = per_round["verify"]
        return out

    def round_stats(self) -> dict:
        return round_stats(self.rounds)


def _elapsed_s(start: torch.cuda.Event | float, end: torch.cuda.Event | float) -> float:
    if isinstance(start, float) and isinstance(end, float):
        return end - start
    assert isinstance(start, torch.cuda.Event) and isinstance(end, torch.cuda.Event)
    return start.elapsed_time(end) / 1000


@contextlib.contextmanager
def counting_forwards(ctx: GenContext):
    """Count the forwards of ctx.target and ctx.draft (and the tokens fed) into
    ctx.forward_counts while the block runs: forward pre-hooks on the two modules, the same
    for every method (transformers' generate included); a hook only reads shapes."""
    handles = []
    for role, model in (("target", ctx.target), ("draft", ctx.draft)):
        if model is None:
            continue
        count = ctx.forward_counts.setdefault(role, ForwardCount())

        def hook(module, args, kwargs, count=count):
            fed = _fed_tokens(args, kwargs)
            count.forwards += 1
            count.tokens += fed
            count.last_tokens = fed

        handles.append(model.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield ctx.forward_counts
    finally:
        for h in handles:
            h.remove()


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
        return importlib.import_module(f"decodebench.methods.{self.module}").generate

    def make_params(self, params: dict) -> Any:
        return make_params(self.params_cls, self.id, params)

    def resolve_params(self, params: dict) -> dict:
        """Every parameter with defaults filled in, as plain data for the result file."""
        return dataclasses.asdict(self.make_params(params))
