"""The DynaTree paper's published result files -> our results (format ``dynatree``).

Source: the JSON files under ``results/`` of cny123222/DynaTree at a8a25af (A100 GPU,
Pythia-2.8B target, Pythia-70M draft, fp16, greedy), as renamed in
``shared/external/dynatree/README.md``. Three layouts, told apart by their top-level keys:

    memory  {benchmark_info, results, acceptance_comparison, rankings, timestamp}
            memory_*.json
    paper   {experiment_info, all_results, [paper_tables,] timestamp}
            adaptive__* (but the sweep), length__*, prompt_length__*
    sweep   {config, baseline, prompts, results, best_overall}
            adaptive__fixed_tree_sweep__*

``FILE_TABLE`` says which (experiment, dataset) each file feeds; ``parse_method_name`` turns
the free-text method names into our method ids and parameters (grammar in docs/import.md).
Everything not stated by a file is null or left out, never filled with our defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results import file_sha256
from . import Conversion, ImportFormatError, imported_result, source_stat

# --------------------------------------------------------------------------------------------
# Which file feeds which (experiment, dataset)


@dataclass(frozen=True)
class Target:
    experiment: str
    loader: str  # wikitext | pg19
    dataset_suffix: str = ""  # prompt-length variants: _p<L> (config.py's prompt_lengths naming)
    method_suffix: str = ""  # generation-length variants: _t<T> (config.py's generation_lengths naming)
    max_new_tokens: int | None = None  # the budget the file name states (checked against the records)
    prompt_length: int | None = None  # the prompt length the file name states


def _length_targets(m: re.Match) -> list[Target]:
    t = int(m[1])
    targets = [Target("length_run2", "wikitext", method_suffix=f"_t{t}", max_new_tokens=t)]
    if t == 1500:  # the later main table's WikiText-2 column (data README)
        targets.append(Target("main", "wikitext", max_new_tokens=t))
    return targets


FILE_TABLE: list[tuple[str, Callable[[re.Match], list[Target]]]] = [
    (r"memory_pg19\.json", lambda m: [Target("memory", "pg19")]),
    (r"memory_wikitext\.json", lambda m: [Target("memory", "wikitext")]),
    (r"adaptive__pg19__pg19_benchmark_D8B3\.json", lambda m: [Target("main", "pg19")]),
    (r"adaptive__pg19__pg19_benchmark\.json", lambda m: [Target("main_d5b2", "pg19")]),
    (r"adaptive__main__paper_benchmark_main_1500tokens_2\.json", lambda m: [Target("main_d5b2", "wikitext")]),
    (r"adaptive__ablation__paper_benchmark_ablation\.json", lambda m: [Target("ablation", "wikitext")]),
    (r"adaptive__fixed_tree_sweep__fixed_tree_sweep_\d{8}_\d{6}\.json",
     lambda m: [Target("sweep", "wikitext")]),
    (r"length__(\d+)\.json",
     lambda m: [Target("length", "wikitext", method_suffix=f"_t{m[1]}", max_new_tokens=int(m[1]))]),
    (r"length__(\d+)_2\.json", _length_targets),
    (r"prompt_length__(\d+)\.json",
     lambda m: [Target("prompt_length", "wikitext", dataset_suffix=f"_p{m[1]}", prompt_length=int(m[1]))]),
]

DATASETS = {  # loader -> label shown in tables, and what the file's own dataset field must match
    "wikitext": {"label": "WikiText-2", "pattern": r"wikitext"},
    "pg19": {"label": "PG-19", "pattern": r"pg-?19"},
}


def targets_for(path: Path) -> list[Target]:
    for pattern, targets in FILE_TABLE:
        m = re.fullmatch(pattern, path.name)
        if m:
            return targets(m)
    known = ", ".join(p.replace("\\", "") for p, _ in FILE_TABLE)
    raise ImportFormatError(f"{path}: not in the dynatree file table (file names: {known}); "
                            "add it to FILE_TABLE in importers/dynatree_paper.py and docs/import.md")


# --------------------------------------------------------------------------------------------
# Method names


@dataclass(frozen=True)
class ParsedName:
    method_id: str
    params: dict  # parameters the name states
    phase: int | None = None  # DynaTree ablation phase


PHASES = {1: "Adaptive Branch", 2: "+ Dynamic Depth", 3: "+ History Adjust"}
# Phase 1 adapts the breadth to the draft's confidence, Phase 2 adds dynamic depth (early
# stop / deep expansion), Phase 3 adds the history-based threshold adjustment.
PHASE_SWITCHES = {
    1: {"adaptive": True, "adaptive_depth": False, "history": False},
    2: {"adaptive": True, "adaptive_depth": True, "history": False},
    3: {"adaptive": True, "adaptive_depth": True, "history": True},
}


def _phase(m: re.Match) -> ParsedName:
    phase = int(m[1])
    if m[2] is not None and PHASES[phase] != m[2]:
        raise ValueError(f"phase {phase} is '{PHASES[phase]}', not '{m[2]}'")
    return ParsedName("dynatree", {}, phase)


def _tree(m: re.Match) -> ParsedName:
    params: dict[str, int | float] = {"depth": int(m[1]), "branching": int(m[2])}
    if m[3] is not None:
        params["tau"] = float(m[3])
    return ParsedName("tree", params)


NAME_GRAMMAR: list[tuple[str, Callable[[re.Match], ParsedName]]] = [
    (r"Baseline \(AR\)", lambda m: ParsedName("ar", {})),
    (r"HF Assisted", lambda m: ParsedName("hf_assisted", {})),
    (r"Linear K=(\d+)", lambda m: ParsedName("linear", {"k": int(m[1])})),
    (r"Linear Spec \(K=(\d+)\)", lambda m: ParsedName("linear", {"k": int(m[1])})),
    (r"(?:Tree V2|Fixed Tree|Tree Spec Decode) \(D=(\d+), B=(\d+)(?:, [tTτ]=(\d*\.?\d+))?\)", _tree),
    (r"Phase ([1-3]): (Adaptive Branch|\+ Dynamic Depth|\+ History Adjust)", _phase),
    (r"Adaptive Tree \(Phase ([1-3])\)", lambda m: ParsedName("dynatree", {}, int(m[1]))),
]

# Names that parse but have no decodebench method: their records are skipped with this reason.
UNSUPPORTED = [
    (r"Streaming K=(\d+) cache=(\d+)",
     "speculative decoding over a StreamingLLM-evicted KV cache has no decodebench method id "
     "(lossy cache eviction); no table of the paper uses it"),
]


class Unsupported(Exception):
    """A method name that is understood but has no decodebench method."""


def parse_method_name(name: str) -> ParsedName:
    """Free-text method name -> (method id, parameters stated by the name, phase).

    Raises ValueError for a name outside the grammar and Unsupported for a known name
    without a decodebench method. Never guesses.
    """
    for pattern, build in NAME_GRAMMAR:
        m = re.fullmatch(pattern, name)
        if m:
            return build(m)
    for pattern, reason in UNSUPPORTED:
        if re.fullmatch(pattern, name):
            raise Unsupported(reason)
    raise ValueError(f"method name '{name}' is not in the dynatree grammar (see docs/import.md)")


# Source config keys -> our parameter names, per method. "max_new_tokens" goes to the protocol,
# "phase" is checked against the name; any other key is an error.
CONFIG_PARAMS = {
    "ar": {},
    "linear": {"K": "k"},
    "tree": {"tree_depth": "depth", "branch_factor": "branching", "probability_threshold": "tau",
             "max_tree_nodes": "max_nodes"},
    "hf_assisted": {"num_assistant_tokens": "num_assistant_tokens"},
    "dynatree": {key: key for key in ("base_depth", "max_depth", "high_conf_threshold",
                                      "low_conf_threshold", "min_branch", "max_branch")},
}
REAL_PARAMS = {"tau", "high_conf_threshold", "low_conf_threshold"}  # the others are integers
# Every parameter of our methods; those a record does not state are listed as unknown in its notes.
METHOD_PARAMS = {
    "ar": [],
    "linear": ["k"],
    "tree": ["depth", "branching", "tau", "max_nodes"],
    "hf_assisted": ["num_assistant_tokens"],
    "dynatree": ["base_depth", "max_depth", "min_branch", "max_branch", "high_conf_threshold",
                 "low_conf_threshold", "tau", "early_stop_threshold", "deep_expand_threshold",
                 "max_nodes", "history_window", "target_acceptance", "step"],
}


def method_params(parsed: ParsedName, config: dict) -> tuple[dict, dict]:
    """(params, protocol) from the name and the record's config; they must agree."""
    keymap = CONFIG_PARAMS[parsed.method_id]
    params, protocol = dict(parsed.params), {}
    for key, value in config.items():
        if key == "max_new_tokens":
            protocol["max_new_tokens"] = _integer(value, f"config.{key}")
        elif key == "phase" and parsed.method_id == "dynatree":
            if value != parsed.phase:
                raise ValueError(f"config.phase is {value!r} but the name says phase {parsed.phase}")
        elif key in keymap:
            ours = keymap[key]
            value = (_number if ours in REAL_PARAMS else _integer)(value, f"config.{key}")
            if ours in params and params[ours] != value:
                raise ValueError(f"config.{key} is {value!r} but the name says {ours}={params[ours]!r}")
            params[ours] = value
        else:
            raise ValueError(f"config.{key}: not a parameter of '{parsed.method_id}' "
                             f"(known: {', '.join(sorted([*keymap, 'max_new_tokens']))})")
    if parsed.phase is not None:  # DynaTree's ablation phases
        params.update(PHASE_SWITCHES[parsed.phase])
    return params, protocol


