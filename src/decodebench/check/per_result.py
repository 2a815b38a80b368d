"""Rules that look at one result file alone: schema, errors, memory, arithmetic, definitions, relations,
provenance.

Measured results are checked record by record (columns as numpy arrays, one pass per rule);
imported results (``records: null``) are checked on their summary where the rule allows it,
and the rest is reported as not applicable.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import fastjsonschema
import numpy as np

from .. import memory_model
from ..latency import Latency
from ..results import result_schema, schema_errors, summarise
from ..telemetry import busy
from .report import Report

# Tolerances: stored floats are recomputed from the same doubles, so they agree to rounding.
REL_TOL = 1e-6
ABS_TOL = 1e-9
MIB_PLAUSIBLE_MAX = 2.0 ** 20  # 1 TiB in MiB: a larger "peak_memory_mib" is almost surely bytes


# Bounds the schema states that a more specific rule reports (with its own id and message).
_OWNED_BOUNDS = {"acceptance_rate": "definitions", "tokens_per_round": "definitions", "tpot_s": "definitions"}


@dataclass
class Result:
    """One result file, read once."""
    path: str
    data: dict
    _columns: dict = field(default_factory=dict)

    @property
    def records(self) -> list[dict] | None:
        return self.data.get("records")

    @property
    def measured_records(self) -> list[dict]:
        """The records of a measured result: rules ask for them once ``summary_only`` is false."""
        if self.records is None:
            raise ValueError(f"{self.path}: an imported result has no records")
        return self.records

    @property
    def imported(self) -> bool:
        return self.data.get("kind") == "imported"

    @property
    def summary_only(self) -> bool:
        """No records (imported results): rules check the summary where they can."""
        return self.records is None

    @property
    def method(self) -> str:
        return self.data["method"]["name"]

    @property
    def multi_sample(self) -> bool:
        return self.data["protocol"].get("num_samples") is not None

    def column(self, name: str) -> np.ndarray:
        """Record field as float array (NaN where null or absent)."""
        if name not in self._columns:
            self._columns[name] = np.array(
                [np.nan if r.get(name) is None else float(r[name]) for r in self.measured_records], dtype=float)
        return self._columns[name]

    def summary_mean(self, metric: str) -> float | None:
        s = self.data.get("summary", {}).get(metric)
        return None if s is None else s.get("mean")


def read_result(path: str | Path, report: Report, display: str) -> Result | None:
    """Parse and schema-validate; None (with schema findings) when the file is not usable."""
    report.ran(display, "schema")
    infinite = []  # NaN, Infinity, 1e999: accepted by Python's json, not finite numbers

    def number(literal: str) -> float:
        x = float(literal)
        if not math.isfinite(x):
            infinite.append(literal)
        return x

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=number, parse_constant=number)
    except (OSError, UnicodeDecodeError) as exc:
        report.error(display, "schema", f"cannot read the file ({exc})")
        return None
    except json.JSONDecodeError as exc:
        report.error(display, "schema", f"not valid JSON ({exc})")
        return None
    problems = ([] if not infinite and _fast_valid(data)
                else schema_errors(data, ignore=_reported_elsewhere))
    for p in problems:
        report.error(display, "schema", f"{p} (expected: valid against workflow/schemas/result.schema.json)")
    return None if problems else Result(display, data)


@lru_cache(maxsize=1)
def _fast_validator():
    """The result schema compiled by fastjsonschema (~50x faster than jsonschema on records).

    The schema uses only draft-07 keywords (with $defs references), so it is compiled as
    draft-07. It is a first pass only: when it rejects a file, jsonschema decides and words
    the errors, so its verdict is the one reported."""
    schema = {**result_schema(), "$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(schema)


def _fast_valid(data) -> bool:
    try:
        _fast_validator()(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _reported_elsewhere(error) -> bool:
    path = list(error.absolute_path)
    return bool(path) and path[-1] in _OWNED_BOUNDS and error.validator in ("minimum", "maximum")


def _bad(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)]


def _where(res: Result, idx: list[int]) -> str:
    """'records[3] (prompt 3, repeat 0)' for the first bad index, plus how many more."""
    i = idx[0]
    r = res.measured_records[i]
    more = f" and {len(idx) - 1} more record(s)" if len(idx) > 1 else ""
    return f"records[{i}] (prompt {r['prompt_index']}, repeat {r['repeat']}){more}"


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise agreement; NaN agrees only with NaN."""
    both_nan = np.isnan(a) & np.isnan(b)
    return both_nan | np.isclose(a, b, rtol=REL_TOL, atol=ABS_TOL)


