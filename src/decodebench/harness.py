"""Benchmark jobs: load models and prompts once, warm up, measure, write one result per method.

    run_group(cfg, "main", "gutenberg", ["ar", "linear"], {"ar": "…/ar.json", "linear": "…/linear.json"})
    run_job(cfg, "main", "gutenberg", "ar", out="…/ar.json")          # a group of one

Protocol (docs/pipeline.md, "Measurement protocol"):

- A job is a group of method configurations of one (experiment, dataset). With
  ``protocol.pairing: interleaved`` (the default) the group is every configuration of the
  experiment, measured in ONE process: the models are loaded once, every configuration runs
  its warmups (unmeasured), then the measurements are interleaved in blocks: for each repeat
  r, for each prompt i, every configuration once, in the order of the configuration list
  rotated by (i + r) (a cyclic Latin square: over M consecutive blocks each configuration
  takes each position once). So a method and its baseline on the same prompt and repeat are
  measured seconds apart, under the same machine state, and their ratio is a paired
  measurement. ``pairing: per_method`` makes one job per configuration (clusters that give
  each job its own GPU); the protocol is the same within the job.
- Each measurement starts from a clean baseline (garbage collected, freed heap returned,
  peak reset: ``measurement.Tracker``); nothing of one generation is referenced once its
  record is built, so it cannot be resident during the next one's timed region.
- A prompt's generation that raises is recorded in ``errors`` and the others go on; a
  configuration whose every generation failed writes nothing and the job raises.
- ``check.remeasure: N`` (default 0): blocks with a busy measurement (``telemetry.busy``) are
  measured again, at most N times each; superseded records are kept in the result's
  ``remeasured`` list with the reason, never dropped.
- After measuring (outside every timed region), greedy AR's records get the float32 top-2
  margin of the target's logits at every output position, from one teacher-forced forward:
  ``check``'s ``lossless`` rule uses it to tell a near-tie from a bug.
- Multi-sample records get the quality of their samples (``decodebench.quality``), computed
  after the timed region. With ``protocol.reference_samples: R`` (> 0), each prompt also gets a
  reference sample after measuring, outside every timed region: R independent samples
  (shared-prefill independent sampling, whose samples are naive's, in one batch) with the
  generation's seed and sample indices from ``REFERENCE_FIRST_SAMPLE`` on, so they are never
  the measured samples; its mean NLL per token is the reference of the records'
  ``nll_per_token_error``. It is computed once per (prompt, budget, temperature, R).
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from . import provenance, telemetry
from .config import CHECK_DEFAULTS, ConfigError, config_label, config_path, config_sha256
from .jobs import Job, resolve_job
from .measurement import Tracker, Unmeasured
from .methods import Budget, GenContext, MethodSpec, counting_forwards, get_method
from .methods.oracle import greedy_reference, uses_oracle
from .models import load_model, load_tokenizer
from .multisample import sample_rows
from .prompts import LABELS, SOURCE_KIND, prompt_file, read_prompt_set, select_prompts, write_prompt_set
from .quality import nll_per_token, reference_error, sample_quality
from .results import SCHEMA_VERSION, ids_sha256, summarise, write_result

PAIRINGS = ("interleaved", "per_method")
REFERENCE_FIRST_SAMPLE = 2 ** 20  # sample index of a quality reference's first sample
# Fields every job of one group must share: they are loaded or set once per process.
_SHARED = ("study", "experiment", "dataset", "dataset_spec", "device", "dtype", "threads", "seed",
           "resources_dir")


def ensure_prompts(job: Job, tokenizer=None, path: Path | None = None) -> Path:
    """The job's prompt file, made if it does not exist yet."""
    path = Path(path) if path else prompt_file(job.resources_dir, job.study, job.dataset)
    if not path.exists():
        tokenizer = tokenizer or load_tokenizer(job.models["target"], job.resources_dir)
        prompts = select_prompts(job.dataset_spec, tokenizer)
        write_prompt_set(path, prompts, job.dataset_spec, job.models["target"]["name"])
    return path


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def block_order(methods: list[str], prompt_index: int, repeat: int) -> list[str]:
    """The measurement order of one block: the configuration list rotated by (i + r)."""
    shift = (prompt_index + repeat) % len(methods)
    return methods[shift:] + methods[:shift]


