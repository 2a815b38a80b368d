"""Rules across the results of one table: lossless, comparability, baseline-stability.

Results compared in one table are those of one (study, experiment, dataset). Each result's
baseline is the one the config gives it (``config.baseline_for``: the experiment's ``baseline``,
or for ``generation_lengths`` and ``vary`` variants the baseline's variant of the same
setting); without a config, the method
with id ``ar`` (``naive`` for multi-sample results) with the same token budget.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from ..config import baseline_for
from ..paired import PairedStat, across_prompt_cv, paired_speedup, within_prompt_cv
from .per_result import Result
from .report import Report

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
    (("protocol", "temperature"), "error"),  # multi-sample results (null for the others)
    (("protocol", "prompts_measured"), "error"),
    (("protocol", "overrides"), "error"),
)


def _get(d: object, path: tuple) -> object:
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
            return by_name.get(baseline_for(exp, res.method)) or by_name.get(exp["baseline"])
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


# A greedy choice whose top-2 float32 logits of AR differ by less than this may flip between
# two correct implementations (another kernel, batch width or accumulation order): a tie.
# Per weight dtype, about the rounding of a logit of magnitude ~20 in it (docs/check.md).
TIE_EPSILON = {"float32": 1e-3, "float16": 0.05, "bfloat16": 0.25}


def first_divergence(a: list[int], b: list[int]) -> int | None:
    """Index of the first position where two id lists differ (or one ends), None if equal."""
    for j, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return j
    return None if len(a) == len(b) else min(len(a), len(b))


def rule_lossless(group: list[Result], report: Report, cfg: dict | None = None) -> None:
    """A greedy lossless method must reproduce greedy AR's output ids. A mismatch whose first
    divergence falls where AR's float32 top-2 margin is below ``TIE_EPSILON[dtype]`` is a tie
    (warning, naming the position and the margin); any other mismatch is an error in every
    dtype, and so is one that cannot be located (no output ids or margins recorded). Imported
    answer files (per-question records): text hashes per turn (``questions.question_lossless``)."""
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
        expected: dict[str, dict] = {}
        for r in ref.measured_records:
            expected.setdefault(r["prompt_id"], r)
        shared = [r for r in res.records if r["prompt_id"] in expected]
        if not shared:
            report.not_applicable(res.path, "lossless", f"no prompt in common with {ref.path}")
            continue
        bad = [r for r in shared if r["output_sha256"] != expected[r["prompt_id"]]["output_sha256"]]
        if not bad:
            continue
        dtype = res.data["environment"].get("dtype") or ""
        epsilon = TIE_EPSILON.get(dtype, TIE_EPSILON["float32"])
        ties: list[tuple[dict, int | None, float | None]] = []
        bugs: list[tuple[dict, int | None, float | None]] = []
        for r in bad:
            a = expected[r["prompt_id"]]
            j, margin = None, None
            if a.get("output_ids") and r.get("output_ids"):
                j = first_divergence(a["output_ids"], r["output_ids"])
                margins = a.get("ar_top2_margin") or []
                margin = margins[j] if j is not None and j < len(margins) else None
            (ties if margin is not None and margin < epsilon else bugs).append((r, j, margin))
        rate = len(bad) / len(shared)
        head = (f"output ids differ from greedy AR ({ref.path}) for {len(bad)} of {len(shared)} generations "
                f"({rate:.0%})")
        if bugs:
            r, j, margin = bugs[0]
            where = (f"first at prompt {r['prompt_id']} (repeat {r['repeat']}), output position {j}, where AR's "
                     f"float32 top-2 margin is {margin:.4g}" if margin is not None else
                     f"first at prompt {r['prompt_id']} (repeat {r['repeat']}), where no output ids or AR margins "
                     f"were recorded to locate it (expected output_sha256 "
                     f"{expected[r['prompt_id']]['output_sha256'][:16]}…, found {r['output_sha256'][:16]}…)")
            report.error(res.path, "lossless", f"{head}; {len(bugs)} not at a tie, {where} (expected a margin "
                                               f"below the {dtype or 'float32'} tie epsilon {epsilon:g} for a "
                                               f"tie); a lossless method must reproduce AR")
        else:
            first = "; ".join(f"prompt {r['prompt_id']} position {j} margin {margin:.3g}" for r, j, margin in ties[:3])
            report.warning(res.path, "lossless", f"{head}, every one at a near-tie of AR's top-2 logits (margin below "
                                                 f"the {dtype or 'float32'} tie epsilon {epsilon:g}): {first}")


def _cv(res: Result) -> float | None:
    """Coefficient of variation of tokens/s across prompts (repeats averaged first; imported:
    from the summary)."""
    if res.records is not None:
        return across_prompt_cv(res.records)
    s = res.data["summary"].get("tokens_per_s") or {}
    if s.get("mean") and s.get("std") is not None and s["mean"] > 0:
        return s["std"] / s["mean"]
    return None


def _speedup(res: Result, base: Result) -> PairedStat | None:
    if res.records is None or base.records is None:
        return None
    stat = paired_speedup(res.records, base.records, res.multi_sample)
    return stat if stat.estimate is not None else None


def _precise(stat: PairedStat | None) -> bool:
    return (stat is not None and stat.estimate is not None and stat.low is not None and stat.high is not None
            and (stat.high - stat.low) / 2 <= PRECISE_HALF_WIDTH * stat.estimate)


def _describe(stat: PairedStat | None) -> str:
    if stat is None:
        return "unpaired"
    if stat.low is None:
        return f"{stat.estimate:.2f}x"
    return f"{stat.estimate:.2f}x [{stat.low:.2f}, {stat.high:.2f}]"


# A paired speedup is precise when its 95 % interval's half-width is at most this fraction of it.
PRECISE_HALF_WIDTH = 0.10


def rule_baseline_stability(all_groups: dict[tuple, list[Result]], cfg: dict | None, report: Report,
                            cv_threshold: float, relative_factor: float = 3.0, relative_floor: float = 0.05) -> None:
    """Is the baseline every speedup divides by stable enough to divide by? (docs/check.md)

    - Repeated measurements (a prompt measured twice or more): the baseline is unstable when
      its repeats disagree (pooled within-prompt CV of tokens/s above `cv_threshold`): error.
      Prompts that differ from each other while their repeats agree are the study's
      population, not noise: nothing is reported.
    - One measurement per prompt: the CV across prompts above `cv_threshold` cannot tell noise
      from prompt-to-prompt variation. When every speedup that depends on the baseline is
      paired with a 95 % interval of half-width <= ``PRECISE_HALF_WIDTH`` of its value, it is a
      warning (the ratios are stable even if the baseline's level is not); otherwise an error.
    - A baseline much noisier than the other baselines (above `relative_factor` x their median
      and above `relative_floor`): warning.

    Measured findings carry the command that re-measures the jobs (``Report.remeasure_command``)."""
    dependents: dict[str, list[Result]] = defaultdict(list)
    baselines: dict[str, Result] = {}
    for group in all_groups.values():
        for res in group:
            base = baseline_of(res, group, cfg)
            if base is not None:
                baselines[base.path] = base
                if base is not res:
                    dependents[base.path].append(res)
    # repeated: some prompt measured twice (the within-prompt CV exists only then)
    within = {path: within_prompt_cv(b.records) if b.records is not None else None for path, b in baselines.items()}
    repeated = {path: cv is not None for path, cv in within.items()}
    cvs = {path: within[path] if repeated[path] else _cv(b) for path, b in baselines.items()}
    for path, base in sorted(baselines.items()):
        report.ran(path, "baseline-stability")
        cv = cvs[path]
        if cv is None:
            report.not_applicable(path, "baseline-stability", "fewer than two tokens/s values (or no mean and std) "
                                                              "to compute a coefficient of variation")
            continue
        others = [c for p, c in cvs.items() if p != path and c is not None]
        usual = statistics.median(others) if len(others) >= 2 else None
        deps = sorted(dependents[path], key=lambda r: r.method)
        stats = {d.path: _speedup(d, base) for d in deps}
        if base.records is None:  # imported: the source's means
            base_tps = base.summary_mean("tokens_per_s")
            described = ", ".join(
                f"{d.method} ({d_tps / base_tps:.2f}x)"
                if base_tps and (d_tps := d.summary_mean("tokens_per_s")) is not None else d.method for d in deps)
        else:
            described = ", ".join(f"{d.method} ({_describe(stats[d.path])})" for d in deps)
        described = described or "none in these results"
        if base.records is not None:
            report.fixable(path, "baseline-stability")
        if repeated[path] and cv > cv_threshold:
            report.error(path, "baseline-stability",
                         f"unstable baseline: its repeats of the same prompt disagree (expected a within-prompt "
                         f"CV of tokens/s <= {cv_threshold:.2f}, found {cv:.2f}; across prompts "
                         f"{_cv(base) or 0:.2f}); the machine was not steady while it was measured. Speedups that "
                         f"depend on it: {described}")
        elif not repeated[path] and cv > cv_threshold:
            message = (f"baseline tokens/s varies across prompts (expected CV <= {cv_threshold:.2f}, found "
                       f"{cv:.2f}{f'; other baselines usually {usual:.2f}' if usual is not None else ''}); with one "
                       f"measurement per prompt noise and prompt-to-prompt variation cannot be told apart "
                       f"(protocol.repeats >= 2 can). Speedups that depend on it: {described}")
            if deps and all(_precise(stats[d.path]) for d in deps):
                report.warning(path, "baseline-stability", message + f"; every one is paired with a 95 % interval "
                                                                     f"within +-{PRECISE_HALF_WIDTH:.0%}")
            else:
                report.error(path, "baseline-stability", message)
        elif usual is not None and cv > relative_factor * usual and cv > relative_floor:
            report.warning(path, "baseline-stability",
                           f"baseline tokens/s is much noisier than the other baselines (expected CV <= "
                           f"{relative_factor:g} x {usual:.3f}, found {cv:.3f}); speedups that depend on it: "
                           f"{described}")


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
            if base is None or not tps or not base_tps:
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
