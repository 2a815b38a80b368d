"""What a generation's memory overhead should be, from the model's shape, the dtype, the
prompt, the budget and what the method recorded: the analytic side that ``check``'s
``memory-model`` rule holds each measured overhead against.

    expected = expected_overhead(result, record)      # Expected(bytes by component)

Components (bytes; b = the weights' dtype size, f = 4 for float32):

- ``kv_target``: 2 x layers x kv_heads x head_dim x b x (prompt + new + extra) where extra is
  the most draft positions a verification appends before the cache is cropped or compacted
  (max proposed per round + 1; 0 for AR);
- ``kv_draft``: the same for the draft's shape (methods with a draft);
  a tree with padded levels (``padded: true``) verifies its padded width and feeds the draft
  every slot of its levels below the last (``method_params.tree_widths``) every round;
  Methods with a preallocated cache (``kvcache.KVCache``: ar, linear, tree, dynatree;
  ``method_params.cache_width``) allocate prompt + max_new_tokens + width positions at once:
  on CUDA all of them count (``cuda_allocated``), on CPU only the pages a forward writes
  (``process_rss``: the touched positions above);
- ``kv_growth``: methods with a growing ``DynamicCache`` (transformers' loops) only: one
  layer's keys and values at full length, twice (concatenation: the old and the new tensor of
  a layer coexist for a moment);
- ``logits``: rows x vocab x (b + f), rows = the most positions one target forward scores
  under the one prefill policy (1 for AR and a prefill; max proposed + 1 for a verification)
  and the float32 copy decisions are taken on; trees add a float32 log-softmax per frontier row
  of the draft (max proposed rows);
- ``activations``: the prefill's largest transients, prompt x (3 x intermediate + 4 x
  hidden) x b, plus heads x prompt^2 x f attention scores (the math path of SDPA on CPU);
  for target and draft.

The tolerance (``ALLOWANCE``) covers what no shape predicts: allocator arenas and
fragmentation, Python objects, thread stacks, and on CPU the kernel's RSS batching
(``measurement.hwm_precision_mib``). Measured on SmolLM2-135M (float32, 128 prompt + 32 new
tokens, 2 CPU threads; docs/methods.md): AR 18.5-20.2 MiB against 10.5 MiB expected; the
logits of all 128 prompt positions (issue 13's AR bug) add 24 MiB and would read ~40 MiB.
Multi-sample methods are not modelled (their paths vary; the rule reports them as not
applicable). numpy-free and torch-free, so ``check`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from .method_params import cache_width, padded_tree, tree_level_widths, tree_widths

MIB = 1024 * 1024
PAGE_BYTES = 4096

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
FLOAT32 = 4
# measured overhead <= FACTOR x expected + ALLOWANCE[memory_kind] MiB; below LOW x KV: peak missed
FACTOR = 1.5
ALLOWANCE_MIB = {"process_rss": 16.0, "cuda_allocated": 4.0}
LOW = 0.8
TREE_IDS = ("tree", "dynatree")


@dataclass(frozen=True)
class Expected:
    components: dict[str, int]  # bytes

    @property
    def total_mib(self) -> float:
        return sum(self.components.values()) / MIB

    @property
    def kv_mib(self) -> float:
        return (self.components.get("kv_target", 0) + self.components.get("kv_draft", 0)) / MIB

    def describe(self) -> str:
        return ", ".join(f"{k} {v / MIB:.1f}" for k, v in self.components.items() if v)


def _kv_bytes(shape: dict, b: int, positions: int) -> int:
    return 2 * shape["layers"] * shape["kv_heads"] * shape["head_dim"] * b * positions


def _activations(shape: dict, b: int, prompt: int) -> int:
    return prompt * (3 * shape["intermediate"] + 4 * shape["hidden"]) * b + shape["heads"] * prompt ** 2 * FLOAT32


def usable_shape(shape: dict | None) -> TypeGuard[dict]:
    keys = ("layers", "kv_heads", "head_dim", "hidden", "intermediate", "heads", "vocab")
    return shape is not None and all(isinstance(shape.get(k), int) and shape[k] > 0 for k in keys)


def expected_overhead(result: dict, record: dict) -> Expected | None:
    """The analytic overhead of one record, or None where the model does not apply."""
    models, method = result["models"], result["method"]
    target = (models.get("target") or {}).get("shape")
    if not usable_shape(target) or result["protocol"].get("num_samples") is not None:
        return None
    b = DTYPE_BYTES.get(result["environment"].get("dtype") or "", 4)
    prompt, new = record["prompt_tokens"], record["new_tokens"]
    proposed = record.get("proposed_per_round") or []
    extra = max(proposed) + 1 if proposed else 0
    rows = max(1, extra)
    positions = prompt + new + extra
    # our own loops' caches (an imported result's method is someone else's implementation)
    measured = result.get("kind", "measured") == "measured"
    width = cache_width(method["id"], method.get("params") or {}) if measured else None
    allocated_whole = width is not None and result["environment"].get("memory_kind") == "cuda_allocated"
    padded = padded_tree(method["id"], method.get("params") or {}) if measured else None
    draft_positions, draft_rows, draft_width = positions, rows, width
    if padded is not None:  # every round verifies and feeds the padded widths, not the tree's size
        verified, draft_width = tree_widths(padded)
        rows, positions = verified, prompt + new + verified
        draft_positions, draft_rows = prompt + new + draft_width, max(tree_level_widths(padded))
    if allocated_whole:
        positions = prompt + result["protocol"]["max_new_tokens"] + width  # allocated whole
        draft_positions = prompt + result["protocol"]["max_new_tokens"] + draft_width
    parts = {
        "kv_target": _kv_bytes(target, b, positions),
        "kv_growth": 0 if width is not None else 2 * _kv_bytes({**target, "layers": 1}, b, positions),
        "logits": rows * target["vocab"] * (b + FLOAT32),
        "activations": _activations(target, b, prompt),
    }
    draft = (models.get("draft") or {}).get("shape")
    if models.get("draft") is not None:
        if not usable_shape(draft):
            return None
        parts["kv_draft"] = _kv_bytes(draft, b, draft_positions)
        parts["activations"] += _activations(draft, b, prompt)
        parts["logits"] += draft_rows * draft["vocab"] * (b + FLOAT32)
        if method["id"] in TREE_IDS:
            parts["logits"] += draft_rows * draft["vocab"] * FLOAT32
    return Expected(parts)


def hwm_precision_mib(cpus: int, page_bytes: int = PAGE_BYTES) -> float:
    """How far the kernel's VmHWM can lag the true resident peak on a machine with `cpus` CPUs:
    per CPU and counter (anon, file, shmem) the kernel batches up to max(32, 2 x CPUs) pages
    (``measurement.hwm_precision_mib`` applies it to this machine)."""
    return 3 * max(32, 2 * cpus) * cpus * page_bytes / MIB


def bounds_mib(expected: Expected, memory_kind: str | None, cpus: int = 1) -> tuple[float, float]:
    """(lowest, highest) plausible measured overhead in MiB."""
    allowance = ALLOWANCE_MIB.get(memory_kind or "", ALLOWANCE_MIB["process_rss"])
    precision = hwm_precision_mib(cpus) if memory_kind == "process_rss" else 0.0
    return LOW * expected.kv_mib - precision, FACTOR * expected.total_mib + allowance + precision
