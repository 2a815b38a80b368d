"""Multi-sample benchmark: naive vs naive_batched vs EAB (original and cow) vs prompt length.

    PYTHONPATH=src python benchmarks/multisample.py                       # N=20, 64..512 tokens
    PYTHONPATH=src python benchmarks/multisample.py --prompt-lengths 64 --num-samples 4 --max-new-tokens 8

For each prompt length, one Gutenberg prompt (the embedded corpus, same selection as the
pipeline's) is run by every method with the same seed, each measured by the pipeline's
tracker (wall time; true peak memory overhead over the pre-generation baseline). Printed per
method: wall time, token-steps, KV bytes held at peak (structural), peak memory overhead, and
relative to naive: time speedup (naive time / method time) and memory ratio (naive peak
overhead / method peak overhead; > 1: the method needs less). One warmup generation per
method runs first (unmeasured). Timings are only as good as the machine is quiet.
"""

from __future__ import annotations

import argparse
import platform

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from decodebench.harness import set_seed
from decodebench.measurement import MB, Tracker
from decodebench.methods import Budget, GenContext, get_method
from decodebench.prompts import select_prompts

DEFAULT_MODEL = "/work/main/resources/models/smollm2-135m-instruct"
METHODS = ["naive", "naive_batched", "eab_original", "eab_cow"]


def measure(method: str, model, ids: torch.Tensor, args, tracker: Tracker) -> dict:
    spec = get_method(method)
    params = spec.make_params({"entropy_threshold": args.entropy_threshold, "branch_factor": args.branch_factor}
                              if method.startswith("eab") else {})
    budget = Budget(args.max_new_tokens, None)  # EOS disabled: every sample has max_new_tokens
    set_seed(args.seed)
    with tracker.measure() as m:
        ctx = GenContext(target=model, draft=None, prompt_ids=ids, budget=budget, params=params, clock=m,
                         seed=args.seed, num_samples=args.num_samples, temperature=args.temperature)
        out = spec.generate(ctx)
    return {"wall_time_s": m.wall_time_s, "overhead_mb": m.peak_memory_overhead_mb, "exact": m.memory_exact,
            "token_steps": out.stats["token_steps"], "kv_mb": out.stats["extra"]["kv_computed_peak_bytes"] / MB,
            "branch_points": out.stats["branch_points"], "final_paths": out.stats["final_paths"],
            "new_tokens": out.num_new_tokens}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=DEFAULT_MODEL, help="local model directory (default: the embedded SmolLM2)")
    p.add_argument("--num-samples", type=int, default=20)
    p.add_argument("--prompt-lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--entropy-threshold", type=float, default=0.25)
    p.add_argument("--branch-factor", type=int, default=3)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if "naive" not in args.methods:
        p.error("--methods must include naive (the baseline of the ratios)")

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    tracker = Tracker("cpu")
    print(f"# {args.model} | N={args.num_samples} | max_new_tokens={args.max_new_tokens} | "
          f"entropy_threshold={args.entropy_threshold} branch_factor={args.branch_factor} | "
          f"{platform.processor() or platform.machine()}, torch threads={torch.get_num_threads()} | "
          f"memory: {tracker.memory_kind}{'' if tracker.memory_exact else ' (sampled, inexact)'}")
    print(f"{'prompt':>6} {'method':<14} {'wall_s':>8} {'speedup':>8} {'tok_steps':>9} {'branches':>8} "
          f"{'paths':>5} {'kv_mb':>8} {'overhead_mb':>11} {'mem_ratio':>9}")
    warm = set()
    for length in args.prompt_lengths:
        spec = {"loader": "gutenberg", "num_prompts": 1, "prompt_tokens": length, "seed": args.seed}
        ids = torch.tensor([select_prompts(spec, tokenizer)[0]["input_ids"]])
        rows = {}
        for method in args.methods:
            if method not in warm:
                measure(method, model, ids, args, tracker)
                warm.add(method)
            rows[method] = measure(method, model, ids, args, tracker)
        base = rows["naive"]
        for method, r in rows.items():
            ratio = base["overhead_mb"] / r["overhead_mb"] if r["overhead_mb"] > 0 else float("nan")
            print(f"{length:>6} {method:<14} {r['wall_time_s']:>8.2f} {base['wall_time_s'] / r['wall_time_s']:>8.2f} "
                  f"{r['token_steps']:>9} {r['branch_points']:>8} {r['final_paths']:>5} {r['kv_mb']:>8.1f} "
                  f"{r['overhead_mb']:>11.1f} {ratio:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
