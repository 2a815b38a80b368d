"""Do speedups hold up on a busy machine? Paired (interleaved) vs per-method protocol, quiet vs loaded.

    PYTHONPATH=src python benchmarks/stability.py --resources /path/to/resources     # models prepared there
    PYTHONPATH=src python benchmarks/stability.py --methods ar pld linear --repeats 2 --max-new-tokens 32

Runs the embedded default's ``main`` experiment (config/config.yaml; the methods, prompts and
budget can be narrowed) four times, in this order:

1. paired, quiet:      one process measures every configuration interleaved (``run_group``);
2. per-method, quiet:  each configuration measured alone, one after another (the old protocol:
                       one job per configuration, minutes apart from the baseline);
3. paired, loaded;     4. per-method, loaded:
   with a competing load that this script starts itself: one busy-loop process pinned to one
   core (``os.sched_setaffinity``), bounded in time, stopped at the end of the condition.

For each condition and method it prints the speedup over AR: the paired estimate (mean over
prompts of per-prompt ratios) with its 95 % bootstrap interval, and the ratio of the mean
tokens/s (what the old protocol reported), plus the share of measurements the telemetry calls
busy. The goal (issue 14): each method's quiet and loaded paired speedups within 5 % of each
other, or their intervals overlapping. Results go to ``--out`` (JSON) as well.

Timings are only as good as what else ran: the telemetry of every measurement is kept in the
JSON, and "quiet" is only as quiet as the machine was (the summary prints the busy share).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from pathlib import Path

from decodebench.config import load_config
from decodebench.harness import run_group
from decodebench.paired import paired_speedup
from decodebench.results import atomic_write_text
from decodebench.telemetry import busy

ROOT = Path(__file__).resolve().parents[1]


def _spin(cpu: int, seconds: float) -> None:
    """The competing load: a busy loop on one CPU, for at most `seconds`."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


class Load:
    """A bounded busy-loop process on one core, stopped when the block ends."""

    def __init__(self, cpu: int, limit_s: float):
        self.proc = mp.get_context("spawn").Process(target=_spin, args=(cpu, limit_s), daemon=True)

    def __enter__(self):
        self.proc.start()
        time.sleep(1.0)  # let it reach full speed
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.join(10)


def speedups(results: dict[str, dict], baseline: str) -> dict[str, dict]:
    base = results[baseline]["records"]
    base_mean = sum(r["tokens_per_s"] for r in base) / len(base)
    out = {}
    for name, res in results.items():
        recs = res["records"]
        s = paired_speedup(recs, base)
        out[name] = {"paired": s.estimate, "low": s.low, "high": s.high, "pairs": s.pairs,
                     "ratio_of_means": (sum(r["tokens_per_s"] for r in recs) / len(recs)) / base_mean,
                     "busy_share": sum(busy(r.get("telemetry")) is not None for r in recs) / len(recs)}
    return out


def condition(cfg: dict, methods: list[str], paired: bool, out_dir: Path, limit: int | None) -> dict[str, dict]:
    outs = {m: out_dir / f"{m}.json" for m in methods}
    if paired:
        return run_group(cfg, "main", "gutenberg", methods, outs, limit=limit)
    return {m: run_group(cfg, "main", "gutenberg", [m], {m: outs[m]}, limit=limit)[m] for m in methods}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    p.add_argument("--resources", help="resources_dir with the prepared models (default: the config's)")
    p.add_argument("--methods", nargs="+", help="method configurations of experiment main (default: all; "
                                                "the baseline is always included)")
    p.add_argument("--repeats", type=int, help="protocol.repeats (default: the config's)")
    p.add_argument("--max-new-tokens", type=int, help="default: the config's")
    p.add_argument("--limit", type=int, help="first N prompts only")
    p.add_argument("--load-cpu", type=int, default=0, help="the core the competing load is pinned to")
    p.add_argument("--threads", type=int, help="torch threads of the measurement (default: the config's)")
    p.add_argument("--protocols", nargs="+", choices=["paired", "per_method"], default=["paired", "per_method"],
                   help="which protocols to run (default both)")
    p.add_argument("--out", default="stability.json")
    args = p.parse_args()

    cfg = load_config(args.config)
    exp = cfg["experiments"]["main"]
    baseline = exp["baseline"]
    methods = args.methods or list(exp["methods"])
    methods = [baseline] + [m for m in methods if m != baseline]
    if args.resources:
        cfg["resources_dir"] = args.resources
    if args.repeats:
        exp.setdefault("protocol", {})["repeats"] = args.repeats
    if args.max_new_tokens:
        exp.setdefault("protocol", {})["max_new_tokens"] = args.max_new_tokens
    cfg["check"] = {**cfg.get("check", {}), "remeasure": 0}  # measure what the machine gives
    if args.threads:
        cfg["threads"] = args.threads

    table = {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for load in (False, True):
            for paired in [p == "paired" for p in args.protocols]:
                key = f"{'paired' if paired else 'per_method'}/{'loaded' if load else 'quiet'}"
                print(f"== {key}", flush=True)
                out_dir = Path(tmp) / key
                t0 = time.perf_counter()
                if load:
                    with Load(args.load_cpu, limit_s=3600):
                        results = condition(cfg, methods, paired, out_dir, args.limit)
                else:
                    results = condition(cfg, methods, paired, out_dir, args.limit)
                table[key] = {"wall_s": time.perf_counter() - t0, "speedups": speedups(results, baseline),
                              "telemetry": {m: [r.get("telemetry") for r in res["records"]]
                                            for m, res in results.items()}}

    env = {"machine": platform.processor() or platform.machine(), "platform": platform.platform(),
           "cpus": os.cpu_count(), "threads": cfg.get("threads"), "methods": methods, "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
           "command": " ".join(["benchmarks/stability.py"] + [a for a in os.sys.argv[1:]])}
    atomic_write_text(args.out, json.dumps({"environment": env, "conditions": table}, indent=1))

    def fmt(s):
        if s["paired"] is None:
            return "--"
        iv = f" [{s['low']:.2f}, {s['high']:.2f}]" if s["low"] is not None else ""
        return f"{s['paired']:.2f}{iv}"

    print(f"\nspeedup over {baseline}: paired estimate [95 % interval] / ratio of means; busy share of measurements")
    header = "| method | " + " | ".join(table) + " | paired quiet vs loaded |"
    print(header)
    print("|" + "---|" * (len(table) + 2))
    for m in methods[1:]:
        cells = [f"{fmt(c['speedups'][m])} / {c['speedups'][m]['ratio_of_means']:.2f} "
                 f"({c['speedups'][m]['busy_share']:.0%} busy)" for c in table.values()]
        q, lo = table["paired/quiet"]["speedups"][m], table["paired/loaded"]["speedups"][m]
        verdict = "--"
        if q["paired"] and lo["paired"]:
            diff = abs(lo["paired"] / q["paired"] - 1)
            overlap = (q["low"] is not None and lo["low"] is not None
                       and q["low"] <= lo["high"] and lo["low"] <= q["high"])
            verdict = f"{diff:.1%} apart, intervals {'overlap' if overlap else 'disjoint'}"
        print(f"| {m} | " + " | ".join(cells) + f" | {verdict} |")
    for key, c in table.items():
        print(f"{key}: {c['wall_s']:.0f} s")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