NAME_PARAMS = {"linear": ["k"], "tree": ["depth", "branching"], "dynatree": ["base_depth", "max_depth"]}


def config_name(method_id: str, params: dict, phase: int | None = None) -> str:
    """Stable, readable method configuration names: ar, linear_k6, tree_d6_b2_tau0.05, dynatree_p3_d5-8."""
    missing = [k for k in NAME_PARAMS.get(method_id, []) if k not in params]
    if missing:
        raise ValueError(f"cannot name the '{method_id}' configuration: the source does not state "
                         f"{', '.join(missing)}")
    if method_id in ("ar", "hf_assisted"):
        return method_id
    if method_id == "linear":
        return f"linear_k{params['k']}"
    if method_id == "tree":
        tau = f"_tau{params['tau']:g}" if "tau" in params else ""
        return f"tree_d{params['depth']}_b{params['branching']}{tau}"
    if method_id == "dynatree":
        return f"dynatree_p{phase}_d{params['base_depth']}-{params['max_depth']}"
    raise ValueError(f"no configuration name for method '{method_id}'")


# --------------------------------------------------------------------------------------------
# Summary fields per layout


@dataclass(frozen=True)
class Field:
    source: str
    metric: str  # our summary metric (source_*: the source's own definition, see docs/import.md)
    scale: float = 1.0  # unit conversion to ours (ms -> s)
    std: str | None = None  # the source's std field: numpy's population std (ddof=0)
    n: str = "prompts"  # prompts: a mean over the measured prompts; one: a single generation; unknown


