"""What one forward costs, by width: the number behind every speculative speedup on this machine.

    PYTHONPATH=src python benchmarks/forward_cost.py --resources /path/to/resources
    PYTHONPATH=src python benchmarks/forward_cost.py --widths 1 2 5 9 --dtypes float32 bfloat16 --threads 1 2

For the embedded default's target (and its draft, when prepared), after a prefill of
``--context`` tokens (several values: one row each, for the cost against context length), time one forward over n new tokens (the verification of n - 1 drafts)
for every width n, dtype and thread count: the minimum and median of ``--repeats`` timed
forwards after two warm-ups, the cache cropped back before each. Printed relative to the
1-token forward of the same dtype and threads (a verification costs ~1 step where that ratio
stays near 1), with the CPU kernel in use (torch's CPU capability, oneDNN/MKL availability,
the BLAS torch was built with). ``--json`` keeps every timing.

Nothing else should run meanwhile: the figures are only as good as the machine is quiet (the
script records the load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from decodebench.config import load_config
from decodebench.kvcache import KVCache, crop_to
from decodebench.measurement import synchronize
from decodebench.models import load_model
from decodebench.prompts import select_prompts

ROOT = Path(__file__).resolve().parents[1]


def kernel_info() -> dict:
    import re

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=([^,\s]+)", config)
    blas = blas.group(1) if blas else None
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": torch.backends.mkldnn.is_available(), "mkl": torch.backends.mkl.is_available(),
            "blas": blas, "onednn_isa": torch.backends.mkldnn.is_available() and _onednn_isa(), "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def _onednn_isa() -> str | None:
    """The instruction set oneDNN dispatches to (ONEDNN_VERBOSE's report), where it says."""
    try:
        return str(torch._C._get_mkldnn_isa()) if hasattr(torch._C, "_get_mkldnn_isa") else None
    except RuntimeError:
        return None


@torch.inference_mode()
@torch.inference_mode()
def time_widths(model, prompt: list[int], widths: list[int], repeats: int) -> dict[int, dict]:
    """Seconds of one forward of n tokens after `prompt`, for each n in `widths` (on the model's
    device; CUDA: synchronised before and after each timed forward). `prompt` has >= max(widths) ids."""
    device = model.device
    ids = torch.tensor([prompt], dtype=torch.long, device=device)
    cache = KVCache(ids.shape[1] + max(widths))  # the methods' cache: a forward writes in place
    model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    context = ids.shape[1]
    out = {}
    for n in widths:
        new = ids[:, :n]  # any n tokens: the cost does not depend on them
        times = []
        for i in range(repeats + 2):
            crop_to(cache, context)
            synchronize(device)
            start = time.perf_counter()
            model(input_ids=new, past_key_values=cache, use_cache=True, logits_to_keep=n)
            synchronize(device)
            if i >= 2:
                times.append(time.perf_counter() - start)
        crop_to(cache, context)
        out[n] = {"min_s": min(times), "median_s": statistics.median(times)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    p.add_argument("--resources", help="resources_dir with the prepared models (default: the config's)")
    p.add_argument("--widths", type=int, nargs="+", default=[1, 2, 3, 4, 5, 9, 16])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--context", type=int, nargs="+", default=[128],
                   help="prompt tokens before the timed forward; several: one table row each")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--json")
    args = p.parse_args()

    cfg = load_config(args.config)
    resources = args.resources or cfg.get("resources_dir", "resources")
    dataset = next(iter(cfg["datasets"].values()))
    load_before = os.getloadavg()[0]
    rows = []
    for dtype in args.dtypes:
        models = {"target": load_model(cfg["models"]["target"], "cpu", dtype, resources)}
        if "draft" in cfg["models"] and (Path(resources) / "models" / cfg["models"]["draft"]["name"]).exists():
            models["draft"] = load_model(cfg["models"]["draft"], "cpu", dtype, resources)
        tokenizer = models["target"].tokenizer
        for context in args.context:
            spec = {**dataset, "num_prompts": 1, "prompt_tokens": context, "min_tokens": context,
                    "seed": cfg.get("seed", 0), "chat_template": False}
            prompt = select_prompts(spec, tokenizer)[0]["input_ids"]
            for threads in args.threads:
                torch.set_num_threads(threads)
                for role, loaded in models.items():
                    timings = time_widths(loaded.model, prompt, args.widths, args.repeats)
                    one = timings[min(timings)]["min_s"]
                    for n, t in timings.items():
                        rows.append({"model": role, "dtype": dtype, "threads": threads, "width": n,
                                     "context": len(prompt), **t, "relative_to_1": t["min_s"] / one})
        del models
    info = {**kernel_info(), "load_1m_before": load_before, "load_1m_after": os.getloadavg()[0],
            "command": "benchmarks/forward_cost.py " + " ".join(os.sys.argv[1:])}
    print(json.dumps(info))
    print("| model | dtype | threads | context | " + " | ".join(f"n={n}" for n in args.widths) + " |")
    print("|---|---|---:|---:|" + "---:|" * len(args.widths))
    for key in sorted({(r["model"], r["dtype"], r["threads"], r["context"]) for r in rows}):
        cells = {r["width"]: r for r in rows if (r["model"], r["dtype"], r["threads"], r["context"]) == key}
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | "
              + " | ".join(f"{cells[n]['min_s'] * 1e3:.1f} ms ({cells[n]['relative_to_1']:.2f}x)" for n in args.widths)
              + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": info, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