@dataclass
class Member:
    """One method configuration of a group: its job, method and budget."""
    job: Job
    spec: MethodSpec
    params: object
    budget: Budget
    out: Path


def _record(index: int, repeat: int, prompt: dict, output, m, ctx: GenContext, spec: MethodSpec) -> dict:
    new = output.num_new_tokens
    lat = m.latency()
    counts = ctx.forward_counts
    record = {
        "prompt_index": index, "prompt_id": prompt["id"], "repeat": repeat,
        "prompt_tokens": len(prompt["input_ids"]), "new_tokens": new,
        "wall_time_s": m.wall_time_s, "tokens_per_s": new / m.wall_time_s,
        "ttft_s": lat.ttft_s, "tokens_at_first_commit": lat.tokens_at_first_commit,
        "tpot_s": lat.tpot_s, "tpot_p50_s": lat.tpot_p50_s, "tpot_p90_s": lat.tpot_p90_s,
        "tpot_p99_s": lat.tpot_p99_s,
        "commit_times_s": m.commit_times_s, "commit_tokens": m.commit_tokens,
        "target_forwards": counts["target"].forwards,
        "draft_forwards": counts["draft"].forwards if "draft" in counts else None,
        "tokens_per_target_forward": (new / counts["target"].forwards
                                      if spec.greedy and not spec.multi_sample and counts["target"].forwards
                                      else None),
        "peak_memory_mib": m.peak_memory_mib, "peak_memory_overhead_mib": m.peak_memory_overhead_mib,
        "baseline_memory_mib": m.baseline_memory_mib, "peak_reserved_mib": m.peak_reserved_mib,
        "baseline_rss_anon_mib": m.baseline_rss_anon_mib, "baseline_rss_file_mib": m.baseline_rss_file_mib,
        "memory_exact": m.memory_exact,
        "output_sha256": ids_sha256(output.new_ids if output.samples is None
                                    else [t for s in output.samples for t in s]),
        "output_ids": list(output.new_ids) if spec.greedy and output.samples is None else None,
        "sample_sha256": None if output.samples is None else [ids_sha256(sample) for sample in output.samples],
        "telemetry": m.telemetry,
    }
    record.update(output.stats)
    record.update(ctx.phase_times())
    if spec.multi_sample:
        record.update(sample_quality(output.samples, output.stats["extra"]["sample_logprob"]))
    return record


@torch.inference_mode()
def reference_nll(model, prompt_ids: list[int], budget: Budget, temperature: float, seed: int,
                  samples: int, device: str) -> float | None:
    """Mean NLL per token of `samples` independent samples of one prompt (the quality reference)."""
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    ctx = GenContext(target=model, draft=None, prompt_ids=ids, budget=budget, params=None, clock=Unmeasured(),
                     seed=seed, num_samples=samples, temperature=temperature)
    drawn = sample_rows(ctx, samples, prefill_rows=1, store="shared_prefix", first=REFERENCE_FIRST_SAMPLE)
    return nll_per_token(drawn.tokens, drawn.logprobs)


@torch.inference_mode()
def top2_margins(model, prompt_ids: list[int], output_ids: list[int], device: str) -> list[float]:
    """Float32 top-1 minus top-2 logit of `model` at each output position (teacher-forced).

    Position j is the choice of output token j after prompt + output[:j]. One forward over
    prompt + output[:-1], logits for the last len(output) positions only."""
    if not output_ids:
        return []
    ids = torch.tensor([prompt_ids + output_ids[:-1]], dtype=torch.long, device=device)
    logits = model(input_ids=ids, logits_to_keep=len(output_ids)).logits[0].float()  # [new, vocab]
    top = logits.topk(2, dim=-1).values
    return [float(f"{v:.6g}") for v in (top[:, 0] - top[:, 1]).tolist()]


