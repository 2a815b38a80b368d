"""Speculative decoding benchmark: every greedy method on the same prompts, in one run.

    python benchmarks/speculative.py                               # the embedded config
    python benchmarks/speculative.py --config config/config.yaml --dataset gutenberg \\
        --limit 4 --max-new-tokens 64 --k 4 --draft PATH --json bench.json

What it does:

1. Runs ``ar`` and every registered greedy single-sample method (``methods.all_methods()``, so
   methods merged later join by themselves) through the harness (warmups, tracker, result
   files) on one prompt file, with ``k`` drafts per round for linear/hf_assisted; the others
   with their defaults. Methods needing a draft are skipped, with the reason, when no draft is
   configured; a generation that fails is recorded in its result's errors.
2. Measures them paired: one process, every method interleaved prompt by prompt
   (``run_group``), so the speedups are paired ratios with bootstrap intervals.
3. Reports per method: tokens/s (mean over generations), the paired speedup over AR with its
   95 % interval, whether the output ids equal AR's (lossless methods), acceptance, tokens per
   target forward, and the cost model fitted in place (``decodebench.costmodel``): from the
   same run's per-round phase times, the verify cost per token of width and the draft cost
   per forward; the predicted speedup they give, and realised / predicted with its interval.
   Near 1: the measured speedup is what drafting and verifying at these costs explain; below
   1: time goes to the loop's own work between the phases.

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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from decodebench.config import load_config  # noqa: E402
from decodebench.costmodel import fit_method, realised_over_predicted, speedup_pairs  # noqa: E402
from decodebench.harness import run_group  # noqa: E402
from decodebench.methods import all_methods  # noqa: E402
from decodebench.paired import paired_speedup  # noqa: E402

EXPERIMENT = "speculative_bench"


def bench_config(args) -> tuple[dict, str, dict[str, str]]:
    """The study config with one experiment holding every runnable greedy method."""
    cfg = load_config(args.config)
    # the benchmark's own experiment only (a tuning stage would add its experiment again on reload)
    cfg = {k: v for k, v in cfg.items() if k != "tune"}
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
    cfg["experiments"] = {EXPERIMENT: {"description": "benchmarks/speculative.py", "kind": "generic", "baseline": "ar",
                                       "datasets": [dataset], "methods": methods}}
    return cfg, dataset, skipped


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summarise_method(name: str, data: dict, ar: dict) -> dict:
    recs, ar_recs = data["records"], ar["records"]
    ar_hash = {(r["prompt_id"], r["repeat"]): r["output_sha256"] for r in ar_recs}
    same = all(ar_hash.get((r["prompt_id"], r["repeat"])) == r["output_sha256"] for r in recs)
    speedup = paired_speedup(recs, ar_recs)
    fit = fit_method(recs)
    check = realised_over_predicted(recs, ar_recs, fit) if fit else None
    predicted = [p for _, _, p in speedup_pairs(recs, ar_recs, fit)] if fit else []
    return {"method": name, "params": data["method"]["params"], "tokens_per_s": mean(r["tokens_per_s"] for r in recs),
            "speedup": speedup.estimate, "speedup_low": speedup.low, "speedup_high": speedup.high,
            "ids_equal_ar": same, "lossless_claimed": data["method"]["lossless"],
            "acceptance_rate": mean(r.get("acceptance_rate") for r in recs),
            "tokens_per_target_forward": mean(r.get("tokens_per_target_forward") for r in recs),
            "fit": None if fit is None else {"verify_s": fit.verify, "draft_s": fit.draft, "rounds": fit.rounds},
            "predicted_speedup": mean(predicted),
            "realised_over_predicted": None if check is None else check.estimate,
            "realised_over_predicted_low": None if check is None else check.low,
            "realised_over_predicted_high": None if check is None else check.high,
            "errors": len(data["errors"])}


def interval(value, low, high):
    return fmt(value) + ("" if low is None else f" [{fmt(low)}, {fmt(high)}]")


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
    p.add_argument("--repeats", type=int, help="protocol.repeats (default: the config's)")
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

    if args.repeats:
        cfg["protocol"] = {**cfg.get("protocol", {}), "repeats": args.repeats}
        config_path.write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
        cfg = load_config(config_path)
    names = list(cfg["experiments"][EXPERIMENT]["methods"])
    results = run_group(cfg, EXPERIMENT, dataset, names, {n: out_dir / f"{n}.json" for n in names},
                        limit=args.limit, max_new_tokens=args.max_new_tokens, prompts_path=prompts_path)
    rows = [summarise_method(name, data, results["ar"]) for name, data in results.items()]

    header = ["method", "tokens/s", "speedup [95% CI]", "ids=AR", "accept", "tok/fwd", "predicted",
              "real/pred [95% CI]"]
    lines = [header] + [[r["method"], fmt(r["tokens_per_s"]), interval(r["speedup"], r["speedup_low"], r["speedup_high"]),
                         ("yes" if r["ids_equal_ar"] else "NO") if r["lossless_claimed"] else "n/a",
                         fmt(r["acceptance_rate"]), fmt(r["tokens_per_target_forward"]), fmt(r["predicted_speedup"]),
                         interval(r["realised_over_predicted"], r["realised_over_predicted_low"],
                                  r["realised_over_predicted_high"])] for r in rows]
    widths_col = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths_col)))
    env = results["ar"]["environment"]
    print(f"\n{env['device_name']}, {env['threads']} threads, {env['dtype']}; "
          f"{results['ar']['protocol']['prompts_measured']} prompt(s) x {results['ar']['protocol']['repeats']} "
          f"repeat(s), budget {results['ar']['protocol']['max_new_tokens']}; k={args.k}; paired (interleaved)")
    for r in rows:
        if r["fit"]:
            (a, b), (c, d, e) = r["fit"]["verify_s"], r["fit"]["draft_s"]
            print(f"{r['method']}: verify {a * 1e3:.2f} ms + {b * 1e3:.3f} ms/token; draft {c * 1e3:.2f} ms + "
                  f"{d * 1e3:.2f} ms/forward + {e * 1e3:.3f} ms/token fed ({r['fit']['rounds']} rounds)")
    by_name = {r["method"]: r for r in rows}
    if "linear" in by_name and "hf_assisted" in by_name:
        print(f"linear / hf_assisted tokens/s: {by_name['linear']['tokens_per_s'] / by_name['hf_assisted']['tokens_per_s']:.2f}")
    for name, why in skipped.items():
        print(f"{name}: not run: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "skipped": skipped,
                                               "results_dir": str(out_dir), "environment": env}, indent=1) + "\n")
    return 0 if all(r["ids_equal_ar"] or not r["lossless_claimed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