PAPER_FIELDS = [
    Field("throughput_tps", "tokens_per_s", std="throughput_std"),
    Field("ttft_ms", "ttft_s", 1e-3, std="ttft_std"),
    Field("tpot_ms", "tpot_s", 1e-3, std="tpot_std"),
    Field("total_time_ms", "wall_time_s", 1e-3),
    Field("peak_memory_mb", "peak_memory_mib", n="one"),  # the source's name for its peak
    Field("total_rounds", "rounds"),
    Field("tokens_per_round", "tokens_per_round", n="unknown"),  # max_new_tokens / total_rounds
    Field("acceptance_rate", "source_acceptance_rate", std="acceptance_std"),
    Field("avg_path_length", "source_avg_path_length", std="path_length_std"),
]
MEMORY_FIELDS = [
    Field("throughput_tps", "tokens_per_s"),
    Field("ttft_ms", "ttft_s", 1e-3),
    Field("tpot_ms", "tpot_s", 1e-3),
    Field("peak_memory_mb", "peak_memory_mib", n="one"),  # the source's name for its peak
    Field("total_rounds", "rounds"),
    Field("tokens_per_round", "tokens_per_round"),
    Field("acceptance_rate", "source_acceptance_rate"),
    Field("avg_path_length", "source_avg_path_length"),
]
SWEEP_FIELDS = [  # seconds already; means over prompts x runs combined in a way the file does not state
    Field("throughput", "tokens_per_s", n="unknown"),
    Field("ttft", "ttft_s", n="unknown"),
    Field("tpot", "tpot_s", n="unknown"),
    Field("total_rounds", "rounds", n="unknown"),
    Field("acceptance_rate", "source_acceptance_rate", n="unknown"),
    Field("avg_path_length", "source_avg_path_length", n="unknown"),
]


