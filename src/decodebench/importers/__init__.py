"""Importing third-party result files into our result schema.

A format adapter is one module in this package with a function

    convert(path: Path, study: str) -> Conversion

that turns one source file into result dicts (``kind: "imported"``, one per experiment,
dataset and method configuration) plus the source records it deliberately left out, each
with its reason. ``FORMATS`` maps a format name to its module; another paper's layout is
one new module and one line here.

What every adapter shares lives here: the skeleton of an imported result (explicit nulls for
what a summary-only source cannot know), the conversion of a source's mean/std into our
``{mean, std, n}`` stat, and writing the results under ``<out>/<experiment>/<dataset>/``
without ever silently replacing a different file.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from .. import results
from ..config import config_label

FORMATS = {
    "dynatree": "dynatree_paper",  # DynaTree paper (cny123222/DynaTree): see docs/import.md
    "spec-bench": "spec_bench",  # FastChat model_answer JSON lines (Spec-Bench, REST, Medusa, EAGLE)
}


class ImportFormatError(ValueError):
    """A source file that cannot be converted; the message names the file, record and field."""


@dataclass
class Conversion:
    results: list[dict]
    skipped: list[str] = field(default_factory=list)  # "file record i ('name'): reason"


def get_format(name: str) -> ModuleType:
    if name not in FORMATS:
        raise ImportFormatError(f"unknown import format '{name}' (known: {', '.join(sorted(FORMATS))})")
    return importlib.import_module(f"{__name__}.{FORMATS[name]}")


def convert(format_name: str, path: str | Path, study: str, options: dict | None = None) -> Conversion:
    """One source file -> results. `options`: format-specific settings (from the config's
    ``import`` block, see ``import_options``); formats that take none ignore them."""
    return get_format(format_name).convert(Path(path), study, options or {})


def import_options(cfg: dict, root: str | Path = ".") -> dict:
    """The format-specific settings of a config's ``import`` block (spec-bench: question file,
    dataset, experiment, {file name: (method configuration, method id)})."""
    spec = cfg["import"]
    where = config_label(cfg)
    out = {k: spec[k] for k in ("dataset", "experiment") if k in spec}
    if "questions" in spec:
        out["questions"] = Path(root) / spec["questions"]
    if "methods" in spec:
        experiment = spec.get("experiment", "leaderboard")
        methods = cfg["experiments"].get(experiment, {}).get("methods", {})
        out["methods"] = {}
        for file, name in spec["methods"].items():
            if name not in methods:
                raise ImportFormatError(f"{where}: import.methods.{file}: '{name}' is not a method "
                                        f"configuration of experiments.{experiment}")
            out["methods"][file] = (name, methods[name]["method"])
    return out


def source_files(cfg: dict, root: str | Path = ".") -> list[Path]:
    """The files a config's ``import`` block names: ``import.files`` under ``import.path``
    (relative to ``root``, the repository root), default every file matching the format's
    ``SOURCE_GLOB`` (``*.json`` unless the module says otherwise) there, sorted."""
    spec = cfg["import"]
    directory = Path(root) / spec["path"]
    where = config_label(cfg)
    if not directory.is_dir():
        raise ImportFormatError(f"{where}: import.path: {directory} is not a directory")
    pattern = getattr(get_format(spec["format"]), "SOURCE_GLOB", "*.json")
    if "files" in spec:
        files = [directory / name for name in spec["files"]]
    else:
        files = sorted(directory.glob(pattern))
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        raise ImportFormatError(f"{where}: import.files: not found under {directory}: "
                                f"{', '.join(missing) or pattern}")
    return files


def source_stat(mean: float | None, std: float | None = None, n: int | None = None,
                scale: float = 1.0, std_ddof: int = 1) -> dict | None:
    """Our ``{mean, std, n}`` from a source's summary numbers, or None when there is no mean.

    ``scale`` converts units (ms -> s: 1e-3). ``std_ddof=0`` marks a population standard
    deviation (numpy's default); it is converted to the sample std (ddof=1) our summaries
    use, which needs n >= 2 (otherwise the std is dropped).
    """
    if mean is None:
        return None
    out_std = None
    if std is not None:
        if std_ddof == 0:
            out_std = std * math.sqrt(n / (n - 1)) * scale if n is not None and n >= 2 else None
        else:
            out_std = std * scale
    return {"mean": mean * scale, "std": out_std, "n": n}


def imported_result(*, study: str, experiment: str, dataset: dict, method: dict, protocol: dict,
                    models: dict, environment: dict, source_file: Path, source_sha256: str,
                    source_record: int | None, notes: str, summary: dict,
                    source_summary: dict | None, finished_at: str | None) -> dict:
    """An imported result: no per-prompt records, no git state, no job hash.

    Deterministic (no import time), so importing the same file twice gives the same bytes.
    """
    return {
        "schema_version": results.SCHEMA_VERSION,
        "kind": "imported",
        "study": study,
        "experiment": experiment,
        "dataset": dataset,
        "method": method,
        "protocol": {"max_new_tokens": None, "stop_at_eos": None, "warmups": None, "repeats": None,
                     "seed": None, "prompts_requested": None, "prompts_measured": None, **protocol},
        "models": models,
        "environment": {"device": None, "device_name": None, "threads": None, "dtype": None,
                        "memory_kind": None, "python": None, "torch": None, "transformers": None,
                        "decodebench": None, "platform": None, "cuda": None, **environment},
        "provenance": {
            "git_commit": None, "git_dirty": None, "config_file": None, "config_sha256": None,
            "job_sha256": None, "code_version": None, "started_at": None,
            "finished_at": finished_at, "command": None,
            "source_file": source_file.name, "source_sha256": source_sha256,
            "source_record": source_record, "notes": notes,
        },
        "records": None,
        "errors": [],
        "summary": summary,
        "source_summary": source_summary,
    }


def result_relpath(result: dict) -> Path:
    """``<experiment>/<dataset>/<method>.json``: the path scheme under results/raw/<study>/."""
    return Path(result["experiment"]) / result["dataset"]["name"] / f"{result['method']['name']}.json"


def write_results(converted: list[dict], out_dir: str | Path, force: bool = False) -> list[tuple[Path, str]]:
    """Write each result atomically; returns (path, 'written' | 'unchanged' | 'replaced').

    Two results for one path in the same import, or an existing file with different
    content (unless ``force``), is an error naming both sources: data is never lost silently.
    All checks run before the first write, so a refused import writes nothing.
    """
    out_dir = Path(out_dir)
    planned: dict[Path, dict] = {}
    for res in converted:
        path = out_dir / result_relpath(res)
        if path in planned:
            raise ImportFormatError(f"{path}: two source records map to this result: "
                                    f"{_origin(planned[path])} and {_origin(res)}")
        results.validate(res, f"{path} (from {_origin(res)})")
        planned[path] = res
    status = {}
    for path, res in planned.items():
        if not path.exists():
            status[path] = "written"
        elif _existing(path) == res:
            status[path] = "unchanged"
        elif force:
            status[path] = "replaced"
        else:
            raise ImportFormatError(f"{path}: exists with different content (now from {_origin(res)}); "
                                    "remove it or pass --force to replace it")
    for path, res in planned.items():
        if status[path] != "unchanged":
            results.write_result(path, res)
    return list(status.items())


def _existing(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # unreadable: treated as different content


def _origin(res: dict) -> str:
    p = res["provenance"]
    where = f"record {p['source_record']}" if p["source_record"] is not None else "file-level block"
    return f"{p['source_file']} {where}"
