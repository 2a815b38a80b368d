"""Rules across the results of one table: lossless, comparability, baseline-stability.

Results compared in one table are those of one (study, experiment, dataset). Each result's
baseline is the experiment's ``baseline`` method from the config (for ``generation_lengths``
variants, the baseline variant with the same ``_t<N>`` suffix); without a config, the method
with id ``ar`` (``naive`` for multi-sample results) with the same token budget.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict

import numpy as np

from .per_result import Result
from .report import Report

HALF_DTYPES = {"float16", "bfloat16", "fp16", "bf16", "half"}
_VARIANT = re.compile(r"_t\d+$")

# Fields that must agree between a result and its baseline. (path, severity)
COMPARED = (
    (("dataset", "prompt_sha256"), "error"),
    (("dataset", "num_prompts"), "error"),
    (("models", "target", "name"), "error"),
    (("models", "target", "weights_sha256"), "error"),
    (("models", "target", "revision"), "error"),
    (("environment", "dtype"), "error"),
    (("environment", "device"), "error"),
    (("environment", "device_name"), "error"),
    (("environment", "threads"), "error"),
    (("environment", "cuda"), "warning"),
    (("environment", "torch"), "warning"),
    (("environment", "transformers"), "warning"),
    (("environment", "python"), "warning"),
    (("protocol", "max_new_tokens"), "error"),
    (("protocol", "stop_at_eos"), "error"),
    (("protocol", "warmups"), "error"),
    (("protocol", "repeats"), "error"),
    (("protocol", "seed"), "error"),
    (("protocol", "prompts_measured"), "error"),
    (("protocol", "overrides"), "error"),
)


def _get(d: dict, path: tuple) -> object:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def groups(results: list[Result]) -> dict[tuple, list[Result]]:
    out = defaultdict(list)
    for r in results:
        out[(r.data["study"], r.data["experiment"], r.data["dataset"]["name"])].append(r)
    return out


def baseline_of(res: Result, group: list[Result], cfg: dict | None) -> Result | None:
    """The result `res` is compared with in its table (None: the group has none)."""
    by_name = {r.method: r for r in group}
    if cfg is not None and cfg.get("study") == res.data["study"]:
        exp = cfg["experiments"].get(res.data["experiment"])
        if exp is not None:
            base = exp["baseline"]
            suffix = _VARIANT.search(res.method)
            return by_name.get(base + suffix.group(0)) if suffix and base + suffix.group(0) in by_name \
                else by_name.get(base)
    base_id = "naive" if res.multi_sample else "ar"
    candidates = [r for r in group if r.data["method"]["id"] == base_id]
    same_budget = [r for r in candidates
                   if r.data["protocol"]["max_new_tokens"] == res.data["protocol"]["max_new_tokens"]]
    pool = same_budget or candidates
    return pool[0] if len(pool) == 1 else (sorted(pool, key=lambda r: r.path)[0] if pool else None)


def rule_comparability(group: list[Result], cfg: dict | None, report: Report) -> None:
    for res in group:
        report.ran(res.path, "comparability")
        base = baseline_of(res, group, cfg)
        if base is None:
            report.not_applicable(res.path, "comparability", "no baseline result in this experiment and dataset "
                                                             "to compare with")
            continue
        if base is res:
            continue
        for path, severity in COMPARED:
            a, b = _get(base.data, path), _get(res.data, path)
            if res.imported or base.imported:
                if a is None or b is None:
                    continue  # imported results leave many fields unknown
            if a != b:
                report.add(res.path, "comparability", severity,
                           f"{'.'.join(path)} differs from the baseline {base.path} "
                           f"(expected {a!r}, found {b!r})")
        if (res.multi_sample and base.multi_sample
                and res.data["protocol"]["num_samples"] != base.data["protocol"]["num_samples"]):
            report.error(res.path, "comparability", f"protocol.num_samples differs from the baseline {base.path} "
                                                    f"(expected {base.data['protocol']['num_samples']}, "
                                                    f"found {res.data['protocol']['num_samples']})")
        if res.records is not None and base.records is not None:
            ids, base_ids = {r["prompt_id"] for r in res.records}, {r["prompt_id"] for r in base.records}
            if ids != base_ids:
                report.error(res.path, "comparability",
                             f"measured prompts differ from the baseline {base.path} (expected "
                             f"{len(base_ids)} prompt ids of the baseline, found {len(ids & base_ids)} shared "
                             f"and {len(ids - base_ids)} others)")


def rule_experiment_comparability(all_groups: dict[tuple, list[Result]], cfg: dict | None,
                                  report: Report) -> None:
    """Across the datasets of one experiment, the baselines (same method name) must agree on
    everything but the dataset: an experiment's table spans its datasets."""
    by_baseline: dict[tuple, dict[str, Result]] = defaultdict(dict)
    for (study, experiment, _), group in all_groups.items():
        for res in group:
            base = baseline_of(res, group, cfg)
            if base is not None:
                by_baseline[(study, experiment, base.method)][base.path] = base
    for baselines in by_baseline.values():
        ref, *others = sorted(baselines.values(), key=lambda r: r.path)
        for res in others:
            for path, severity in COMPARED:
                if path[0] == "dataset" or path == ("protocol", "prompts_measured"):
                    continue
                a, b = _get(ref.data, path), _get(res.data, path)
                if (res.imported or ref.imported) and (a is None or b is None):
                    continue
                if a != b:
                    report.add(res.path, "comparability", severity,
                               f"{'.'.join(path)} differs from the same experiment's baseline on another "
                               f"dataset, {ref.path} (expected {a!r}, found {b!r})")


