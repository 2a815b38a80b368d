"""Speculative decoding benchmark: every greedy method on the same prompts, in one run.

    python benchmarks/speculative.py                               # the embedded config
    python benchmarks/speculative.py --config config/config.yaml --dataset gutenberg \\
        --limit 4 --max-new-tokens 64 --k 4 --draft PATH --json bench.json

What it does:

1. Runs ``ar`` and every registered greedy single-sample method (``methods.all_methods()``, so
   methods merged later join by themselves) through the harness (``run_job``: warmups, tracker,
   result files) on one prompt file, with ``k`` drafts per round for linear/hf_assisted; the
   others with their defaults. Methods needing a draft are skipped, with the reason, when no
   draft is configured; a method that fails is reported, not dropped.
2. Measures per-forward costs at the first prompt's context length, median of repeats:
   target over n tokens c_t(n) (n = 1 and every verify width the methods used), draft over
   1 token c_d(1).
3. Reports per method: tokens/s (mean over prompts), speedup = tokens/s / AR's tokens/s,
   whether the output ids equal AR's (lossless methods), acceptance, tokens per round, and
   the loop overhead: realised speedup / predicted speedup, where for each generation

       predicted speedup = new_tokens * c_t(1) / sum over rounds (d_r * c_d(1) + c_t(p_r + 1))

   with p_r the drafts proposed in round r and d_r the draft forwards it took (p_r for
   linear and hf_assisted, 0 for pld, whose lookup needs no model; for tree and dynatree p_r
   is the tree's node count and d_r its depth, one batched draft forward per level, each
   costed as c_d(1): a level's forward over several nodes costs at least that, so the
   prediction is optimistic for trees and their ratio conservative). With a constant K this is
   the textbook (accepted + 1) * c_t(1) / (K c_d(1) + c_t(K + 1)). Realised speedup includes
   the prefill (for AR and the method alike) and the predicted does not, which lowers the
   ratio a little for short generations. A method without an entry in DRAFT_FORWARDS shows
   no prediction.

Result files go to --out-dir (default: a fresh temporary directory, printed), the prompt file
next to them (nothing is written into resources/). --draft PATH uses a local model directory
as the draft instead of the config's (e.g. the target's own directory, for a smoke test).
Timings are only meaningful on an otherwise idle machine: on a shared machine, report none.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from decodebench.config import load_config  # noqa: E402
from decodebench.harness import run_job  # noqa: E402
from decodebench.kvcache import crop_to  # noqa: E402
from decodebench.measurement import synchronize  # noqa: E402
from decodebench.methods import all_methods  # noqa: E402
from decodebench.models import load_model  # noqa: E402
from decodebench.prompts import read_prompt_set  # noqa: E402

EXPERIMENT = "speculative_bench"
# Draft-model forwards in a round that proposed p tokens, per method id (the cost model).
# method id -> draft forwards per round, from a result record (None: not recorded).
DRAFT_FORWARDS = {
    "linear": lambda rec: rec.get("proposed_per_round"),
    "hf_assisted": lambda rec: rec.get("proposed_per_round"),
    "pld": lambda rec: [0] * len(rec.get("proposed_per_round") or []),
    "tree": lambda rec: (rec.get("extra") or {}).get("tree_depth_per_round"),
    "dynatree": lambda rec: (rec.get("extra") or {}).get("tree_depth_per_round"),
}


def bench_config(args) -> tuple[dict, str, dict[str, str]]:
    """The study config with one experiment holding every runnable greedy method."""
    cfg = load_config(args.config)
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    if args.resources_dir:
        cfg["resources_dir"] = str(Path(args.resources_dir).resolve())
    if args.draft:
        cfg["models"]["draft"] = {"name": Path(args.draft).resolve().name, "path": str(Path(args.draft).resolve())}
    dataset = args.dataset or next(iter(cfg["datasets"]))
    if dataset not in cfg["datasets"]:
        raise SystemExit(f"{args.config}: no dataset '{dataset}' (defined: {', '.join(cfg['datasets'])})")
    k_params = {"linear": {"k": args.k}, "hf_assisted": {"num_assistant_tokens": args.k}}
    methods, skipped = {"ar": {"method": "ar"}}, {}
    for mid, spec in sorted(all_methods().items()):
        if mid == "ar" or not spec.greedy or spec.multi_sample:
            continue
        if args.methods and mid not in args.methods:
            continue
        if spec.needs_draft and "draft" not in cfg["models"]:
            skipped[mid] = "needs a draft: set models.draft in the config or pass --draft PATH"
            continue
        methods[mid] = {"method": mid, "params": k_params.get(mid, {})}
    cfg["experiments"] = {EXPERIMENT: {"description": "benchmarks/speculative.py", "baseline": "ar",
                                       "datasets": [dataset], "methods": methods}}
    return cfg, dataset, skipped


def _timed_forward(model, ids, cache, prefix_len, repeats):
    """Median seconds of one forward over `ids` [1, n] after a cache of prefix_len positions."""
    times = []
    for i in range(repeats + 2):  # two warmups
        crop_to(cache, prefix_len)
        synchronize(ids.device)
        start = time.perf_counter()
        model(input_ids=ids, past_key_values=cache, use_cache=True)
        synchronize(ids.device)
        if i >= 2:
            times.append(time.perf_counter() - start)
    crop_to(cache, prefix_len)
    return statistics.median(times)


@torch.inference_mode()
def forward_costs(cfg: dict, prompt_ids: list[int], widths: set[int], repeats: int) -> dict:
    """c_t(n) for n in widths, c_d(1); at the prompt's context length."""
    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    resources = cfg.get("resources_dir", "resources")
    ids = torch.tensor([prompt_ids], device=cfg["device"])  # [1, prompt_len]
    costs = {"context_tokens": ids.shape[1], "target_s": {}, "draft_1_s": None}
    target = load_model(cfg["models"]["target"], cfg["device"], cfg["dtype"], resources).model
    cache = target(input_ids=ids, use_cache=True).past_key_values
    for n in sorted(widths):
        costs["target_s"][n] = _timed_forward(target, ids[:, -n:], cache, ids.shape[1], repeats)
    del target, cache
    if "draft" in cfg["models"]:
        draft = load_model(cfg["models"]["draft"], cfg["device"], cfg["dtype"], resources).model
        cache = draft(input_ids=ids, use_cache=True).past_key_values
        costs["draft_1_s"] = _timed_forward(draft, ids[:, -1:], cache, ids.shape[1], repeats)
    return costs