# --- errors -------------------------------------------------------------------------------

def rule_errors(res: Result, report: Report) -> None:
    f, d = res.path, res.data
    report.ran(f, "errors")
    errs = d.get("errors") or []
    if errs:
        first = errs[0]
        report.error(f, "errors", f"{len(errs)} generation(s) failed and are missing from the means "
                                  f"(expected none, found e.g. prompt {first['prompt_index']}: {first['message']})")
    req, got = d["protocol"].get("prompts_requested"), d["protocol"].get("prompts_measured")
    if req is None or got is None:
        report.not_applicable(f, "errors", "protocol.prompts_requested/prompts_measured not recorded")
    elif got < req:
        report.error(f, "errors", f"protocol.prompts_measured is below prompts_requested "
                                  f"(expected {req}, found {got})")
    if res.records is not None and got is not None:
        measured = len({r["prompt_index"] for r in res.records})
        if measured != got:
            report.error(f, "errors", f"protocol.prompts_measured disagrees with the records "
                                      f"(expected {measured} distinct prompt_index, found {got})")


# --- memory -------------------------------------------------------------------------------

def rule_memory(res: Result, report: Report) -> None:
    f = res.path
    report.ran(f, "memory")
    if res.summary_only:
        _memory_summary(res, report)
        return
    peak, over, new = res.column("peak_memory_mib"), res.column("peak_memory_overhead_mib"), res.column("new_tokens")
    if idx := _bad(~(peak > 0)):
        report.error(f, "memory", f"peak_memory_mib not positive in {_where(res, idx)} "
                                  f"(expected > 0, found {peak[idx[0]]}): was the peak read after the tensors were freed?")
    if idx := _bad(peak > MIB_PLAUSIBLE_MAX):
        report.error(f, "memory", f"peak_memory_mib implausibly large in {_where(res, idx)} "
                                  f"(expected MiB, found {peak[idx[0]]}: bytes?)")
    if idx := _bad((new > 0) & ~(over > 0)):
        report.error(f, "memory", f"peak_memory_overhead_mib not positive although tokens were generated in "
                                  f"{_where(res, idx)} (expected > 0, found {over[idx[0]]}): the peak was not "
                                  f"reset before generation, or was read too late")
    if idx := _bad(over > peak):
        report.error(f, "memory", f"peak_memory_overhead_mib above peak_memory_mib in {_where(res, idx)} "
                                  f"(expected <= {peak[idx[0]]}, found {over[idx[0]]})")
    inexact = [i for i, r in enumerate(res.measured_records) if not r["memory_exact"]]
    if inexact:
        report.warning(f, "memory", f"peak memory sampled, not the kernel's high-water mark, in "
                                    f"{_where(res, inexact)} (expected memory_exact true, found false)")


def _memory_summary(res: Result, report: Report) -> None:
    """The memory rule on an imported result's summary means."""
    f = res.path
    peak, over = res.summary_mean("peak_memory_mib"), res.summary_mean("peak_memory_overhead_mib")
    if peak is None and over is None:
        report.not_applicable(f, "memory", "imported result records no peak memory")
        return
    if peak is not None and peak <= 0:
        report.error(f, "memory", f"summary.peak_memory_mib.mean is not positive (expected > 0, found {peak})")
    if over is not None and over <= 0:
        report.error(f, "memory", f"summary.peak_memory_overhead_mib.mean is not positive "
                                  f"(expected > 0, found {over})")
    if peak is not None and over is not None and over > peak:
        report.error(f, "memory", f"summary: overhead above the total peak "
                                  f"(expected <= {peak}, found {over})")