def summarise_record(record: dict, fields: list[Field], prompts: int | None) -> tuple[dict, list[str]]:
    """Our summary from a source record, and the fields left out because they were recorded as 0.

    The producing scripts initialise every metric to 0 and leave it there when they do not
    measure it (e.g. total_time_ms of the speculative methods), so a 0 means "not measured".
    """
    summary, zeros = {}, []
    for f in fields:
        if f.source not in record:
            raise ValueError(f"field '{f.source}' is missing")
        value = _number(record[f.source], f.source)
        if value == 0:
            zeros.append(f.source)
            continue
        std = _number(record[f.std], f.std) if f.std is not None and f.std in record else None
        n = {"prompts": prompts, "one": 1, "unknown": None}[f.n]
        summary[f.metric] = source_stat(value, std, n, f.scale, std_ddof=0)
    return summary, zeros


# --------------------------------------------------------------------------------------------
# Conversion


@dataclass(frozen=True)
class Layout:
    name: str
    keys: frozenset  # top-level keys that identify it
    info: str  # the file-level block
    records: str  # the list of records
    prompts: str  # the info key holding the number of measured prompts
    fields: list


LAYOUTS = [
    Layout("memory", frozenset({"benchmark_info", "results"}), info="benchmark_info", records="results",
           prompts="num_samples", fields=MEMORY_FIELDS),
    Layout("paper", frozenset({"experiment_info", "all_results"}), info="experiment_info",
           records="all_results", prompts="num_samples", fields=PAPER_FIELDS),
    Layout("sweep", frozenset({"config", "baseline", "results"}), info="config", records="results",
           prompts="num_prompts", fields=SWEEP_FIELDS),
]


@dataclass(frozen=True)
class Source:
    """What a file states about all its records."""
    path: Path
    sha256: str
    info: dict  # benchmark_info / experiment_info / config
    timestamp: str | None
    prompts: int | None
    warmups: int | None
    max_new_tokens: int | None  # file-level budget (memory, sweep); per record in the paper layout