def predicted_speedup(method_id: str, record: dict, costs: dict) -> float | None:
    draft_forwards = DRAFT_FORWARDS[method_id](record) if method_id in DRAFT_FORWARDS else None
    proposed = record.get("proposed_per_round")
    if draft_forwards is None or proposed is None or len(draft_forwards) != len(proposed):
        return None
    c_t, c_d = costs["target_s"], costs["draft_1_s"] or 0.0
    spec_time = sum(d * c_d + c_t[p + 1] for d, p in zip(draft_forwards, proposed))
    return record["new_tokens"] * c_t[1] / spec_time


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summarise_method(name: str, data: dict, ar: dict, costs: dict) -> dict:
    tps = mean(r["tokens_per_s"] for r in data["records"])
    ar_tps = mean(r["tokens_per_s"] for r in ar["records"])
    ar_hash = {(r["prompt_index"], r["repeat"]): r["output_sha256"] for r in ar["records"]}
    same = all(ar_hash.get((r["prompt_index"], r["repeat"])) == r["output_sha256"] for r in data["records"])
    realised = [r["tokens_per_s"] / ar_tps for r in data["records"]]
    predicted = [predicted_speedup(data["method"]["id"], r, costs) for r in data["records"]]
    ratio = [a / p for a, p in zip(realised, predicted) if p]
    return {"method": name, "params": data["method"]["params"], "tokens_per_s": tps, "speedup": tps / ar_tps,
            "ids_equal_ar": same, "lossless_claimed": data["method"]["lossless"],
            "acceptance_rate": mean(r.get("acceptance_rate") for r in data["records"]),
            "tokens_per_round": mean(r.get("tokens_per_round") for r in data["records"]),
            "predicted_speedup": mean(predicted), "realised_over_predicted": mean(ratio) if ratio else None,
            "errors": len(data["errors"])}


