"""Our result files -> FastChat "model_answer" JSON lines (format ``spec-bench``).

Spec-Bench, Medusa, REST and EAGLE evaluate answer files with one JSON line per question::

    {question_id, category, answer_id, model_id, tstamp,
     choices: [{index, turns, new_tokens, decoding_steps, wall_time, accept_lengths}]}

``export_result`` writes one such file per result, so that a study of ours can be evaluated by
Spec-Bench's own ``evaluation/speed.py`` and read back by ``decodebench import --format
spec-bench`` (``importers.spec_bench``; the round trip gives the same leaderboard).

What a line holds, per source:

- measured results (``records``): one line per prompt of the chosen repeat (``repeat``,
  default 0: Spec-Bench answers each question once). ``question_id`` is the prompt id,
  ``category`` the dataset's name; one turn: ``new_tokens``, ``wall_time`` (the timed
  generation, prefill included, as Spec-Bench times it), ``decoding_steps`` = the number of
  commits and ``accept_lengths`` = the tokens of each commit (the prefill's token counts as the
  first step, so the lengths sum to ``new_tokens``, as the importer's rules expect);
- imported results with per-question records (``questions``): the records as imported.

Texts: a measured record keeps token ids, not text; with a tokenizer (``tokenizer``, a local
directory) each turn's text is the decoded ids, otherwise it is empty and the export says so
(Spec-Bench re-tokenises the baseline's text to count its tokens: give the tokenizer when the
file is meant for its script). Every choice also carries ``output_sha256`` (one per turn, our
output identity: the ids' SHA-256 for measured results, the source text's for imported ones),
which the importer prefers to hashing the text, so lossless comparisons survive the trip.

File names follow the importer's decodebench grammar (``importers.spec_bench.NAME_GRAMMAR``):
``<model>-<dtype>-decodebench-<method id>-<configuration>-temperature-<T>.jsonl`` under
``<out>/<experiment>/<dataset>/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import results

FORMATS = ("spec-bench",)
SAFE_NAME = re.compile(r"[A-Za-z0-9._]+")


class ExportError(ValueError):
    """A result that cannot be exported; the message names the file and field."""


def answer_file_name(result: dict, where: str) -> str:
    method = result["method"]
    model = (result.get("models") or {}).get("target") or {}
    dtype = (result.get("environment") or {}).get("dtype") or model.get("dtype")
    if dtype not in ("float16", "bfloat16", "float32"):
        raise ExportError(f"{where}: environment.dtype: expected float16, bfloat16 or float32, got {dtype!r}")
    name = str(model.get("name") or "unknown").replace("/", "_")
    temperature = 0.0 if method.get("greedy") else (method.get("params") or {}).get("temperature")
    if temperature is None:
        raise ExportError(f"{where}: method.params.temperature: a sampling method's temperature is needed "
                          "for the answer file's name")
    for field, value in (("method.id", method["id"]), ("method.name", method["name"])):
        if not SAFE_NAME.fullmatch(value) or "-" in value:
            raise ExportError(f"{where}: {field}: '{value}' cannot be written into an answer file name "
                              "(letters, digits, '_' and '.' only)")
    return f"{name}-{dtype}-decodebench-{method['id']}-{method['name']}-temperature-{float(temperature)}.jsonl"


def answer_lines(result: dict, where: str, repeat: int = 0,
                 decode: Callable[[list[int]], str] | None = None) -> list[dict]:
    """The model_answer lines of one result (see the module's docstring)."""
    model_id = ((result.get("models") or {}).get("target") or {}).get("name") or "unknown"
    if result.get("questions"):
        return [_line(q["question_id"], q["category"], model_id, turns=[""] * len(q["new_tokens"]),
                      new_tokens=q["new_tokens"], wall_time=q["wall_time_s"], steps=q["steps"],
                      accepted=q["accept_lengths"], sha=q["output_sha256"])
                for q in result["questions"]]
    records = result.get("records")
    if not records:
        raise ExportError(f"{where}: has neither per-prompt 'records' nor per-question 'questions': "
                          "a summary-only result has no answers to export")
    if (result.get("protocol") or {}).get("num_samples"):
        raise ExportError(f"{where}: a multi-sample result has no model_answer equivalent "
                          "(one answer per question)")
    chosen = [r for r in records if r.get("repeat", 0) == repeat]
    if not chosen:
        repeats = sorted({r.get("repeat", 0) for r in records})
        raise ExportError(f"{where}: records: no record of repeat {repeat} (repeats: {repeats})")
    dataset = result["dataset"]["name"]
    lines = []
    for r in chosen:
        commits = r.get("commit_tokens")
        if not commits:
            raise ExportError(f"{where}: records[prompt {r['prompt_id']}].commit_tokens: missing; "
                              "the accepted lengths come from the commit log")
        text = decode(r["output_ids"]) if decode is not None and r.get("output_ids") is not None else ""
        lines.append(_line(r["prompt_id"], dataset, model_id, turns=[text], new_tokens=[r["new_tokens"]],
                           wall_time=[r["wall_time_s"]], steps=[len(commits)], accepted=list(commits),
                           sha=[r["output_sha256"]]))
    return lines


def _line(qid: Any, category: str | None, model_id: str, *, turns: list[str], new_tokens: list,
          wall_time: list, steps: list | None, accepted: list | None, sha: list) -> dict:
    choice: dict[str, Any] = {"index": 0, "turns": turns, "new_tokens": new_tokens, "wall_time": wall_time}
    if steps is not None:
        choice["decoding_steps"] = steps
    if accepted is not None:
        choice["accept_lengths"] = accepted
    choice["output_sha256"] = sha
    # answer_id and tstamp: deterministic (the export of the same result gives the same bytes)
    return {"question_id": qid, "category": category, "answer_id": sha[0][:22] if sha and sha[0] else "",
            "model_id": model_id, "tstamp": 0.0, "choices": [choice]}


def tokenizer_decoder(directory: str | Path) -> Callable[[list[int]], str]:
    """Decoding with a local tokenizer (never downloads)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{directory}: cannot load a tokenizer from this directory ({exc})") from None

    def decode(ids: list[int]) -> str:
        text = tok.decode(ids, skip_special_tokens=True)
        assert isinstance(text, str)  # one sequence of ids decodes to one string
        return text

    return decode


def export(paths: list[Path], out_dir: str | Path, repeat: int = 0, tokenizer: str | Path | None = None,
           force: bool = False, progress: Callable[[str], None] | None = None) -> list[tuple[Path, str]]:
    """Export result files (or directories of them) into ``out_dir``; returns (path, status).

    Everything is read and converted before the first write; an existing file with other
    content is an error unless ``force`` (nothing is overwritten silently); writes are atomic.
    """
    files = [p for path in paths for p in (sorted(Path(path).rglob("*.json")) if Path(path).is_dir() else [Path(path)])]
    if not files:
        raise ExportError(f"no result files under {', '.join(str(p) for p in paths)}")
    decode = tokenizer_decoder(tokenizer) if tokenizer is not None else None
    planned: dict[Path, str] = {}
    for f in files:
        try:
            result = results.load_result(f)
        except (OSError, ValueError) as exc:
            raise ExportError(f"{f}: cannot read a result ({exc})") from None
        target = Path(out_dir) / result["experiment"] / result["dataset"]["name"] / answer_file_name(result, str(f))
        if target in planned:
            raise ExportError(f"{target}: two results map to this answer file (the second: {f})")
        lines = answer_lines(result, str(f), repeat=repeat, decode=decode)
        planned[target] = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        if progress is not None:
            progress(f"{f}: {len(lines)} answers")
    status = {}
    for target, text in planned.items():
        if not target.exists():
            status[target] = "written"
        elif target.read_text(encoding="utf-8") == text:
            status[target] = "unchanged"
        elif force:
            status[target] = "replaced"
        else:
            raise ExportError(f"{target}: exists with different content; remove it or pass --force")
    for target, text in planned.items():
        if status[target] != "unchanged":
            target.parent.mkdir(parents=True, exist_ok=True)
            results.atomic_write_text(target, text)
    return list(status.items())