def rule_memory_model(res: Result, report: Report) -> None:
    """Each measured overhead against the analytic one (``decodebench.memory_model``): above
    FACTOR x expected + allowance is an error (memory nobody accounts for, e.g. logits of every
    prompt position); below LOW x the KV cache the method must hold is a warning (a missed peak)."""
    f = res.path
    if res.summary_only or res.multi_sample:
        report.not_applicable(f, "memory-model", "no per-generation records" if res.summary_only
                              else "multi-sample methods are not modelled (their paths vary)")
        return
    if not res.data["protocol"].get("warmups"):
        report.not_applicable(f, "memory-model", "no warm-up: the first generation of a process also holds "
                                                 "one-time allocations (lazy imports, kernel caches)")
        return
    env = res.data["environment"]
    kind, cpus = env.get("memory_kind"), env.get("cpu_count") or 1
    high, low = [], []
    for i, r in enumerate(res.measured_records):
        expected = memory_model.expected_overhead(res.data, r)
        if expected is None:
            report.not_applicable(f, "memory-model", "the result records no model shape (models.*.shape)")
            return
        lo, hi = memory_model.bounds_mib(expected, kind, cpus)
        over = r["peak_memory_overhead_mib"]
        if over > hi:
            high.append((i, over, hi, expected))
        elif over < lo:
            low.append((i, over, lo, expected))
    report.ran(f, "memory-model")
    if high:
        i, over, hi, expected = high[0]
        report.error(f, "memory-model", f"memory overhead far above the analytic model in "
                                        f"{_where(res, [h[0] for h in high])} (expected <= {hi:.1f} MiB = "
                                        f"{memory_model.FACTOR:g} x {expected.total_mib:.1f} MiB [{expected.describe()}] "
                                        f"+ allowance, found {over:.1f} MiB): something holds memory the method "
                                        f"does not need (e.g. logits of every prompt position)")
    if low:
        i, over, lo, expected = low[0]
        report.warning(f, "memory-model", f"memory overhead below the KV cache the generation must hold in "
                                          f"{_where(res, [x[0] for x in low])} (expected >= {lo:.1f} MiB, "
                                          f"found {over:.1f} MiB): was the peak missed?")


def rule_contention(res: Result, report: Report) -> None:
    """Measurements made while other processes used the machine (``telemetry.busy``): a
    warning naming them, fixable by measuring again."""
    f = res.path
    if res.summary_only:
        report.not_applicable(f, "contention", "imported result records no telemetry")
        return
    recorded = [r for r in res.measured_records if r.get("telemetry")]
    if not recorded:
        report.not_applicable(f, "contention", "no telemetry recorded (a result written before it existed)")
        return
    report.ran(f, "contention")
    busy_ones = [(i, why) for i, r in enumerate(res.measured_records) if (why := busy(r.get("telemetry"))) is not None]
    if busy_ones:
        i, why = busy_ones[0]
        report.warning(f, "contention", f"{len(busy_ones)} of {len(res.measured_records)} measurements ran on a busy "
                                        f"machine: {_where(res, [b[0] for b in busy_ones])}; first: {why} "
                                        f"(expected other processes below the limits)")
        report.fixable(f, "contention")


# --- arithmetic ---------------------------------------------------------------------------

def rule_arithmetic(res: Result, report: Report) -> None:
    f, d = res.path, res.data
    report.ran(f, "arithmetic")
    if res.summary_only and d.get("questions"):
        return  # per-question records: questions.question_arithmetic (check_paths calls it)
    if res.summary_only:
        report.not_applicable(f, "arithmetic", "no records (imported result) to recompute "
                                               "tokens/s and the summary from")
        return
    new, wall = res.column("new_tokens"), res.column("wall_time_s")
    tps = res.column("tokens_per_s")
    if idx := _bad(~_close(tps, new / wall)):
        i = idx[0]
        report.error(f, "arithmetic", f"tokens_per_s is not new_tokens / wall_time_s in {_where(res, idx)} "
                                      f"(expected {new[i] / wall[i]:.6g}, found {tps[i]:.6g})")
    _check_latency(res, report, new, wall)
    forwards, tpf = res.column("target_forwards"), res.column("tokens_per_target_forward")
    has = ~np.isnan(tpf)
    expected_tpf = np.where(has & (forwards > 0), new / np.where(forwards > 0, forwards, 1), np.inf)
    if idx := _bad(has & ~_close(tpf, expected_tpf)):
        i = idx[0]
        report.error(f, "arithmetic", f"tokens_per_target_forward is not new_tokens / target_forwards in "
                                      f"{_where(res, idx)} (expected {expected_tpf[i]:.6g}, found {tpf[i]:.6g})")
    acc, prop, rate = (res.column("draft_tokens_accepted"), res.column("draft_tokens_proposed"),
                       res.column("acceptance_rate"))
    has = ~np.isnan(acc) & ~np.isnan(prop) & (prop > 0)
    expected_rate = np.where(has, acc / np.where(has, prop, 1), rate)
    if idx := _bad(~_close(rate, expected_rate)):
        i = idx[0]
        report.error(f, "arithmetic", f"acceptance_rate is not draft_tokens_accepted / draft_tokens_proposed "
                                      f"in {_where(res, idx)} (expected {expected_rate[i]:.6g}, found {rate[i]:.6g})")
    rounds, tpr = res.column("rounds"), res.column("tokens_per_round")
    has = ~np.isnan(acc) & ~np.isnan(rounds) & (rounds > 0)
    expected_tpr = np.where(has, acc / np.where(has, rounds, 1) + 1, tpr)
    if idx := _bad(~_close(tpr, expected_tpr)):
        i = idx[0]
        report.error(f, "arithmetic", f"tokens_per_round is not draft_tokens_accepted / rounds + 1 in "
                                      f"{_where(res, idx)} (expected {expected_tpr[i]:.6g}, found {tpr[i]:.6g})")
    _check_budget(res, report, new)
    _check_summary(res, report)