def _check_group(jobs: list[Job], where: str) -> None:
    first = jobs[0]
    for job in jobs[1:]:
        for name in _SHARED:
            if getattr(job, name) != getattr(first, name):
                raise ConfigError(f"{where}: configurations {first.method_name!r} and {job.method_name!r} are "
                                  f"measured in one job but differ in {name}")
        for name in ("warmups", "repeats"):
            if job.protocol[name] != first.protocol[name]:
                raise ConfigError(f"{where}: paired measurement needs one protocol.{name} for the whole "
                                  f"experiment; {first.method_name!r} has {first.protocol[name]}, "
                                  f"{job.method_name!r} has {job.protocol[name]}")
        if job.models["target"] != first.models["target"]:
            raise ConfigError(f"{where}: configurations of one job must share models.target")


def _check_writable(paths: list[Path]) -> None:
    """Refuse before measuring when a result could not be written afterwards."""
    for path in paths:
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not _can_write(parent):
            raise OSError(f"{path}: cannot write the result here ({parent} is not a writable directory); "
                          f"nothing was measured")


def _can_write(directory: Path) -> bool:
    import os

    return os.access(directory, os.W_OK | os.X_OK)


def run_job(cfg: dict, experiment: str, dataset: str, method: str, out: str | Path,
            limit: int | None = None, max_new_tokens: int | None = None,
            prompts_path: str | Path | None = None, progress: bool = True) -> dict:
    """One method configuration alone (a group of one); returns its result."""
    return run_group(cfg, experiment, dataset, [method], {method: out}, limit=limit,
                     max_new_tokens=max_new_tokens, prompts_path=prompts_path, progress=progress)[method]


