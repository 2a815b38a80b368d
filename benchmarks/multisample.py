"""Multi-sample benchmark: the ladder from naive sampling to EAB, through the harness, vs prompt length.

    python benchmarks/multisample.py --resources-dir /path/to/resources          # the config's experiment
    python benchmarks/multisample.py --resources-dir /path/to/resources \\
        --prompt-lengths 64 512 --num-samples 20 --max-new-tokens 32 --dtype bfloat16 --out-dir bench-bf16

Runs the `multisample` experiment of --config (default config/config.yaml: naive, naive
batched, shared prefill, EAB with each KV store) with the overrides given, through the
pipeline's harness (``harness.run_group``: models loaded once, warmups, every configuration
measured interleaved prompt by prompt, the tracker's true peak memory). Every number printed
comes from the result files it writes to --out-dir (default: a new temporary directory),
``results/raw/<study>/multisample/<dataset>_p<L>/<method>.json`` under it, next to the config
it ran (``config.yaml``) and the aggregated table (``multisample.csv``, as the pipeline's
aggregation makes it), so each figure can be traced to its run.

Printed per prompt length and method: wall time, the paired speedup vs naive with its 95 %
interval, token-steps, KV bytes held at peak (computed), peak memory overhead and its ratio to
naive's, and the samples' quality (decodebench.quality): distinct-2, self-BLEU and the error of
the NLL-per-token estimate against the independent reference sample (``--reference-samples``).
Then the fraction of identical samples, sample by sample, between the two EAB stores and
between each independent sampler and naive: exact in float32 (tested), measured and reported,
not assumed, in half precision. Timings are only as good as the machine is quiet.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from decodebench.analysis import aggregate_experiment, wide_table, write_table  # noqa: E402
from decodebench.config import load_config  # noqa: E402
from decodebench.harness import run_group  # noqa: E402
from decodebench.layout import result_path  # noqa: E402
from decodebench.measurement import MIB  # noqa: E402
from decodebench.paired import paired_speedup  # noqa: E402
from decodebench.quality import identical_samples  # noqa: E402
from decodebench.results import load_result  # noqa: E402

EXPERIMENT = "multisample"
# (method, compared with): the claims of sample equality the benchmark measures
SAME_SAMPLES = (("eab_shared_prefix", "eab_deepcopy"), ("naive_batched", "naive"), ("shared_prefill", "naive"))


def bench_config(args) -> dict:
    """The study config: --config's multisample experiment with the command line's overrides."""
    cfg = yaml.safe_load(Path(args.config).read_text())  # as written: load_config expands it once, below
    if EXPERIMENT not in cfg.get("experiments", {}):
        raise SystemExit(f"{args.config}: no experiment '{EXPERIMENT}' (defined: {', '.join(cfg.get('experiments', {}))})")
    exp = cfg["experiments"][EXPERIMENT]
    cfg["study"] = args.study
    if args.resources_dir:
        cfg["resources_dir"] = str(Path(args.resources_dir).resolve())
    for key in ("dtype", "threads"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    protocol = dict(exp.get("protocol", {}))
    for key in ("num_samples", "max_new_tokens", "temperature", "reference_samples", "repeats"):
        if getattr(args, key) is not None:
            protocol[key] = getattr(args, key)
    exp["protocol"] = protocol
    if args.prompt_lengths:
        exp["prompt_lengths"] = args.prompt_lengths
    dataset = args.dataset or exp["datasets"][0]
    if dataset not in exp["datasets"]:
        raise SystemExit(f"--dataset: '{dataset}' is not a dataset of the experiment (it has: {', '.join(exp['datasets'])})")
    exp["datasets"] = [dataset]
    cfg["datasets"] = {dataset: cfg["datasets"][dataset]}
    if args.limit:
        cfg["datasets"][dataset]["num_prompts"] = args.limit
    if args.methods:
        unknown = sorted(set(args.methods) - set(exp["methods"]))
        if unknown:
            raise SystemExit(f"--methods: {', '.join(unknown)} not in the experiment (it has: {', '.join(exp['methods'])})")
        exp["methods"] = {m: s for m, s in exp["methods"].items() if m in args.methods or m == exp["baseline"]}
    eab = {k: v for k, v in (("entropy_threshold", args.entropy_threshold), ("branch_factor", args.branch_factor))
           if v is not None}
    for spec in exp["methods"].values():
        if spec["method"].startswith("eab") and eab:
            spec["params"] = {**spec.get("params", {}), **eab}
    cfg["experiments"] = {EXPERIMENT: exp}
    cfg.pop("tune", None)  # only the multisample experiment runs: no tuning stage, no tuning prompts
    return cfg


def fmt(value, spec=".2f") -> str:
    return "-" if value is None or value != value else format(value, spec)


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    p.add_argument("--study", default="bench_multisample", help="study name of the result files")
    p.add_argument("--dataset", help="a dataset of the experiment (default: its first)")
    p.add_argument("--resources-dir", help="override the config's resources_dir (where models are materialised)")
    p.add_argument("--prompt-lengths", type=int, nargs="+")
    p.add_argument("--limit", type=int, help="prompts per prompt length (the dataset's num_prompts)")
    p.add_argument("--num-samples", dest="num_samples", type=int)
    p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--reference-samples", dest="reference_samples", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--entropy-threshold", type=float, help="every EAB configuration's entropy_threshold")
    p.add_argument("--branch-factor", type=int, help="every EAB configuration's branch_factor")
    p.add_argument("--methods", nargs="+", help="only these configurations of the experiment (the baseline always runs)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int)
    p.add_argument("--out-dir", help="where the result files go (default: a new temporary directory)")
    p.add_argument("--report", metavar="DIR", help="measure nothing: print the figures of an earlier run's --out-dir")
    args = p.parse_args(argv)

    if args.report:
        out_dir = Path(args.report).resolve()
        cfg = load_config(out_dir / "config.yaml")
    else:
        cfg = bench_config(args)
        out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="multisample-bench-")).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        config_path = out_dir / "config.yaml"
        config_path.write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
        cfg = load_config(config_path)
    exp = cfg["experiments"][EXPERIMENT]
    methods = list(exp["methods"])
    print(f"results: {out_dir}", file=sys.stderr)

    results = []
    for dataset in exp["datasets"]:
        outs = {m: out_dir / result_path(cfg["study"], EXPERIMENT, dataset, m) for m in methods}
        if args.report:
            results += [load_result(outs[m]) for m in methods]
            continue
        group = run_group(cfg, EXPERIMENT, dataset, methods, outs,
                          prompts_path=out_dir / f"{dataset}.prompts.jsonl", progress=True)
        results += group.values()
    table = aggregate_experiment(cfg, EXPERIMENT, results)
    write_table(table, out_dir / "multisample.csv")

    first = results[0]
    proto = first["protocol"]
    print(f"# {first['models']['target']['name']} {first['environment'].get('dtype', cfg['dtype'])} | "
          f"N={proto['num_samples']} max_new_tokens={proto['max_new_tokens']} temperature="
          f"{exp['protocol'].get('temperature', 1.0)} reference_samples={proto.get('reference_samples')} | "
          f"prompts per length: {proto['prompts_measured']} | torch threads {cfg.get('threads')}")
    by = {(r["dataset"]["name"], r["method"]["name"]): r for r in results}
    print(f"{'prompt':>6} {'method':<18} {'wall_s':>7} {'speedup [95% CI]':>20} {'tok_steps':>9} {'kv_mib':>7} "
          f"{'overhead_mib':>11} {'ovh_ratio':>9} {'distinct2':>9} {'selfbleu':>8} {'nll_err':>8}")
    for row in wide_table(table).to_dict("records"):
        recs = by[(row["dataset"], row["method"])]["records"]
        interval = "" if row.get("speedup_low") is None or row["speedup_low"] != row["speedup_low"] else \
            f" [{fmt(row['speedup_low'])}, {fmt(row['speedup_high'])}]"
        print(f"{row['prompt_tokens_config']:>6} {row['method']:<18} {fmt(row['wall_time_s_mean']):>7} "
              f"{fmt(row['speedup']) + interval:>20} {fmt(row['token_steps_mean'], '.0f'):>9} "
              f"{fmt(mean(r['extra']['kv_computed_peak_bytes'] / MIB for r in recs), '.1f'):>7} "
              f"{fmt(row['peak_memory_overhead_mib_mean'], '.1f'):>11} {fmt(row['overhead_ratio']):>9} "
              f"{fmt(row.get('distinct_2_mean')):>9} {fmt(row.get('self_bleu_mean')):>8} "
              f"{fmt(row.get('nll_per_token_error_mean'), '+.3f'):>8}")
    # what branching buys over independent samples drawn after the same shared prefill
    for dataset in exp["datasets"]:
        for method in methods:
            if method.startswith("eab") and (dataset, "shared_prefill") in by:
                s = paired_speedup(by[(dataset, method)]["records"], by[(dataset, "shared_prefill")]["records"], True)
                print(f"# {dataset} {method} vs shared_prefill: {fmt(s.estimate)}x [{fmt(s.low)}, {fmt(s.high)}] "
                      f"(time to all samples, paired over {s.prompts} prompts)")
    print(f"# identical samples ({cfg['dtype']}), sample by sample over every prompt:")
    for method, other in SAME_SAMPLES:
        if method not in methods or other not in methods:
            continue
        same = total = 0
        for dataset in exp["datasets"]:
            s, t = identical_samples(by[(dataset, method)]["records"], by[(dataset, other)]["records"])
            same, total = same + s, total + t
        print(f"#   {method} vs {other}: {same}/{total} ({fmt(100 * same / total if total else None, '.1f')} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