LATENCY_FIELDS = ("ttft_s", "tokens_at_first_commit", "tpot_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s")


def _check_latency(res: Result, report: Report, new: np.ndarray, wall: np.ndarray) -> None:
    """TTFT/TPOT recomputed from the commit log where the record has one (the harness's
    definition, measurement.Latency); otherwise the older (wall - ttft) / (new - 1)."""
    f = res.path
    logged = [i for i, r in enumerate(res.measured_records) if r.get("commit_times_s") is not None]
    bad_sum: list[int] = []
    bad_field: dict[str, list[tuple[int, float | None, float | None]]] = {}
    for i in logged:
        r = res.measured_records[i]
        times, tokens = r["commit_times_s"], r.get("commit_tokens") or []
        # Multi-sample: commits count the tokens sampled (a prefix shared by several samples once,
        # pruned children included) while new_tokens counts every sample's tokens; no equality.
        if len(times) != len(tokens) or (not res.multi_sample and sum(tokens) != r["new_tokens"]):
            bad_sum.append(i)
            continue
        lat = Latency.from_commits(times, tokens)
        for name in LATENCY_FIELDS:
            a, b = getattr(lat, name), r.get(name)
            same = (a is None and b is None) or (a is not None and b is not None and
                                                 math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL))
            if not same:
                bad_field.setdefault(name, []).append((i, a, b))
    if bad_sum:
        r = res.measured_records[bad_sum[0]]
        report.error(f, "arithmetic", f"commit_tokens do not add up to new_tokens (one count per commit time) "
                                      f"in {_where(res, bad_sum)} (expected {r['new_tokens']} over "
                                      f"{len(r['commit_times_s'])} commits, found {sum(r.get('commit_tokens') or [])} "
                                      f"over {len(r.get('commit_tokens') or [])})")
    for name, bad in bad_field.items():
        i, a, b = bad[0]
        report.error(f, "arithmetic", f"{name} is not what the commit log gives (measurement.Latency) in "
                                      f"{_where(res, [j for j, _, _ in bad])} (expected {a}, found {b})")
    old = np.array([r.get("commit_times_s") is None for r in res.measured_records], dtype=bool)
    ttft, tpot = res.column("ttft_s"), res.column("tpot_s")
    expected_tpot = np.where((new > 1) & ~np.isnan(ttft), (wall - ttft) / np.maximum(new - 1, 1), np.nan)
    if idx := _bad(old & ~_close(tpot, expected_tpot)):
        i = idx[0]
        report.error(f, "arithmetic", f"tpot_s is not (wall_time_s - ttft_s) / (new_tokens - 1) in "
                                      f"{_where(res, idx)} (expected {expected_tpot[i]:.6g}, found {tpot[i]:.6g}; "
                                      f"records without a commit log use this definition)")


