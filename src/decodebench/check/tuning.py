"""Rule ``tuning``: a result whose parameters were tuned (``provenance.job.tuning``) against the
tuning stage it claims (decodebench.tuning): the picks file it was measured with, the pick
recomputed from the tuning results the picks file lists, and prompts disjoint by document."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import layout
from ..config import ConfigError
from ..results import ResultError, file_sha256, load_result
from ..tuning import best_per_method, prompt_document
from .inputs import Inputs
from .per_result import Result
from .report import Report


@dataclass
class TuningStage:
    """What a picks file says and what its tuning results give, derived once per check run."""
    path: Path
    picks: dict | None  # None: the file cannot be read
    error: str = ""  # why it cannot be read
    sha256: str = ""
    problems: list[str] = field(default_factory=list)  # tuning results changed, missing or unreadable
    recomputed: dict | None = None  # best_per_method's families, from the listed results
    recompute_error: str = ""
    documents: set[str] = field(default_factory=set)  # documents of the tuning prompts


def tuning_stage(path: Path, root: Path) -> TuningStage:
    try:
        picks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return TuningStage(path, None, error=str(exc))
    stage = TuningStage(path, picks, sha256=file_sha256(path))
    entries = []
    for rel, sha in (picks.get("results") or {}).items():
        p = Path(root) / rel
        try:
            if file_sha256(p) != sha:
                stage.problems.append(f"{rel} changed since the pick")
                continue
            entries.append((rel, load_result(p), sha))
        except (OSError, ResultError) as exc:
            stage.problems.append(f"{rel} cannot be read ({exc})")
    if stage.problems or not entries:
        return stage
    try:
        stage.recomputed = best_per_method(entries, picks.get("baseline", "ar"))["families"]
    except ConfigError as exc:
        stage.recompute_error = str(exc)
    stage.documents = {prompt_document(r["prompt_id"]) for _, t, _ in entries for r in t["records"] or []}
    return stage


def rule_tuning(res: Result, inputs: Inputs, report: Report) -> None:
    d, f = res.data, res.path
    tuning = ((d.get("provenance") or {}).get("job") or {}).get("tuning")
    if not tuning:
        return
    report.ran(f, "tuning")
    path = Path(inputs.root) / layout.tuned_path(d["study"])
    if path not in inputs.tuning_stages:
        inputs.tuning_stages[path] = tuning_stage(path, inputs.root)
    stage = inputs.tuning_stages[path]
    if stage.picks is None:
        report.error(f, "tuning", f"tuned parameters, but the picks file {path} cannot be read ({stage.error})")
        return
    method_id = tuning.get("method")
    family = (stage.picks.get("families") or {}).get(method_id) or {}
    if stage.sha256 != tuning.get("picks_sha256"):
        report.error(f, "tuning", f"measured with another tuning pick: {path} changed since (re-tuned); "
                                  "re-measure it")
    if family.get("params") != d["method"]["params"]:
        report.error(f, "tuning", f"method.params {d['method']['params']} are not the pick of '{method_id}' in "
                                  f"{path} ({family.get('pick')}: {family.get('params')})")
    if stage.problems or (stage.recomputed is None and not stage.recompute_error):
        report.error(f, "tuning", "the tuning results the pick came from: "
                                  + ("; ".join(stage.problems) or "none listed"))
        return
    if stage.recompute_error or stage.recomputed is None:
        report.error(f, "tuning", f"the pick cannot be recomputed from the tuning results ({stage.recompute_error})")
        return
    recomputed = stage.recomputed.get(method_id)
    if recomputed is None or (recomputed["pick"], recomputed["params"]) != (family.get("pick"), family.get("params")):
        report.error(f, "tuning", f"the pick of '{method_id}' in {path} is {family.get('pick')}, but the tuning "
                                  f"results give {recomputed and recomputed['pick']} (the best paired speedup)")
    shared = sorted(stage.documents & {prompt_document(r["prompt_id"]) for r in d.get("records") or []})
    if shared:
        report.error(f, "tuning", f"tuned on prompts from the documents it reports: {', '.join(shared[:5])}"
                                  f"{' …' if len(shared) > 5 else ''} ({len(shared)} shared); the tuning set "
                                  "must be disjoint by document (dataset skip:)")