def run_group(cfg: dict, experiment: str, dataset: str, methods: list[str], outs: dict[str, str | Path],
              limit: int | None = None, max_new_tokens: int | None = None,
              prompts_path: str | Path | None = None, progress: bool = True) -> dict[str, dict]:
    """Measure `methods` of (experiment, dataset) interleaved in one process (see the module
    docstring); write one result per method to outs[method]; return {method: result}."""
    where = config_label(cfg)
    if len(set(methods)) != len(methods) or set(methods) != set(outs):
        raise ValueError(f"{where}: run_group needs distinct methods, one output each (got {methods}, {sorted(outs)})")
    jobs = [resolve_job(cfg, experiment, dataset, m, limit=limit, max_new_tokens=max_new_tokens) for m in methods]
    _check_group(jobs, where)
    _check_writable([Path(outs[m]) for m in methods])
    first = jobs[0]
    started = provenance.now()
    commit, dirty = provenance.git_state()
    if first.threads:
        torch.set_num_threads(first.threads)
    if first.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{where}: device is cuda but torch sees no CUDA device")

    specs = [get_method(j.method_id) for j in jobs]
    target = load_model(first.models["target"], first.device, first.dtype, first.resources_dir)
    draft_spec = next((j.models["draft"] for j, s in zip(jobs, specs) if s.needs_draft), None)
    draft = load_model(draft_spec, first.device, first.dtype, first.resources_dir) if draft_spec else None
    ppath = ensure_prompts(first, target.tokenizer, Path(prompts_path) if prompts_path else None)
    prompts, meta = read_prompt_set(ppath)
    requested = len(prompts) if limit is None else min(limit, len(prompts))
    prompts = prompts[:requested]

    eos = target.tokenizer.eos_token_id
    eos_all = frozenset([eos] if isinstance(eos, int) else (eos or []))
    members = {}
    for job, spec in zip(jobs, specs):
        budget = Budget(max_new_tokens=job.protocol["max_new_tokens"],
                        eos_token_ids=eos_all if job.protocol["stop_at_eos"] else None)
        members[job.method_name] = Member(job, spec, spec.make_params(job.params), budget, Path(outs[job.method_name]))
    tracker = Tracker(first.device, first.threads)
    remeasure = int((cfg.get("check") or {}).get("remeasure", CHECK_DEFAULTS["remeasure"]))
    pairing = "interleaved" if len(methods) > 1 else "per_method"
    t0 = time.perf_counter()

    references: dict[tuple, list[int]] = {}  # (prompt id, budget) -> greedy AR's ids, for oracle_alpha

    def one(member: Member, prompt: dict, seed: int):
        ids = torch.tensor([prompt["input_ids"]], dtype=torch.long, device=first.device)
        oracle_ids = None
        if uses_oracle(member.params):  # outside the timed region
            key = (prompt["id"], member.budget.max_new_tokens, member.budget.eos_token_ids)
            if key not in references:
                references[key] = greedy_reference(target.model, ids, member.budget)
            oracle_ids = references[key]
        set_seed(seed)
        ctx = GenContext(target=target.model, draft=draft.model if draft is not None and member.spec.needs_draft else None,
                         prompt_ids=ids, budget=member.budget, params=member.params, clock=Unmeasured(), seed=seed,
                         num_samples=member.job.protocol["num_samples"],
                         temperature=member.job.protocol["temperature"], oracle_ids=oracle_ids)
        with tracker.measure() as m:
            ctx.clock = m
            with counting_forwards(ctx):
                output = member.spec.generate(ctx)
        return output, m, ctx

    records: dict[str, dict[tuple[int, int], dict]] = {m: {} for m in methods}  # method -> {(prompt, repeat): record}
    superseded: dict[str, list[dict]] = {m: [] for m in methods}
    errors: dict[str, list[dict]] = {m: [] for m in methods}
    previous_reason: dict[tuple[int, int], str] = {}  # why a block is being measured again

    def measure_block(index: int, repeat: int, attempt: int) -> list[str]:
        """Every configuration once on prompt `index`; returns why the block was busy (if it was)."""
        reasons = []
        for position, name in enumerate(block_order(methods, index, repeat)):
            member = members[name]
            try:
                output, m, ctx = one(member, prompts[index], first.seed + index)
                record = _record(index, repeat, prompts[index], output, m, ctx, member.spec)
                del output, ctx
            except Exception as exc:  # recorded, never dropped
                errors[name].append({"prompt_index": index, "repeat": repeat,
                                     "message": f"{type(exc).__name__}: {exc}"})
                continue
            record.update(block=index + repeat * len(prompts), order_position=position, attempt=attempt,
                          measured_at_s=time.perf_counter() - t0)
            if (why := telemetry.busy(record["telemetry"])) is not None:
                reasons.append(f"{name}: {why}")
            previous = records[name].get((index, repeat))
            if previous is not None:
                superseded[name].append({**previous, "superseded_reason": previous_reason[(index, repeat)]})
            records[name][(index, repeat)] = record
            bar.update()
        return reasons

    warmups = first.protocol["warmups"]
    repeats = first.protocol["repeats"]
    label = f"{first.experiment}/{first.dataset}/" + ("+".join(methods) if len(methods) <= 3 else f"{len(methods)} methods")
    with tqdm(total=len(methods) * (warmups + requested * repeats), desc=label, unit="gen", file=sys.stderr,
              disable=not progress) as bar:
        for name in methods:
            for w in range(warmups):
                one(members[name], prompts[w % len(prompts)], first.seed)
                bar.update()
        for repeat in range(repeats):
            for index in range(requested):
                reasons = measure_block(index, repeat, 0)
                attempt = 0
                while reasons and attempt < remeasure:
                    attempt += 1
                    previous_reason[(index, repeat)] = "busy machine: " + "; ".join(reasons)
                    bar.total += len(methods)
                    reasons = measure_block(index, repeat, attempt)

    margins = _ar_margins(members, records, prompts, target.model, first.device)
    _add_quality_reference(members, records, superseded, prompts, target.model, first.device, first.seed)
    results = {}
    for name in methods:
        member = members[name]
        recs = [records[name][k] for k in sorted(records[name])]
        if not recs:
            raise RuntimeError(f"{label}: every prompt of {name} failed; first error: {errors[name][0]['message']}")
        for r in recs:
            r["ar_top2_margin"] = margins.get(r["prompt_index"]) if member.spec.id == "ar" else None
        results[name] = _result(cfg, member, target, draft if member.spec.needs_draft else None, ppath, meta,
                                requested, recs, superseded[name], errors[name], pairing, methods, tracker,
                                commit, dirty, started)
    for name in methods:
        write_result(members[name].out, results[name])
    return results