def _check_budget(res: Result, report: Report, new: np.ndarray) -> None:
    p = res.data["protocol"]
    budget = p.get("max_new_tokens")
    if budget is None:
        report.not_applicable(res.path, "arithmetic", "protocol.max_new_tokens not recorded: budget not checked")
        return
    if res.multi_sample:
        cap = p["num_samples"] * budget
        if idx := _bad(new > cap):
            report.error(res.path, "arithmetic", f"new_tokens above num_samples x max_new_tokens in "
                                                 f"{_where(res, idx)} (expected <= {cap}, found {int(new[idx[0]])})")
    elif p.get("stop_at_eos") is False:
        if idx := _bad(new != budget):
            report.error(res.path, "arithmetic", f"new_tokens differs from the budget with EOS disabled in "
                                                 f"{_where(res, idx)} (expected {budget}, found {int(new[idx[0]])})")
    elif idx := _bad(new > budget):
        report.error(res.path, "arithmetic", f"new_tokens above the budget in {_where(res, idx)} "
                                             f"(expected <= {budget}, found {int(new[idx[0]])})")


def _check_summary(res: Result, report: Report) -> None:
    stored, expected = res.data["summary"], summarise(res.measured_records)
    for metric in sorted(set(stored) | set(expected)):
        if metric not in expected:
            report.error(res.path, "arithmetic", f"summary.{metric}: no record has this metric "
                                                 f"(expected no entry, found {stored[metric]})")
            continue
        if metric not in stored:
            report.error(res.path, "arithmetic", f"summary.{metric} missing "
                                                 f"(expected {expected[metric]}, found nothing)")
            continue
        for key in ("n", "mean", "std"):
            a, b = expected[metric][key], stored[metric].get(key)
            same = (a is None and b is None) or (a is not None and b is not None and
                                                 math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL))
            if not same:
                what = "sample std (ddof=1)" if key == "std" else key
                report.error(res.path, "arithmetic", f"summary.{metric}.{key} is not the {what} of the "
                                                     f"records (expected {a}, found {b})")


# --- definitions --------------------------------------------------------------------------

def rule_definitions(res: Result, report: Report) -> None:
    f = res.path
    report.ran(f, "definitions")
    if res.summary_only:
        _definitions_summary(res, report)
        return
    rate = res.column("acceptance_rate")
    if idx := _bad((rate < 0) | (rate > 1)):
        report.error(f, "definitions", f"acceptance_rate outside [0, 1] in {_where(res, idx)} (expected "
                                       f"accepted / proposed draft tokens, found {rate[idx[0]]})")
    tpr = res.column("tokens_per_round")
    if idx := _bad(tpr < 1):
        report.error(f, "definitions", f"tokens_per_round below 1 in {_where(res, idx)} (expected >= 1: the "
                                       f"target's own token counts, found {tpr[idx[0]]})")
    ttft, wall = res.column("ttft_s"), res.column("wall_time_s")
    if idx := _bad(ttft > wall):
        report.error(f, "definitions", f"ttft_s above wall_time_s in {_where(res, idx)} (expected <= "
                                       f"{wall[idx[0]]}, found {ttft[idx[0]]}): TTFT measured outside the timed "
                                       f"generation?")
    tpot = res.column("tpot_s")
    if idx := _bad(tpot < 0):
        report.error(f, "definitions", f"tpot_s negative in {_where(res, idx)} (expected >= 0, found "
                                       f"{tpot[idx[0]]})")
    new = res.column("new_tokens")
    _check_commit_log(res, report)
    _check_forwards(res, report, new)
    if idx := _bad((new > 0) & np.isnan(ttft)):
        report.warning(f, "definitions", f"ttft_s not recorded although tokens were generated in "
                                         f"{_where(res, idx)} (expected a time, found null)")

def _definitions_summary(res: Result, report: Report) -> None:
    """The definitions rule on an imported result's summary means."""
    f = res.path
    rate, tpr = res.summary_mean("acceptance_rate"), res.summary_mean("tokens_per_round")
    ttft, wall = res.summary_mean("ttft_s"), res.summary_mean("wall_time_s")
    if rate is not None and not 0 <= rate <= 1:
        report.error(f, "definitions", f"summary.acceptance_rate.mean outside [0, 1] (expected a fraction "
                                       f"of proposed draft tokens, found {rate})")
    if tpr is not None and tpr < 1:
        report.error(f, "definitions", f"summary.tokens_per_round.mean below 1 (expected >= 1: the target's "
                                       f"own token counts, found {tpr})")
    if ttft is not None and wall is not None and ttft > wall:
        report.error(f, "definitions", f"summary.ttft_s.mean above summary.wall_time_s.mean (expected "
                                       f"<= {wall}, found {ttft}): measured outside the timed generation?")
    if rate is None and tpr is None and (ttft is None or wall is None):
        report.not_applicable(f, "definitions", "imported result records none of acceptance rate, "
                                                "tokens per round, TTFT with wall time")



