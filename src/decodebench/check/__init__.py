"""``decodebench check``: integrity rules over result files and what is made from them.

    report = check_paths([Path("results/raw/embedded")], cfg=load_config("config/config.yaml"))
    print(report.text()); sys.exit(report.exit_code())

It only reads; nothing is modified or deleted. Rules (ids as printed; docs/check.md):
schema, errors, memory, memory-model, contention, arithmetic, definitions, relations, values, provenance
(per result file);
lossless, comparability, baseline-stability, no-baseline, run-agreement (across results);
staleness, dataset-provenance, identity, tuning (against the current config, prompt files, weights,
code; the result's own path and job; the tuning picks it was measured with);
artifacts, manuscript (paper/generated/, results/MANIFEST.json, paper/*.tex);
gate (a report's signature over the config and the inputs it checked, verified by the stage
behind it: ``--verify-report``).
"""

from __future__ import annotations

from pathlib import Path

from ..config import DEFAULT_CV_THRESHOLD, config_label, config_path, config_sha256
from .artifacts import rule_artifacts, rule_dataset_names, rule_setup_table, rule_tables
from .gate import checked_inputs, verify_report
from .groups import (
    baseline_of,
    groups,
    rule_baseline_stability,
    rule_comparability,
    rule_experiment_comparability,
    rule_lossless,
    rule_source_speedups,
)
from .inputs import Inputs, rule_dataset_provenance, rule_identity, rule_staleness
from .manuscript import rule_manuscript
from .per_result import (
    read_result,
    rule_arithmetic,
    rule_contention,
    rule_definitions,
    rule_errors,
    rule_memory,
    rule_memory_model,
    rule_provenance,
    rule_relations,
)
from .questions import question_arithmetic, rule_leaderboard_baseline, rule_run_agreement, rule_values
from .report import ERROR, NOT_APPLICABLE, RULES, WARNING, Finding, Report
from .tuning import rule_tuning

__all__ = ["check_paths", "find_result_files", "verify_report", "checked_inputs", "Report", "Finding", "RULES", "ERROR",
           "WARNING", "NOT_APPLICABLE", "DEFAULT_CV_THRESHOLD"]


def find_result_files(paths: list[Path]) -> list[Path]:
    """Result JSON files named by `paths` (files, or directories searched recursively)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.json") if not q.name.startswith("."))
        else:
            out.append(p)
    return out


def _display(path: Path, root: Path) -> str:
    """The path as printed: relative to the repository root when inside it."""
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def check_paths(paths: list[Path], cfg: dict | None = None, root: Path = Path("."),
                cv_threshold: float = DEFAULT_CV_THRESHOLD, artifacts: bool = False,
                rerender: bool = True, regenerate_prompts: bool = True) -> Report:
    """Run every rule on the result files under `paths` (and, with artifacts=True, on
    paper/generated/, results/MANIFEST.json and paper/*.tex under `root`)."""
    root = Path(root)
    report = Report(configfile=config_path(cfg or {}), config_sha256=config_sha256(cfg or {}))
    files = find_result_files(paths)
    report.inputs = checked_inputs(root, files, cfg, artifacts)
    _check_threshold(cfg, cv_threshold, report)
    results = []
    for path in files:
        res = read_result(path, report, _display(path, root.resolve()))
        if res is not None:
            results.append(res)
    inputs = Inputs(cfg, root)
    for res in results:
        rule_errors(res, report)
        rule_memory(res, report)
        rule_memory_model(res, report)
        rule_contention(res, report)
        rule_arithmetic(res, report)
        if res.summary_only and res.data.get("questions"):
            question_arithmetic(res, report)
        rule_definitions(res, report)
        rule_relations(res, report)
        rule_values(res, report)
        rule_provenance(res, report)
        rule_staleness(res, inputs, report)
        rule_identity(res, inputs, report)
        rule_tuning(res, inputs, report)
        rule_dataset_provenance(res, inputs, report, regenerate=regenerate_prompts)
    table_groups = groups(results)
    for group in table_groups.values():
        rule_lossless(group, report, cfg)
        rule_comparability(group, cfg, report)
        rule_leaderboard_baseline(group, lambda r, g=group: baseline_of(r, g, cfg), cfg, report)
    rule_experiment_comparability(table_groups, cfg, report)
    rule_baseline_stability(table_groups, cfg, report, cv_threshold)
    rule_source_speedups(table_groups, cfg, report)
    rule_run_agreement(results, cfg, report)
    if artifacts:
        rule_tables(root, cfg, report)
        rule_setup_table(root, cfg, report)
        rule_artifacts(root, cfg, report, rerender=rerender)
        rule_manuscript(root, report)
        rule_dataset_names(root, {r.data["dataset"]["loader"] for r in results}, report)
    if cfg and cfg.get("check", {}).get("acknowledge"):
        report.acknowledge(cfg["check"]["acknowledge"])
    return report


def _check_threshold(cfg: dict | None, cv_threshold: float, report: Report) -> None:
    """A measured study that relaxes baseline-stability says so (the paper lists it too)."""
    if cfg is None or cfg.get("import") or cv_threshold <= DEFAULT_CV_THRESHOLD:
        return
    where = config_label(cfg)
    report.ran(where, "baseline-stability")
    report.warning(where, "baseline-stability", f"check.cv_threshold is {cv_threshold:g} (expected at most the "
                                                f"default {DEFAULT_CV_THRESHOLD:g} in a measured study): baselines "
                                                f"this noisy pass; the paper's reproducibility section lists it")