def read_source(path: Path) -> tuple[Layout, dict, Source]:
    """The file's layout, its parsed JSON and what it states for all records."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ImportFormatError(f"{path}: expected a JSON object at the top level")
    layout = next((lay for lay in LAYOUTS if lay.keys <= set(data)), None)
    if layout is None:
        expected = " or ".join("{" + ", ".join(sorted(lay.keys)) + "}" for lay in LAYOUTS)
        raise ImportFormatError(f"{path}: unknown layout (top-level keys {sorted(data)}); "
                                f"expected {expected}")
    info = data[layout.info]
    if not isinstance(info, dict) or not isinstance(data[layout.records], list):
        raise ImportFormatError(f"{path}: '{layout.info}' must be an object and '{layout.records}' a list")
    if layout.name == "sweep" and not isinstance(data["baseline"], dict):
        raise ImportFormatError(f"{path}: 'baseline' must be an object")
    try:
        source = Source(path=path, sha256=file_sha256(path), info=info,
                        timestamp=_timestamp(data.get("timestamp", info.get("timestamp"))),
                        prompts=_optional_int(info, layout.prompts),
                        warmups=_optional_int(info, "warmup_runs"),
                        max_new_tokens=_optional_int(info, "max_new_tokens"))
    except ValueError as exc:
        raise ImportFormatError(f"{path}: {layout.info}.{exc}") from None
    return layout, data, source


def record_method(layout: Layout, record: dict, data: dict) -> tuple[ParsedName, dict]:
    """(parsed method name, source config) of one record; the sweep's records are bare trees."""
    if layout.name != "sweep":
        name = record.get("method")
        if not isinstance(name, str):
            raise ValueError("field 'method' is missing or not a string")
        config = record.get("config", {})
        if not isinstance(config, dict):
            raise ValueError("field 'config' is not an object")
        return parse_method_name(name), config
    for key in ("depth", "branch", "threshold"):
        if key not in record:
            raise ValueError(f"field '{key}' is missing")
    if _number(record.get("baseline_throughput"), "baseline_throughput") != \
            _number(data["baseline"].get("throughput"), "baseline.throughput"):
        raise ValueError("baseline_throughput differs from the file's baseline.throughput")
    return ParsedName("tree", {}), {"tree_depth": record["depth"], "branch_factor": record["branch"],
                                    "probability_threshold": record["threshold"]}


def convert(path: Path, study: str, options: dict | None = None) -> Conversion:
    """One DynaTree result file -> one result per (experiment, dataset, method configuration).
    The format has no options."""
    targets = targets_for(path)
    layout, data, source = read_source(path)
    for target in targets:
        try:
            _check_dataset(source.info, target)
        except ValueError as exc:
            raise ImportFormatError(f"{path}: {layout.info}.{exc}") from None

    out = Conversion(results=[])
    for index, record in enumerate(data[layout.records]):
        where = f"{path} record {index}"
        if not isinstance(record, dict):
            raise ImportFormatError(f"{where}: expected an object, got {type(record).__name__}")
        name = record.get("method")
        if isinstance(name, str):
            where += f" ('{name}')"
        if layout.name == "sweep" and record.get("success") is not True:
            out.skipped.append(f"{where}: success is {record.get('success')!r}; not imported")
            continue
        try:
            parsed, config = record_method(layout, record, data)
            params, protocol = method_params(parsed, config)
            method_name = config_name(parsed.method_id, params, parsed.phase)
            summary, zeros = summarise_record(record, layout.fields, source.prompts)
        except Unsupported as exc:
            out.skipped.append(f"{where}: {exc}")
            continue
        except ValueError as exc:
            raise ImportFormatError(f"{where}: {exc}") from None
        for target in targets:
            out.results.append(_result(source, target, study, index, name, method_name, parsed,
                                       params, protocol, summary, zeros, record))
    if layout.name == "sweep":  # the AR baseline is a file-level block, not a record
        try:
            tps = _number(data["baseline"].get("throughput"), "baseline.throughput")
        except ValueError as exc:
            raise ImportFormatError(f"{path}: {exc}") from None
        for target in targets:
            out.results.append(_result(source, target, study, None, None, "ar", ParsedName("ar", {}),
                                       {}, {}, {"tokens_per_s": source_stat(tps)}, [],
                                       {"baseline": data["baseline"]}))
    return out