def rule_lossless(group: list[Result], report: Report, cfg: dict | None = None) -> None:
    from .questions import has_questions, question_lossless

    for res in group:
        m = res.data["method"]
        if not (m["lossless"] and m["greedy"]) or m["id"] == "ar":
            continue
        report.ran(res.path, "lossless")
        if has_questions(res):  # imported answer files: text hashes per turn
            question_lossless(res, baseline_of(res, group, cfg), report)
            continue
        if res.records is None:
            report.not_applicable(res.path, "lossless", "imported result has no output hashes")
            continue
        p = res.data["protocol"]
        refs = [r for r in group if r.data["method"]["id"] == "ar" and r.records is not None
                and r.data["protocol"]["max_new_tokens"] == p["max_new_tokens"]
                and r.data["protocol"]["stop_at_eos"] == p["stop_at_eos"]]
        if not refs:
            report.not_applicable(res.path, "lossless", f"no AR result with max_new_tokens={p['max_new_tokens']} "
                                                        f"in this experiment and dataset to compare output ids with")
            continue
        ref = sorted(refs, key=lambda r: r.path)[0]
        expected = {}
        for r in ref.records:
            expected.setdefault(r["prompt_id"], r["output_sha256"])
        shared = [r for r in res.records if r["prompt_id"] in expected]
        if not shared:
            report.not_applicable(res.path, "lossless", f"no prompt in common with {ref.path}")
            continue
        bad = [r for r in shared if r["output_sha256"] != expected[r["prompt_id"]]]
        if not bad:
            continue
        dtype = res.data["environment"].get("dtype") or ""
        rate = len(bad) / len(shared)
        msg = (f"output ids differ from greedy AR ({ref.path}) for {len(bad)} of {len(shared)} generations "
               f"({rate:.0%}), first prompt {bad[0]['prompt_id']} (expected output_sha256 "
               f"{expected[bad[0]['prompt_id']][:16]}…, found {bad[0]['output_sha256'][:16]}…)")
        if dtype in HALF_DTYPES:
            report.warning(res.path, "lossless", msg + f"; in {dtype}, ties and rounding can flip a greedy choice")
        else:
            report.error(res.path, "lossless", msg + f"; in {dtype or 'this dtype'} a lossless method must "
                                                     f"reproduce AR exactly")