def _ar_margins(members: dict, records: dict, prompts: list[dict], model, device: str) -> dict[int, list[float]]:
    """Top-2 margins along greedy AR's output, once per prompt (AR's output is deterministic)."""
    out = {}
    for name, member in members.items():
        if member.spec.id != "ar":
            continue
        for (index, _), r in sorted(records[name].items()):
            if index not in out and r["output_ids"]:
                out[index] = top2_margins(model, prompts[index]["input_ids"], r["output_ids"], device)
    return out


def _add_quality_reference(members: dict, records: dict, superseded: dict, prompts: list[dict], model,
                           device: str, seed: int) -> None:
    """Each multi-sample record's reference fields (see the module docstring); a member without
    ``protocol.reference_samples`` gets nulls."""
    cache: dict[tuple, float | None] = {}
    for name, member in members.items():
        if not member.spec.multi_sample:
            continue
        count = int(member.job.protocol.get("reference_samples") or 0)
        temperature = member.job.protocol["temperature"]
        for r in list(records[name].values()) + superseded[name]:
            index = r["prompt_index"]
            key = (index, member.budget.max_new_tokens, member.budget.eos_token_ids, temperature, count)
            if count and key not in cache:
                cache[key] = reference_nll(model, prompts[index]["input_ids"], member.budget, temperature,
                                           seed + index, count, device)
            r.update(reference_error(r, cache.get(key)))


def _result(cfg, member: Member, target, draft, ppath, meta, requested, records, superseded, errors,
            pairing, group, tracker, commit, dirty, started) -> dict:
    job, spec = member.job, member.spec
    spec_dataset = job.dataset_spec
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "measured",
        "study": job.study,
        "experiment": job.experiment,
        "dataset": {
            "name": job.dataset, "loader": spec_dataset["loader"],
            "source_kind": SOURCE_KIND[spec_dataset["loader"]],
            "label": spec_dataset.get("label", LABELS[spec_dataset["loader"]]),
            "prompt_file": str(ppath), "prompt_sha256": meta["sha256"],
            "num_prompts": requested, "prompt_tokens": spec_dataset["prompt_tokens"],
            "selection": meta.get("selection"),
        },
        "method": {"name": job.method_name, "id": job.method_id, "params": job.params,
                   "lossless": spec.lossless, "greedy": spec.greedy, "label": job.label, "source_name": None},
        "protocol": {
            "max_new_tokens": member.budget.max_new_tokens, "stop_at_eos": job.protocol["stop_at_eos"],
            "warmups": job.protocol["warmups"], "repeats": job.protocol["repeats"], "seed": job.seed,
            "num_samples": job.protocol["num_samples"] if spec.multi_sample else None,
            "temperature": job.protocol["temperature"] if spec.multi_sample else None,
            "reference_samples": (int(job.protocol.get("reference_samples") or 0) or None) if spec.multi_sample
            else None,
            "prompts_requested": requested, "prompts_measured": len({r["prompt_index"] for r in records}),
            "overrides": job.overrides, "pairing": pairing, "group": list(group),
        },
        "models": {"target": target.identity, "draft": draft.identity if draft else None},
        "environment": provenance.environment(job.device, job.dtype, tracker.memory_kind),
        "provenance": {
            "git_commit": commit, "git_dirty": dirty, "config_file": config_path(cfg),
            "config_sha256": config_sha256(cfg), "job_sha256": job.sha256, "job": job.identity(),
            "code_version": provenance.code_version(), "started_at": started,
            "finished_at": provenance.now(), "command": provenance.command_line(),
            "source_file": None, "source_sha256": None, "source_record": None, "notes": None,
            "scheduler": provenance.scheduler(),
        },
        "records": records,
        "remeasured": superseded,
        "errors": errors,
        "summary": summarise(records),
    }