def _result(source: Source, target: Target, study: str, index: int | None, name: str | None,
            method_name: str, parsed: ParsedName, params: dict, protocol: dict, summary: dict,
            zeros: list[str],
            record: dict) -> dict:
    where = f"{source.path} record {index}" if index is not None else f"{source.path} baseline"
    if name is not None:
        where += f" ('{name}')"
    budget = protocol.get("max_new_tokens", source.max_new_tokens)
    if target.max_new_tokens is not None and budget != target.max_new_tokens:
        raise ImportFormatError(f"{where}: max_new_tokens is {budget} but the file name says "
                                f"{target.max_new_tokens}")
    method_id = parsed.method_id
    selection = {k: source.info[k] for k in ("dataset", "max_prompt_length", "prompt_length")
                 if k in source.info}
    if target.prompt_length is not None:
        selection["prompt_length"] = target.prompt_length
    unknown = [p for p in METHOD_PARAMS[method_id] if p not in params]
    notes = [f"Imported from the DynaTree paper's published results ({source.path.name}; "
             f"format 'dynatree', see docs/import.md). Summary only: no per-prompt records, "
             "output ids, GPU name, library versions or commit."]
    if any(s and s["std"] is not None for s in summary.values()):
        notes.append(f"std: the source's numpy std (ddof=0) over n={source.prompts} prompts, "
                     "converted to the sample std (ddof=1).")
    if "peak_memory_mib" in summary:
        notes.append("peak_memory_mib: torch.cuda.max_memory_allocated of the last measured "
                     "generation only (n=1).")
    if zeros:
        notes.append(f"Recorded as 0, i.e. not measured by the source, and left out: {', '.join(zeros)}.")
    if unknown:
        notes.append(f"Parameters the source does not state (unknown, not defaulted): {', '.join(unknown)}.")
    if "speedup" in record:
        notes.append(f"Source speedup: {record['speedup']!r} (ours is recomputed from tokens_per_s).")
    if "num_runs" in source.info:
        notes.append(f"The sweep states num_runs={source.info['num_runs']} and "
                     f"num_prompts={source.prompts} but not how its means combine them (n=null).")
    if target.prompt_length is not None:
        notes.append(f"Prompt length {target.prompt_length} comes from the file name; its unit "
                     "is not recorded in the file.")
    try:
        models = {"target": _model(source.info, "target_model"),
                  "draft": None if method_id == "ar" else _model(source.info, "draft_model")}
    except ValueError as exc:
        raise ImportFormatError(f"{source.path}: {exc}") from None
    return imported_result(
        study=study, experiment=target.experiment,
        dataset={"name": target.loader + target.dataset_suffix, "loader": target.loader,
                 "source_kind": "imported", "label": DATASETS[target.loader]["label"],
                 "prompt_file": None, "prompt_sha256": None, "num_prompts": source.prompts,
                 "prompt_tokens": None, "selection": selection or None},
        method={"name": method_name + target.method_suffix,
                "id": method_id, "params": params, "lossless": True, "greedy": True,
                "source_name": name, "label": None},
        protocol={"max_new_tokens": budget, "warmups": source.warmups,
                  "prompts_requested": source.prompts, "prompts_measured": source.prompts},
        models=models,
        environment={"device": "cuda", "dtype": "float16", "memory_kind": "cuda_allocated"},
        source_file=source.path, source_sha256=source.sha256, source_record=index,
        notes=" ".join(notes), summary=summary, source_summary=record,
        finished_at=source.timestamp)


def _model(info: dict, key: str) -> dict:
    path = info.get(key)
    if not isinstance(path, str) or not path:
        raise ValueError(f"{key} is missing")
    return {"name": Path(path).name, "source": f"local:{path}", "revision": None,
            "weights_sha256": None, "num_parameters": None, "dtype": "float16",
            "architecture": None, "card": None}


def _check_dataset(info: dict, target: Target) -> None:
    stated = info.get("dataset")
    if not isinstance(stated, str):
        raise ValueError("dataset is missing")
    if not re.search(DATASETS[target.loader]["pattern"], stated, re.IGNORECASE):
        raise ValueError(f"dataset is '{stated}', but the file table maps this file to "
                         f"'{target.loader}' ({DATASETS[target.loader]['label']})")


def _timestamp(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"timestamp: expected a string, got {value!r}")
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})", value)  # the sweep's 20260106_043014
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}" if m else value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"field '{name}': expected a number, got {value!r}")
    return value


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"field '{name}': expected an integer, got {value!r}")
    return value


def _optional_int(info: dict, key: str) -> int | None:
    return _integer(info[key], key) if key in info else None
