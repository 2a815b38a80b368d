"""FastChat "model_answer" files (Spec-Bench, REST, Medusa, EAGLE) -> our results (format ``spec-bench``).

One JSON line per answered question::

    {question_id, [category], answer_id, model_id, tstamp,
     choices: [{index, turns: [text per turn], new_tokens: [per turn], wall_time: [s per turn],
                decoding_steps | idxs: [per turn], [accept_lengths | "accept_lengths:": [per step]]}]}

One answer file is one result: ``<experiment>/<dataset>/<method>.json`` with one entry in
``questions`` per line (tokens, wall time, steps and accepted lengths as written; the text only
as SHA-256 per turn). The setup (method, model, dtype, temperature, further parameters) comes
from the file name, parsed by ``NAME_GRAMMAR``; a name outside it is an error unless the
options name the file's method configuration (config ``import.methods``). Categories come from
the record or from the question file (config ``import.questions``); when both state one they
must agree. Key variants, each recorded in the result's notes and ``source_summary.keys``:

- steps: ``decoding_steps`` (Spec-Bench: the number of steps) or ``idxs`` (REST, Medusa, EAGLE:
  the 0-based index of the last step of FastChat's ``for idx in range(max_steps)`` loop, so
  steps = idxs + 1; REST's baseline, one token per step, has 947 tokens at idxs 946);
- accepted lengths: ``accept_lengths`` or ``accept_lengths:`` (REST, sic), or none (Medusa, EAGLE);
- output identity: ``output_sha256`` per turn (files written by ``decodebench export``, whose
  measured results keep token ids rather than text) instead of the SHA-256 of the turn's text.

Values are imported as written, impossible ones included: ``decodebench check`` reports them
(rules values, arithmetic; docs/check.md), the import does not hide them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results import file_sha256
from . import Conversion, ImportFormatError, imported_result

SOURCE_GLOB = "*.jsonl"
DEFAULT_EXPERIMENT = "leaderboard"
MT_BENCH_CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
DATASET_LABELS = {"spec_bench": "Spec-Bench", "mt_bench": "MT-bench"}

# Method token in a file name -> (our method id, configuration name). The baseline spellings
# of the four code bases: Spec-Bench "vanilla", REST "baseline", EAGLE "base".
METHOD_TOKENS = {
    "vanilla": "ar", "baseline": "ar", "base": "ar",
    "eagle": "eagle", "ea": "eagle",
    "sps": "sps",
    "medusa": "medusa",
    "rest": "rest",
    "pld": "pld",
}
LOSSLESS = {"ar", "eagle", "sps", "medusa", "rest", "pld"}  # at temperature 0 (greedy verification)
# Our own lossless methods (docs/methods.md), for files written by `decodebench export`.
LOSSLESS |= {"linear", "tree", "dynatree", "hf_assisted"}
DTYPES = {"float16": "float16", "fp16": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float32": "float32", "fp32": "float32"}
_NUM = r"\d+(?:\.\d+)?"
_PARAMS = rf"(?P<params>(?:-[a-z_]+-{_NUM})*)"  # -top_p-0-posterior_threshold-0.09 ...

# Full-string matches on the file name without .jsonl (docs/import.md, "File names").
NAME_GRAMMAR = [
    # Spec-Bench: <model>-<method>[-<draft>]-<dtype>-temp[erature]-<T>
    rf"(?P<model>.+?)-(?P<method>vanilla|eagle|sps|pld|medusa|rest)(?:-(?P<draft>\d+m))?"
    rf"-(?P<dtype>float16|bfloat16|float32)-temp(?:erature)?-(?P<temp>{_NUM}){_PARAMS}",
    # REST, Medusa: <method>-<model>[-<run>]-temperature-<T>[-<param>-<value>...]
    rf"(?P<method>baseline|rest|medusa)-(?P<model>.+?)(?:-(?P<run>\d+))?-temperature-(?P<temp>{_NUM}){_PARAMS}",
    # EAGLE: <model>-<dtype>-<base|ea>-in-temperature-<T>
    rf"(?P<model>.+?)-(?P<dtype>fp16|bf16|fp32)-(?P<method>base|ea)-in-temperature-(?P<temp>{_NUM}){_PARAMS}",
    # decodebench export (decodebench.export): <model>-<dtype>-decodebench-<method id>-<configuration>-temperature-<T>
    rf"(?P<model>.+?)-(?P<dtype>float16|bfloat16|float32)-decodebench-(?P<id>[a-z][a-z0-9_]*)"
    rf"-(?P<name>[A-Za-z0-9._]+)-temperature-(?P<temp>{_NUM})",
]


@dataclass(frozen=True)
class Setup:
    method_id: str
    name: str  # the method configuration: eagle, sps_68m, medusa_r1, ...
    model: str | None
    draft: str | None
    dtype: str | None
    params: dict  # temperature and the name's further parameters


def parse_file_name(stem: str) -> Setup:
    """An answer file's name (without .jsonl) -> its setup; ValueError outside the grammar."""
    for pattern in NAME_GRAMMAR:
        m = re.fullmatch(pattern, stem)
        if m is None:
            continue
        g = m.groupdict()
        params: dict[str, float | str] = {"temperature": float(g["temp"])}
        if g.get("id"):  # our own export: id and configuration name as written
            return Setup(g["id"], g["name"], g["model"], None, DTYPES[g["dtype"]], params)
        method_id = METHOD_TOKENS[g["method"]]
        for key, value in re.findall(rf"-([a-z_]+)-({_NUM})", g.get("params") or ""):
            params[key] = float(value)
        name = method_id
        if g.get("draft"):
            name += f"_{g['draft']}"
            params["draft"] = g["draft"]
        if g.get("run"):
            name += f"_r{g['run']}"
            params["run"] = int(g["run"])
        return Setup(method_id, name, g["model"], g.get("draft"), DTYPES.get(g.get("dtype") or ""), params)
    raise ValueError(f"file name '{stem}' is not in the spec-bench grammar (see docs/import.md, "
                     "'File names'); name its method configuration in the config's import.methods")