def _cv(res: Result) -> float | None:
    """Coefficient of variation of tokens/s across the result's generations."""
    if res.records is not None:
        tps = res.column("tokens_per_s")
        tps = tps[~np.isnan(tps)]
        if len(tps) < 2 or tps.mean() <= 0:
            return None
        return float(tps.std(ddof=1) / tps.mean())
    s = res.data["summary"].get("tokens_per_s") or {}
    if s.get("mean") and s.get("std") is not None and s["mean"] > 0:
        return s["std"] / s["mean"]
    return None


def rule_baseline_stability(all_groups: dict[tuple, list[Result]], cfg: dict | None, report: Report,
                            cv_threshold: float, relative_factor: float = 3.0, relative_floor: float = 0.05) -> None:
    """Flag a baseline whose CV of tokens/s is above `cv_threshold` (error), or, when at least two
    other baselines exist, above `relative_factor` x their median CV and above `relative_floor`
    (warning). Names the speedups computed against it."""
    dependents: dict[str, list[Result]] = defaultdict(list)
    baselines: dict[str, Result] = {}
    for group in all_groups.values():
        for res in group:
            base = baseline_of(res, group, cfg)
            if base is not None:
                baselines[base.path] = base
                if base is not res:
                    dependents[base.path].append(res)
    cvs = {path: _cv(b) for path, b in baselines.items()}
    for path, base in sorted(baselines.items()):
        report.ran(path, "baseline-stability")
        cv = cvs[path]
        if cv is None:
            report.not_applicable(path, "baseline-stability", "fewer than two tokens/s values (or no mean and std) "
                                                              "to compute a coefficient of variation")
            continue
        others = [c for p, c in cvs.items() if p != path and c is not None]
        usual = statistics.median(others) if len(others) >= 2 else None
        base_tps = base.summary_mean("tokens_per_s")
        deps = ", ".join(
            f"{d.method} ({d.summary_mean('tokens_per_s') / base_tps:.2f}x)"
            if base_tps and d.summary_mean("tokens_per_s") is not None else d.method
            for d in sorted(dependents[path], key=lambda r: r.method)) or "none in these results"
        if cv > cv_threshold:
            report.error(path, "baseline-stability",
                         f"baseline tokens/s varies too much across prompts (expected CV <= {cv_threshold:.2f}, "
                         f"found {cv:.2f}{f'; other baselines usually {usual:.2f}' if usual is not None else ''}); "
                         f"speedups that depend on it: {deps}")
        elif usual is not None and cv > relative_factor * usual and cv > relative_floor:
            report.warning(path, "baseline-stability",
                           f"baseline tokens/s is much noisier than the other baselines (expected CV <= "
                           f"{relative_factor:g} x {usual:.3f}, found {cv:.3f}); speedups that depend on it: {deps}")


SOURCE_SPEEDUP_TOLERANCE = 0.005  # relative; the source's speedups are unrounded ratios


def rule_source_speedups(all_groups: dict[tuple, list[Result]], cfg: dict | None, report: Report) -> None:
    """Imported results: the speedup the source stored (``source_summary.speedup``) must equal the
    ratio of the result's tokens/s to its baseline's, both as imported (rule id arithmetic)."""
    for group in all_groups.values():
        for res in group:
            stored = (res.data.get("source_summary") or {}).get("speedup")
            if not res.imported or stored is None:
                continue
            base = baseline_of(res, group, cfg)
            tps = res.summary_mean("tokens_per_s")
            base_tps = base.summary_mean("tokens_per_s") if base is not None else None
            if not tps or not base_tps:
                report.not_applicable(res.path, "arithmetic", "the source's speedup cannot be recomputed "
                                                              "(no baseline with tokens/s in this table)")
                continue
            report.ran(res.path, "arithmetic")
            ratio = tps / base_tps
            if abs(ratio - stored) > SOURCE_SPEEDUP_TOLERANCE * abs(stored):  # no division: a stored 0 is an error
                report.error(res.path, "arithmetic",
                             f"the source's speedup disagrees with its own throughputs (expected "
                             f"{tps:.2f} / {base_tps:.2f} tokens/s of {base.method} = {ratio:.3f}, "
                             f"found {stored:.3f}); tables use the recomputed value")
