"""Synthetic, schema-valid result files for testing aggregation and rendering without models.

Numbers are chosen by the tests (per prompt), so the expected aggregates are known exactly.
"""

from __future__ import annotations

from pathlib import Path

from decodebench.layout import result_path
from decodebench.results import summarise, write_result

SHA = "0" * 64
MULTI = {"naive", "naive_batched", "shared_prefill", "eab_deepcopy", "eab_shared_prefix", "eab_original", "eab_cow"}


def record(i: int, tokens_per_s: float, peak: float, overhead: float, new_tokens: int = 10,
           repeat: int = 0, **extra) -> dict:
    wall = new_tokens / tokens_per_s
    return {"prompt_index": i, "prompt_id": f"p{i}", "repeat": repeat, "prompt_tokens": 16,
            "new_tokens": new_tokens, "wall_time_s": wall, "tokens_per_s": tokens_per_s,
            "ttft_s": wall / new_tokens, "tpot_s": wall / new_tokens, "peak_memory_mib": peak,
            "peak_memory_overhead_mib": overhead, "memory_exact": True, "output_sha256": SHA, **extra}


def result(study: str, experiment: str, dataset: str, method: str, method_id: str, records: list[dict],
           params: dict | None = None, label: str | None = None, dataset_label: str | None = None,
           prompt_tokens: int = 16, max_new_tokens: int = 10, imported: bool = False, num_samples: int = 4,
           temperature: float = 1.0) -> dict:
    multi = method_id in MULTI
    return {
        "schema_version": "2.0", "kind": "imported" if imported else "measured", "study": study,
        "experiment": experiment,
        "dataset": {"name": dataset, "loader": "jsonl", "source_kind": "local",
                    "label": dataset_label or dataset.title(), "prompt_file": None, "prompt_sha256": SHA,
                    "num_prompts": len({r["prompt_index"] for r in records}), "prompt_tokens": prompt_tokens,
                    "selection": None},
        "method": {"name": method, "id": method_id, "params": params or {}, "lossless": not multi,
                   "greedy": not multi, "label": label, "source_name": None},
        "protocol": {"max_new_tokens": max_new_tokens, "stop_at_eos": False, "warmups": 1, "repeats": 1,
                     "seed": 0, "num_samples": num_samples if multi else None,
                     "temperature": temperature if multi else None,
                     "prompts_requested": len({r["prompt_index"] for r in records}),
                     "prompts_measured": len({r["prompt_index"] for r in records}), "overrides": {}},
        "models": {"target": {"name": "tiny", "source": "local:/x", "num_parameters": 1000},
                   "draft": None},
        "environment": {"device": "cpu", "device_name": "Test CPU", "threads": 1, "dtype": "float32",
                        "memory_kind": "process_rss", "python": "3.11", "torch": "2.13", "transformers": "5.23",
                        "decodebench": "0.1.0", "platform": "linux", "cuda": None},
        "provenance": {"git_commit": "abc", "git_dirty": False, "config_file": None, "config_sha256": None,
                       "job_sha256": None, "started_at": None, "finished_at": None},
        "records": None if imported else records,
        "errors": [],
        "summary": summarise(records),
    }


def write(root: Path, data: dict) -> Path:
    path = Path(root) / result_path(data["study"], data["experiment"], data["dataset"]["name"],
                                    data["method"]["name"])
    write_result(path, data)
    return path