def setup_from_options(stem: str, name: str, method_id: str) -> Setup:
    """The config names the file's method configuration: nothing else is taken from the name."""
    return Setup(method_id, name, None, None, None, {})


def read_questions(path: str | Path) -> dict[Any, str | None]:
    """A question file (JSON lines with question_id, category) -> {question_id: category}."""
    path = Path(path)
    out = {}
    for lineno, line in _lines(path):
        where = f"{path} line {lineno}"
        q = _json(line, where)
        if "question_id" not in q:
            raise ImportFormatError(f"{where}: field 'question_id' is missing")
        cat = q.get("category")
        if cat is not None and not isinstance(cat, str):
            raise ImportFormatError(f"{where}: field 'category': expected a string, got {cat!r}")
        out[q["question_id"]] = cat
    return out


def dataset_name(categories: list[str | None], path: Path) -> str:
    """mt_bench when every category is an MT-bench one, spec_bench when any other occurs."""
    known = {c for c in categories if c is not None}
    if not known:
        raise ImportFormatError(f"{path}: no record states a category and no question file was given; "
                                "cannot tell the question set: pass --questions or --dataset "
                                "(config import.questions / import.dataset)")
    return "mt_bench" if known <= set(MT_BENCH_CATEGORIES) else "spec_bench"