def fmt(value, spec=".2f"):
    return "-" if value is None else format(value, spec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    p.add_argument("--dataset", help="a dataset of the config (default: its first)")
    p.add_argument("--limit", type=int, help="first N prompts only")
    p.add_argument("--max-new-tokens", type=int, help="token budget (default: the config's)")
    p.add_argument("--k", type=int, default=4, help="drafts per round for linear and hf_assisted (default 4)")
    p.add_argument("--draft", help="local model directory to use as the draft (default: the config's models.draft)")
    p.add_argument("--resources-dir", help="override the config's resources_dir (where models are materialised)")
    p.add_argument("--methods", nargs="+", help="only these method ids (ar always runs)")
    p.add_argument("--cost-repeats", type=int, default=5, help="timed forwards per cost (median)")
    p.add_argument("--out-dir", help="where the result files go (default: a new temporary directory)")
    p.add_argument("--json", help="also write the table and the costs to this JSON file")
    args = p.parse_args(argv)

    cfg, dataset, skipped = bench_config(args)
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="speculative-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cfg = load_config(config_path)
    prompts_path = out_dir / f"{dataset}.prompts.jsonl"
    print(f"results: {out_dir}", file=sys.stderr)

    results, failed = {}, {}
    for name in cfg["experiments"][EXPERIMENT]["methods"]:
        try:
            results[name] = run_job(cfg, EXPERIMENT, dataset, name, out_dir / f"{name}.json", limit=args.limit,
                                    max_new_tokens=args.max_new_tokens, prompts_path=prompts_path)
        except Exception as exc:  # reported in the table, never dropped
            failed[name] = f"{type(exc).__name__}: {exc}"
    if "ar" not in results:
        raise SystemExit(f"the AR baseline failed: {failed['ar']}")

    prompts, _ = read_prompt_set(prompts_path)
    widths = {1} | {q + 1 for name, data in results.items() if data["method"]["id"] in DRAFT_FORWARDS
                    for r in data["records"] for q in r.get("proposed_per_round") or []}
    costs = forward_costs(cfg, prompts[0]["input_ids"], widths, args.cost_repeats)
    rows = [summarise_method(name, data, results["ar"], costs) for name, data in results.items()]

    header = ["method", "tokens/s", "speedup", "ids=AR", "accept", "tok/round", "predicted", "real/pred"]
    lines = [header] + [[r["method"], fmt(r["tokens_per_s"]), fmt(r["speedup"]),
                         ("yes" if r["ids_equal_ar"] else "NO") if r["lossless_claimed"] else "n/a",
                         fmt(r["acceptance_rate"]), fmt(r["tokens_per_round"]),
                         fmt(r["predicted_speedup"]), fmt(r["realised_over_predicted"])] for r in rows]
    widths_col = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths_col)))
    env = results["ar"]["environment"]
    print(f"\n{env['device_name']}, {env['threads']} threads, {env['dtype']}; "
          f"{results['ar']['protocol']['prompts_measured']} prompt(s) of "
          f"{costs['context_tokens']} tokens, budget {results['ar']['protocol']['max_new_tokens']}; k={args.k}")
    print("costs (ms): target " + ", ".join(f"{n} tok {s * 1e3:.2f}" for n, s in costs["target_s"].items())
          + (f"; draft 1 tok {costs['draft_1_s'] * 1e3:.2f}" if costs["draft_1_s"] is not None else ""))
    by_name = {r["method"]: r for r in rows}
    if "linear" in by_name and "hf_assisted" in by_name:
        print(f"linear / hf_assisted tokens/s: {by_name['linear']['tokens_per_s'] / by_name['hf_assisted']['tokens_per_s']:.2f}")
    for name, why in {**skipped, **failed}.items():
        print(f"{name}: not run: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "costs": costs, "skipped": skipped, "failed": failed,
                                               "results_dir": str(out_dir), "environment": env}, indent=1) + "\n")
    return 0 if not failed and all(r["ids_equal_ar"] or not r["lossless_claimed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