def _check_commit_log(res: Result, report: Report) -> None:
    """Commit times lie inside the timed region and do not go backwards."""
    bad = []
    for i, r in enumerate(res.measured_records):
        times = r.get("commit_times_s")
        if times is None:
            continue
        slack = ABS_TOL + REL_TOL * r["wall_time_s"]
        if any(b < a for a, b in zip(times, times[1:])) or (times and (times[0] < 0 or
                                                                      times[-1] > r["wall_time_s"] + slack)):
            bad.append(i)
    if bad:
        r = res.measured_records[bad[0]]
        report.error(res.path, "definitions", f"commit_times_s not increasing within [0, wall_time_s] in "
                                              f"{_where(res, bad)} (expected times in [0, {r['wall_time_s']:.6g}] "
                                              f"in order, found {r['commit_times_s'][:4]}...)")


def _check_forwards(res: Result, report: Report, new: np.ndarray) -> None:
    """Greedy single-sample decoding commits at least one token per target forward; AR exactly one
    (one prefill forward, then one forward per further token)."""
    forwards, tpf = res.column("target_forwards"), res.column("tokens_per_target_forward")
    if idx := _bad(tpf < 1 - REL_TOL):
        report.error(res.path, "definitions", f"tokens_per_target_forward below 1 in {_where(res, idx)} "
                                              f"(expected >= 1: every target forward commits a token, found "
                                              f"{tpf[idx[0]]:.6g})")
    if res.data["method"].get("id") == "ar" and not res.multi_sample:
        if idx := _bad(~np.isnan(forwards) & (forwards != new)):
            report.error(res.path, "definitions", f"AR made a target forward count different from its new tokens in "
                                                  f"{_where(res, idx)} (expected {int(new[idx[0]])}, found "
                                                  f"{int(forwards[idx[0]])})")


# --- relations: a record's fields against each other, as the schema defines them ------------

PER_ROUND = ("accepted_per_round", "proposed_per_round", "draft_time_per_round_s", "verify_time_per_round_s",
             "verify_tokens_per_round", "draft_forwards_per_round", "draft_tokens_fed_per_round")
# per-round list -> the record's total it is a part of ("==": the total is the sum, every token
# belongs to a round; "<=": phases or forwards outside every round count in the total only)
ROUND_TOTALS = {"accepted_per_round": ("draft_tokens_accepted", "=="),
                "proposed_per_round": ("draft_tokens_proposed", "=="),
                "draft_time_per_round_s": ("draft_time_s", "<="),
                "verify_time_per_round_s": ("verify_time_s", "<="),
                "draft_forwards_per_round": ("draft_forwards", "<=")}
PHASES = ("prefill_time_s", "draft_time_s", "verify_time_s")
# phases are timed inside the timed generation (perf_counter, or CUDA events): slack for
# two clocks read around the same region
PHASE_SLACK_S, PHASE_SLACK_REL = 1e-3, 0.01


