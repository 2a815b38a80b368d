"""Result files: the schema, atomic writing, loading with validation, and summaries.

A result file is the one place a measured number is stored. Writing validates first and
then replaces the destination atomically (temporary file in the same directory, fsync,
``os.replace``): an interrupted run leaves the old file or no file, never half a file; the
next write of the same file deletes the temporary file a killed writer left behind.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_VERSION = "2.0"  # 2.0: memory fields named for their unit, *_mib (1.0: *_mb)

# Per-record metrics summarised as mean / sample std / n over prompts (``summarise``). The
# result file's summary, `decodebench run`'s printout, `check` and the aggregated CSV all take
# their statistics from ``summarise``, so a statistic is derived in exactly one place.
METRICS = (
    "tokens_per_s", "wall_time_s", "ttft_s", "tokens_at_first_commit", "tpot_s", "tpot_p50_s", "tpot_p90_s",
    "tpot_p99_s", "new_tokens", "prompt_tokens", "tokens_per_target_forward",
    "peak_memory_mib", "peak_memory_overhead_mib", "peak_reserved_mib",
    "rounds", "acceptance_rate", "tokens_per_round", "draft_time_s", "verify_time_s",
    "num_samples", "token_steps", "branch_points", "final_paths",
    # multi-sample quality (decodebench.quality)
    "distinct_1", "distinct_2", "self_bleu", "sample_logprob_mean", "sample_logprob_std", "nll_per_token",
    "nll_per_token_reference", "nll_per_token_error",
)


class ResultError(ValueError):
    """A result file that is missing, unreadable or violates the schema."""


@lru_cache(maxsize=1)
def result_schema() -> dict:
    text = resources.files("decodebench").joinpath("schemas/result.schema.json").read_text()
    return json.loads(text)


def _field_path(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


@lru_cache(maxsize=1)
def result_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(result_schema())


def schema_errors(data: Any, ignore=None) -> list[str]:
    """Every schema violation as 'field: message', sorted by field.

    ignore: optional predicate on a jsonschema.ValidationError; violations it accepts are left
    out (`check` reports some bounds, e.g. acceptance_rate <= 1, under a more specific rule)."""
    errors = [e for e in result_validator().iter_errors(data) if ignore is None or not ignore(e)]
    errors.sort(key=lambda e: list(map(str, e.absolute_path)))
    out = [f"{_field_path(e)}: {e.message}" for e in errors]
    out += [f"{path}: not a finite number ({value})" for path, value in _non_finite(data)]
    return out


def _non_finite(obj: Any, path: str = "") -> Iterable[tuple[str, float]]:
    if isinstance(obj, float) and not math.isfinite(obj):
        yield path or "(top level)", obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _non_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _non_finite(value, f"{path}[{i}]")


def validate(data: Any, source: str | Path = "<result>") -> None:
    problems = schema_errors(data)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ResultError(f"{source}: invalid result file:\n  {shown}{more}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of `path` that interrupted writes left behind: named
    ``.<name>.<pid>.<random>.tmp`` by atomic_write_text, they are stale when that process is
    gone (one killed mid-write: SIGKILL runs no cleanup); older names without a pid are
    stale too. Returns what was deleted."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if not (pid.isdigit() and _alive(int(pid))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text so that `path` is either untouched or complete (and clear what earlier
    interrupted writes of `path` left behind)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_result(path: str | Path, data: dict) -> None:
    validate(data, path)
    atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def load_result(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultError(f"{path}: result file not found") from None
    except json.JSONDecodeError as exc:
        raise ResultError(f"{path}: not valid JSON ({exc})") from None
    validate(data, path)
    return data


def ids_sha256(ids: Iterable[int]) -> str:
    """Hash of generated token ids (int64 little-endian), independent of tensor type."""
    h = hashlib.sha256()
    for i in ids:
        h.update(int(i).to_bytes(8, "little", signed=True))
    return h.hexdigest()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stat(values: Iterable[float | None]) -> dict:
    """Mean and sample standard deviation (ddof=1) of the non-null values."""
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def summarise(records: list[dict]) -> dict:
    """{metric: stat} over prompts, for every metric of ``METRICS`` some record has: a prompt's
    repeats are averaged first (a prompt is one observation, however often it was timed), then
    ``stat`` runs over the prompts in prompt order. Records without ``prompt_index`` count as
    one prompt each."""
    out = {}
    for metric in METRICS:
        per_prompt: dict = {}
        for i, r in enumerate(records):
            v = r.get(metric)
            if v is not None and v == v:  # NaN != NaN: dropped
                per_prompt.setdefault(r.get("prompt_index", ("record", i)), []).append(float(v))
        if per_prompt:
            out[metric] = stat(sum(vs) / len(vs) for vs in per_prompt.values())
    return out