def convert(path: Path, study: str, options: dict | None = None) -> Conversion:
    """One answer file -> one result. options (all optional): questions ({id: category} or a
    path), dataset, experiment, methods ({file name: (configuration name, method id)})."""
    options = options or {}
    questions = options.get("questions")
    if questions is not None and not isinstance(questions, dict):
        questions = read_questions(questions)
    named = (options.get("methods") or {}).get(path.name)
    try:
        setup = setup_from_options(path.stem, *named) if named else parse_file_name(path.stem)
    except ValueError as exc:
        raise ImportFormatError(f"{path}: {exc}") from None

    records: list[dict] = []
    model_ids: set[str] = set()
    variants: dict[str, set[str]] = {"steps": set(), "accept_lengths": set(), "output_sha256": set()}
    for lineno, line in _lines(path):
        where = f"{path} line {lineno}"
        try:
            q, model_id, used = _question(_json(line, where), questions)
        except ValueError as exc:
            raise ImportFormatError(f"{where}: {exc}") from None
        records.append(q)
        model_ids.add(model_id)
        for k, v in used.items():
            variants[k].add(v)
    if not records:
        raise ImportFormatError(f"{path}: no answers (expected one JSON object per line)")
    ids = [q["question_id"] for q in records]
    dup = sorted({str(x) for x in ids if ids.count(x) > 1})
    if dup:
        raise ImportFormatError(f"{path}: question_id {', '.join(dup)} answered more than once")
    for k, v in variants.items():
        if len(v) > 1:
            raise ImportFormatError(f"{path}: records mix the {k} keys {sorted(v)}")
    keys = {k: next(iter(v)) if v else None for k, v in variants.items()
            if v or k != "output_sha256"}  # output_sha256 only where a file has it

    dataset = options.get("dataset") or dataset_name([q["category"] for q in records], path)
    experiment = options.get("experiment") or DEFAULT_EXPERIMENT
    greedy = setup.params.get("temperature") == 0.0
    rates = [sum(q["new_tokens"]) / sum(q["wall_time_s"]) for q in records
             if sum(q["wall_time_s"]) > 0]
    summary = {
        "tokens_per_s": _stat(rates),
        "wall_time_s": _stat([sum(q["wall_time_s"]) for q in records]),
        "new_tokens": _stat([sum(q["new_tokens"]) for q in records]),
    }
    if keys["steps"]:
        summary["rounds"] = _stat([sum(q["steps"]) for q in records])
    accepted = [a for q in records for a in (q["accept_lengths"] or [])]
    if keys["accept_lengths"]:
        summary["mean_accepted_tokens"] = {"mean": statistics.fmean(accepted) if accepted else None,
                                           "std": statistics.stdev(accepted) if len(accepted) > 1 else None,
                                           "n": len(accepted)}
    notes = [f"Imported from a FastChat model_answer file ({path.name}; format 'spec-bench', see "
             "docs/import.md): one record per question in 'questions' (text only as SHA-256 per turn). "
             "tokens_per_s is the mean over questions of sum(new_tokens)/sum(wall_time) over the "
             "question's turns (Spec-Bench's per-question rate); no GPU name, library versions or commit."]
    if keys["steps"] == "idxs":
        notes.append("Steps from 'idxs', the 0-based index of each turn's last decoding step: steps = idxs + 1.")
    if keys["accept_lengths"] == "accept_lengths:":
        notes.append("Accepted lengths from the key 'accept_lengths:' (with a colon, as the source writes it).")
    if not keys["accept_lengths"]:
        notes.append("The file has no accepted lengths.")
    if keys.get("output_sha256"):
        notes.append("Output identities from the key 'output_sha256' (written by decodebench export), "
                     "not hashed from the text.")
    if named:
        notes.append(f"Method configuration '{setup.name}' named by the config (import.methods); "
                     "the file name was not parsed.")
    if setup.dtype is None:
        notes.append("The source does not state the dtype.")
    if questions is not None:
        notes.append("Categories the records lack come from the question file.")
    models: dict[str, dict | None] = {"target": None, "draft": None}
    if setup.model:
        models["target"] = _model(setup.model, setup.dtype, path)
    if setup.draft:
        models["draft"] = _model(f"draft-{setup.draft}", setup.dtype, path)
    result = imported_result(
        study=study, experiment=experiment,
        dataset={"name": dataset, "loader": dataset, "source_kind": "imported",
                 "label": DATASET_LABELS.get(dataset, dataset), "prompt_file": None, "prompt_sha256": None,
                 "num_prompts": len(records), "prompt_tokens": None,
                 "selection": {"categories": sorted({q["category"] for q in records if q["category"]})}},
        method={"name": setup.name, "id": setup.method_id, "params": setup.params,
                "lossless": setup.method_id in LOSSLESS and greedy, "greedy": greedy,
                "source_name": path.stem, "label": None},
        protocol={"prompts_requested": len(records), "prompts_measured": len(records)},
        models=models if models["target"] else {"target": _model("unknown", None, path), "draft": None},
        environment={"dtype": setup.dtype},
        source_file=path, source_sha256=file_sha256(path), source_record=None,
        notes=" ".join(notes), summary=summary,
        source_summary={"format": "spec-bench", "keys": keys, "model_ids": sorted(model_ids)},
        finished_at=None)
    result["questions"] = records
    return Conversion(results=[result])