def rule_relations(res: Result, report: Report) -> None:
    """Relations between a record's own fields, from the schema's definitions: one entry per
    round in every per-round list (``rounds`` of them); the per-round lists add up to their
    totals (accepted and proposed exactly; phase times and draft forwards at most, a phase or
    a forward may fall outside every round); no round accepts more than it proposed; the
    phases (prefill, draft, verify) fit in the wall time; every round is a target forward
    (``rounds <= target_forwards``)."""
    f = res.path
    if res.records is None:
        report.not_applicable(f, "relations", "no records (imported result)")
        return
    report.ran(f, "relations")
    problems: dict[str, list[tuple[int, str]]] = {}

    def bad(kind: str, i: int, detail: str) -> None:
        problems.setdefault(kind, []).append((i, detail))

    for i, r in enumerate(res.records):
        rounds = r.get("rounds")
        for name in PER_ROUND:
            values = r.get(name)
            if values is None:
                continue
            if rounds is not None and len(values) != rounds:
                bad(f"{name} has one entry per round", i, f"expected {rounds} entries (rounds), found {len(values)}")
            total_name, relation = ROUND_TOTALS.get(name, (None, None))
            total = r.get(total_name) if total_name else None
            if total is None:
                continue
            part = sum(values)
            slack = ABS_TOL + REL_TOL * abs(total) + (1e-9 * len(values) if isinstance(part, float) else 0)
            if (relation == "==" and abs(part - total) > slack) or (relation == "<=" and part > total + slack):
                bad(f"sum of {name} {'equals' if relation == '==' else 'is at most'} {total_name}", i,
                    f"expected {'' if relation == '==' else '<= '}{total:.6g}, found {part:.6g}")
        acc, prop = r.get("accepted_per_round"), r.get("proposed_per_round")
        if acc is not None and prop is not None:
            over = [j for j, (a, p) in enumerate(zip(acc, prop)) if a > p]
            if over:
                j = over[0]
                bad("no round accepts more draft tokens than it proposed", i,
                    f"round {j}: expected accepted <= {prop[j]}, found {acc[j]}")
        phases = {p: r[p] for p in PHASES if r.get(p) is not None}
        wall = r["wall_time_s"]
        if phases and sum(phases.values()) > wall * (1 + PHASE_SLACK_REL) + PHASE_SLACK_S:
            bad("the phases fit in the wall time", i, f"expected {' + '.join(phases)} <= wall_time_s {wall:.6g}, "
                                                      f"found {sum(phases.values()):.6g}")
        forwards = r.get("target_forwards")
        if rounds is not None and forwards is not None and rounds > forwards:
            bad("every round is a target forward", i, f"expected rounds <= target_forwards {forwards}, "
                                                      f"found {rounds}")
    for kind, where in problems.items():
        idx = [i for i, _ in where]
        report.error(f, "relations", f"{kind}: not so in {_where(res, idx)} ({where[0][1]})")


# --- provenance ---------------------------------------------------------------------------

ENV_FIELDS = ("device", "device_name", "dtype", "python", "torch", "transformers")


def rule_provenance(res: Result, report: Report) -> None:
    f, d = res.path, res.data
    env, prov = d["environment"], d["provenance"]
    report.ran(f, "provenance")
    missing = [f"environment.{k}" for k in ENV_FIELDS if env.get(k) in (None, "")]
    if env.get("device") == "cuda" and not env.get("cuda"):
        missing.append("environment.cuda")
    if res.imported:
        if not prov.get("source_file") or not prov.get("source_sha256"):
            report.error(f, "provenance", f"imported result without its source (expected provenance.source_file "
                                          f"and source_sha256, found {prov.get('source_file')!r}, "
                                          f"{prov.get('source_sha256')!r})")
        absent = missing + [f"provenance.{k}" for k in ("git_commit",) if not prov.get(k)]
        if absent:
            report.not_applicable(f, "provenance", f"imported result does not record {', '.join(absent)}")
        return
    if missing:
        report.error(f, "provenance", f"not recorded: {', '.join(missing)} (expected values, found null)")
    if not prov.get("git_commit"):
        report.error(f, "provenance", "provenance.git_commit not recorded (expected the commit that measured, "
                                      "found null)")
    elif prov.get("git_dirty") is None:
        report.warning(f, "provenance", "provenance.git_dirty unknown (expected true/false, found null)")
    elif prov["git_dirty"]:
        report.warning(f, "provenance", f"measured from a dirty working tree at {prov['git_commit'][:12]} "
                                        f"(expected a clean tree, found uncommitted changes)")
    sched = prov.get("scheduler") or {}
    if sched.get("oversubscribe") not in (None, "NO"):
        report.warning(f, "provenance", f"measured in SLURM job {sched.get('job_id')} on {sched.get('node')}, "
                                        f"which could share its node with other jobs (expected OverSubscribe=NO, "
                                        f"sbatch --exclusive; found {sched['oversubscribe']})")
    for key in ("code_version", "job_sha256"):
        if not prov.get(key):
            report.warning(f, "provenance", f"provenance.{key} not recorded (expected a hash, found null): "
                                            f"staleness cannot be judged")
    if not d["models"]["target"].get("weights_sha256") and not d["models"]["target"].get("revision"):
        report.error(f, "provenance", "models.target has neither weights_sha256 nor revision "
                                      "(expected an identity of the weights, found none)")
