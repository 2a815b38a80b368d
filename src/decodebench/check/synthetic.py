"""Synthetic result files that pass every rule: the base of `check`'s broken-fixture corpus
and of its speed benchmark (benchmarks/check_speed.py).

Numbers are made, not measured: deterministic (seeded) tokens/s around a given mean, and
every derived field computed the way the harness computes it, so a fixture differs from a
valid result only by the mutation under test.
"""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path

from ..provenance import code_version
from ..results import SCHEMA_VERSION, ids_sha256, summarise

ENVIRONMENT = {"device": "cpu", "device_name": "Synthetic CPU", "threads": 2, "dtype": "float32",
               "memory_kind": "process_rss", "python": "3.11.7", "torch": "2.13.0+cpu",
               "transformers": "5.23.0", "decodebench": "0.1.0", "platform": "Linux-synthetic", "cuda": None}
TARGET = {"name": "synthetic-target", "source": "gguf:synthetic/target.gguf", "revision": None,
          "weights_sha256": "1" * 64, "num_parameters": 1000, "dtype": "float32", "architecture": "LlamaForCausalLM",
          "card": None}
DRAFT = {**TARGET, "name": "synthetic-draft", "source": "gguf:synthetic/draft.gguf", "weights_sha256": "2" * 64}
SPECULATIVE_IDS = {"linear", "tree", "dynatree", "hf_assisted", "pld"}


def output_ids(prompt_index: int, n: int) -> list[int]:
    """The 'greedy' output of prompt `prompt_index`: identical for AR and lossless methods."""
    return [(prompt_index * 7919 + 31 * t) % 49152 for t in range(n)]


def make_record(i: int, new_tokens: int, tps: float, loader: str, method_id: str, k: int = 4) -> dict:
    wall = new_tokens / tps
    ttft = wall * 0.08
    rec = {
        "prompt_index": i, "prompt_id": f"{loader}:doc{i}.txt:{100 * i}", "repeat": 0,
        "prompt_tokens": 128, "new_tokens": new_tokens, "wall_time_s": wall, "tokens_per_s": new_tokens / wall,
        "ttft_s": ttft, "tpot_s": (wall - ttft) / (new_tokens - 1) if new_tokens > 1 else None,
        "peak_memory_mib": 1300.0 + i, "peak_memory_overhead_mib": 12.5 + 0.25 * i, "baseline_memory_mib": 1287.5 - 0.75 * i,
        "peak_reserved_mib": None, "memory_exact": True,
        "output_sha256": ids_sha256(output_ids(i, new_tokens)),
        "output_ids": output_ids(i, new_tokens),
        # greedy AR: the float32 top-2 margin at each output position (clear choices)
        "ar_top2_margin": [2.0] * new_tokens if method_id == "ar" else None,
    }
    if method_id in SPECULATIVE_IDS:
        rounds = math.ceil(new_tokens / 3)
        accepted, proposed = new_tokens - rounds, k * rounds
        per_round = [accepted // rounds + (j < accepted % rounds) for j in range(rounds)]
        rec.update(rounds=rounds, draft_tokens_proposed=proposed, draft_tokens_accepted=accepted,
                   acceptance_rate=accepted / proposed, tokens_per_round=accepted / rounds + 1,
                   draft_time_s=wall * 0.3, verify_time_s=wall * 0.6,
                   accepted_per_round=per_round, proposed_per_round=[k] * rounds,
                   draft_time_per_round_s=[wall * 0.3 / rounds] * rounds,
                   verify_time_per_round_s=[wall * 0.6 / rounds] * rounds)
    return rec


def make_result(method: str = "ar", method_id: str | None = None, *, study: str = "synthetic",
                experiment: str = "main", dataset: str = "gutenberg", loader: str = "gutenberg",
                num_prompts: int = 8, max_new_tokens: int = 32, tokens_per_s: float = 20.0, cv: float = 0.02,
                seed: int = 0, dtype: str = "float32") -> dict:
    """A valid measured result; tokens/s per prompt ~ tokens_per_s x (1 + cv x N(0, 1))."""
    method_id = method_id or method.split("_")[0]
    rng = random.Random(f"{study}/{experiment}/{dataset}/{method}/{seed}")
    speculative = method_id in SPECULATIVE_IDS
    records = [make_record(i, max_new_tokens, tokens_per_s * max(0.05, 1 + cv * rng.gauss(0, 1)), loader, method_id)
               for i in range(num_prompts)]
    kind = {"gutenberg": "embedded", "wikitext": "hub", "pg19": "hub", "jsonl": "local"}[loader]
    label = {"gutenberg": "Gutenberg (embedded)", "wikitext": "WikiText-2", "pg19": "PG-19",
             "jsonl": "local JSONL"}[loader]
    return {
        "schema_version": SCHEMA_VERSION, "kind": "measured", "study": study, "experiment": experiment,
        "dataset": {"name": dataset, "loader": loader, "source_kind": kind, "label": label, "prompt_file": None,
                    "prompt_sha256": "3" * 64, "num_prompts": num_prompts, "prompt_tokens": 128,
                    "selection": {"num_prompts": num_prompts, "prompt_tokens": 128, "min_tokens": 128, "seed": 0,
                                  "chat_template": False}},
        "method": {"name": method, "id": method_id, "params": {"k": 4} if speculative else {},
                   "lossless": True, "greedy": True, "label": None, "source_name": None},
        "protocol": {"max_new_tokens": max_new_tokens, "stop_at_eos": False, "warmups": 1, "repeats": 1, "seed": 0,
                     "num_samples": None, "prompts_requested": num_prompts, "prompts_measured": num_prompts,
                     "overrides": {}},
        "models": {"target": {**TARGET, "dtype": dtype}, "draft": {**DRAFT, "dtype": dtype} if speculative else None},
        "environment": {**ENVIRONMENT, "dtype": dtype},
        "provenance": {"git_commit": "0" * 40, "git_dirty": False, "config_file": "config/synthetic.yaml",
                       "config_sha256": "4" * 64, "job_sha256": "5" * 64, "job": None, "code_version": code_version(),
                       "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
                       "command": "synthetic", "source_file": None, "source_sha256": None, "source_record": None,
                       "notes": "synthetic result (decodebench.check.synthetic)"},
        "records": records,
        "errors": [],
        "summary": summarise(records),
    }


def resummarise(result: dict) -> dict:
    """Recompute what derives from the records (summary), after a mutation of the records."""
    result["summary"] = summarise(result["records"])
    return result


def mutate(result: dict, fn, summary: bool = True) -> dict:
    """A copy of `result` changed by fn(copy); the summary is recomputed unless summary=False."""
    out = copy.deepcopy(result)
    fn(out)
    return resummarise(out) if summary and out["records"] is not None else out


def result_path(root: Path, result: dict) -> Path:
    return (Path(root) / "results" / "raw" / result["study"] / result["experiment"] / result["dataset"]["name"]
            / f"{result['method']['name']}.json")


def write_results(root: Path, results: list[dict]) -> list[Path]:
    """Write results under root/results/raw/<study>/<experiment>/<dataset>/<method>.json."""
    paths = []
    for r in results:
        p = result_path(root, r)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(r, indent=1) + "\n")
        paths.append(p)
    return paths
