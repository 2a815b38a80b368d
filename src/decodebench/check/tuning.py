"""Rule ``tuning``: a result whose parameters were tuned (``provenance.job.tuning``) against the
tuning stage it claims (decodebench.tuning): the picks file it was measured with, the pick
recomputed from the tuning results the picks file lists, and prompts disjoint by document."""

from __future__ import annotations

import json
from pathlib import Path

from .. import layout
from ..config import ConfigError
from ..results import ResultError, file_sha256, load_result
from ..tuning import best_per_method, prompt_document
from .inputs import Inputs
from .per_result import Result
from .report import Report


def rule_tuning(res: Result, inputs: Inputs, report: Report) -> None:
    d, f = res.data, res.path
    tuning = ((d.get("provenance") or {}).get("job") or {}).get("tuning")
    if not tuning:
        return
    report.ran(f, "tuning")
    path = Path(inputs.root) / layout.tuned_path(d["study"])
    try:
        picks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        report.error(f, "tuning", f"tuned parameters, but the picks file {path} cannot be read ({exc})")
        return
    method_id = tuning.get("method")
    family = (picks.get("families") or {}).get(method_id) or {}
    if file_sha256(path) != tuning.get("picks_sha256"):
        report.error(f, "tuning", f"measured with another tuning pick: {path} changed since (re-tuned); "
                                  "re-measure it")
    if family.get("params") != d["method"]["params"]:
        report.error(f, "tuning", f"method.params {d['method']['params']} are not the pick of '{method_id}' in "
                                  f"{path} ({family.get('pick')}: {family.get('params')})")
    entries, problems = [], []
    for rel, sha in (picks.get("results") or {}).items():
        p = Path(inputs.root) / rel
        try:
            if file_sha256(p) != sha:
                problems.append(f"{rel} changed since the pick")
                continue
            entries.append((rel, load_result(p), sha))
        except (OSError, ResultError) as exc:
            problems.append(f"{rel} cannot be read ({exc})")
    if problems or not entries:
        report.error(f, "tuning", "the tuning results the pick came from: " + ("; ".join(problems) or "none listed"))
        return
    try:
        recomputed = best_per_method(entries, picks.get("baseline", "ar"))["families"].get(method_id)
    except ConfigError as exc:
        report.error(f, "tuning", f"the pick cannot be recomputed from the tuning results ({exc})")
        return
    if recomputed is None or (recomputed["pick"], recomputed["params"]) != (family.get("pick"), family.get("params")):
        report.error(f, "tuning", f"the pick of '{method_id}' in {path} is {family.get('pick')}, but the tuning "
                                  f"results give {recomputed and recomputed['pick']} (the best paired speedup)")
    tuned_docs = {prompt_document(r["prompt_id"]) for _, t, _ in entries for r in t["records"] or []}
    shared = sorted(tuned_docs & {prompt_document(r["prompt_id"]) for r in d.get("records") or []})
    if shared:
        report.error(f, "tuning", f"tuned on prompts from the documents it reports: {', '.join(shared[:5])}"
                                  f"{' …' if len(shared) > 5 else ''} ({len(shared)} shared); the tuning set "
                                  "must be disjoint by document (dataset skip:)")