def _question(rec: Any, questions: dict | None) -> tuple[dict, str, dict]:
    """One source line -> (our question record, its model_id, {steps|accept_lengths: key used})."""
    if not isinstance(rec, dict):
        raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
    for key in ("question_id", "choices"):
        if key not in rec:
            raise ValueError(f"field '{key}' is missing")
    qid = rec["question_id"]
    if isinstance(qid, bool) or not isinstance(qid, (int, str)):
        raise ValueError(f"field 'question_id': expected an integer or string, got {qid!r}")
    choices = rec["choices"]
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        raise ValueError("field 'choices': expected a list of exactly one object "
                         f"(found {len(choices) if isinstance(choices, list) else type(choices).__name__})")
    c = choices[0]
    turns = c.get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise ValueError("field 'choices[0].turns': expected a non-empty list of strings")
    n = len(turns)
    used = {}
    new_tokens = _numbers(c, "new_tokens", n)
    wall = _numbers(c, "wall_time", n)
    steps = None
    if "decoding_steps" in c:
        steps, used["steps"] = _numbers(c, "decoding_steps", n), "decoding_steps"
    elif "idxs" in c:
        steps, used["steps"] = [x + 1 for x in _numbers(c, "idxs", n)], "idxs"
    accepted = None
    for key in ("accept_lengths", "accept_lengths:"):
        if key in c:
            if "accept_lengths" in used:
                raise ValueError("choices[0] has both 'accept_lengths' and 'accept_lengths:'")
            accepted, used["accept_lengths"] = _numbers(c, key, None), key
    sha = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in turns]
    if "output_sha256" in c:  # decodebench export: our output identity (ids for measured results)
        sha, used["output_sha256"] = c["output_sha256"], "output_sha256"
        if (not isinstance(sha, list) or len(sha) != n
                or not all(isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in sha)):
            raise ValueError(f"field 'choices[0].output_sha256': expected one SHA-256 (64 hex digits) per turn ({n})")
    category = rec.get("category")
    if category is not None and not isinstance(category, str):
        raise ValueError(f"field 'category': expected a string, got {category!r}")
    if questions is not None:
        if qid not in questions:
            raise ValueError(f"question_id {qid!r} is not in the question file")
        if category is not None and questions[qid] is not None and questions[qid] != category:
            raise ValueError(f"field 'category' is '{category}' but the question file says '{questions[qid]}'")
        category = category or questions[qid]
    model_id = rec.get("model_id")
    return ({"question_id": qid, "category": category, "new_tokens": new_tokens, "wall_time_s": wall,
             "steps": steps, "accept_lengths": accepted, "output_sha256": sha},
            model_id if isinstance(model_id, str) else "", used)


def _numbers(c: dict, key: str, n: int | None) -> list:
    values = c.get(key)
    if not isinstance(values, list):
        raise ValueError(f"field 'choices[0].{key}' is missing or not a list")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"field 'choices[0].{key}': expected finite numbers, found {v!r}")
    if n is not None and len(values) != n:
        raise ValueError(f"field 'choices[0].{key}': expected one value per turn ({n}), found {len(values)}")
    return values


def _stat(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None, "n": len(values)}


def _model(name: str, dtype: str | None, path: Path) -> dict:
    return {"name": name, "source": f"named:{path.name}", "revision": None, "weights_sha256": None,
            "num_parameters": None, "dtype": dtype, "architecture": None, "card": None}


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text ({exc})") from None
    return [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]


def _json(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{where}: not valid JSON ({exc})") from None
