"""One benchmark job: load models and prompts, warm up, measure every prompt, write the result.

    run_job(cfg, "main", "gutenberg", "ar", out="results/raw/embedded/main/gutenberg/ar.json")

Warmups run the method on the first prompt and are not measured. Each measured generation
is bracketed by the tracker (timing and true peak memory). A prompt whose generation raises
is recorded in ``errors`` and the others go on; a job where every prompt failed writes
nothing and raises.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from . import provenance
from .config import Job, resolve_job
from .measurement import Tracker
from .methods import Budget, GenContext, get_method
from .models import load_model, load_tokenizer
from .prompts import LABELS, SOURCE_KIND, prompt_file, read_prompt_set, select_prompts, write_prompt_set
from .results import SCHEMA_VERSION, ids_sha256, summarise, write_result


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


def _record(index: int, repeat: int, prompt: dict, output, m) -> dict:
    new = output.num_new_tokens
    ttft = m.ttft_s
    record = {
        "prompt_index": index, "prompt_id": prompt["id"], "repeat": repeat,
        "prompt_tokens": len(prompt["input_ids"]), "new_tokens": new,
        "wall_time_s": m.wall_time_s, "tokens_per_s": new / m.wall_time_s,
        "ttft_s": ttft,
        "tpot_s": (m.wall_time_s - ttft) / (new - 1) if ttft is not None and new > 1 else None,
        "peak_memory_mb": m.peak_memory_mb, "peak_memory_overhead_mb": m.peak_memory_overhead_mb,
        "baseline_memory_mb": m.baseline_memory_mb, "peak_reserved_mb": m.peak_reserved_mb,
        "memory_exact": m.memory_exact,
        "output_sha256": ids_sha256(output.new_ids if output.samples is None
                                    else [t for s in output.samples for t in s]),
    }
    record.update(output.stats)
    return record


def run_job(cfg: dict, experiment: str, dataset: str, method: str, out: str | Path,
            limit: int | None = None, max_new_tokens: int | None = None,
            prompts_path: str | Path | None = None, progress: bool = True) -> dict:
    job = resolve_job(cfg, experiment, dataset, method, limit=limit, max_new_tokens=max_new_tokens)
    spec = get_method(job.method_id)
    started = provenance.now()
    commit, dirty = provenance.git_state()
    if job.threads:
        torch.set_num_threads(job.threads)
    if job.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{cfg.get('_file')}: device is cuda but torch sees no CUDA device")

    target = load_model(job.models["target"], job.device, job.dtype, job.resources_dir)
    draft = (load_model(job.models["draft"], job.device, job.dtype, job.resources_dir)
             if spec.needs_draft else None)
    ppath = ensure_prompts(job, target.tokenizer, Path(prompts_path) if prompts_path else None)
    prompts, meta = read_prompt_set(ppath)
    requested = len(prompts) if limit is None else min(limit, len(prompts))
    prompts = prompts[:requested]

    eos = target.tokenizer.eos_token_id
    eos_ids = frozenset([eos] if isinstance(eos, int) else (eos or [])) if job.protocol["stop_at_eos"] else None
    budget = Budget(max_new_tokens=job.protocol["max_new_tokens"], eos_token_ids=eos_ids)
    params = spec.make_params(job.params)
    tracker = Tracker(job.device)
    generate = spec.generate

    def one(prompt: dict, seed: int):
        ids = torch.tensor([prompt["input_ids"]], dtype=torch.long, device=job.device)
        set_seed(seed)
        with tracker.measure() as m:
            ctx = GenContext(target=target.model, draft=draft.model if draft else None, prompt_ids=ids,
                             budget=budget, params=params, clock=m, seed=seed,
                             num_samples=job.protocol["num_samples"], temperature=job.protocol["temperature"])
            output = generate(ctx)
        if ctx.phase_time_s:
            output.stats.setdefault("draft_time_s", ctx.phase_time_s.get("draft"))
            output.stats.setdefault("verify_time_s", ctx.phase_time_s.get("verify"))
        return output, m

    records, errors = [], []
    total = job.protocol["warmups"] + requested * job.protocol["repeats"]
    label = f"{job.experiment}/{job.dataset}/{job.method_name}"
    with tqdm(total=total, desc=label, unit="gen", file=sys.stderr, disable=not progress) as bar:
        for w in range(job.protocol["warmups"]):
            one(prompts[w % len(prompts)], job.seed)
            bar.update()
        for index, prompt in enumerate(prompts):
            for repeat in range(job.protocol["repeats"]):
                try:
                    output, m = one(prompt, job.seed + index)
                    records.append(_record(index, repeat, prompt, output, m))
                except Exception as exc:  # recorded, never dropped
                    errors.append({"prompt_index": index, "repeat": repeat,
                                   "message": f"{type(exc).__name__}: {exc}"})
                bar.update()
    if not records:
        raise RuntimeError(f"{label}: every prompt failed; first error: {errors[0]['message']}")

    spec_dataset = job.dataset_spec
    result = {
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
            "max_new_tokens": budget.max_new_tokens, "stop_at_eos": job.protocol["stop_at_eos"],
            "warmups": job.protocol["warmups"], "repeats": job.protocol["repeats"], "seed": job.seed,
            "num_samples": job.protocol["num_samples"] if spec.multi_sample else None,
            "prompts_requested": requested, "prompts_measured": len({r["prompt_index"] for r in records}),
            "overrides": job.overrides,
        },
        "models": {"target": target.identity, "draft": draft.identity if draft else None},
        "environment": provenance.environment(job.device, job.dtype, tracker.memory_kind),
        "provenance": {
            "git_commit": commit, "git_dirty": dirty, "config_file": cfg.get("_file"),
            "config_sha256": cfg.get("_sha256"), "job_sha256": job.sha256, "job": job.identity(),
            "code_version": provenance.code_version(), "started_at": started,
            "finished_at": provenance.now(), "command": provenance.command_line(),
            "source_file": None, "source_sha256": None, "source_record": None, "notes": None,
        },
        "records": records,
        "errors": errors,
        "summary": summarise(records),
    }
    write_result(out, result)
    return result
