"""Is a code change faster or slower? The same methods on the same prompts, measured by two source
trees (a base revision and this one), as paired ratios with their 95 % intervals.

    git worktree add --detach ../base <rev>          # the revision to compare with
    python benchmarks/revisions.py --base-src ../base/src --base-config ../base/config/config.yaml \\
        --config config/config.yaml --experiment main --dataset gutenberg \\
        --method ar --method linear --method tree --method dynatree --limit 8 --rounds 2 --out bench/revisions

Each round runs `decodebench run` once per side (a fresh process each, the two sides in
alternating order round by round), every method interleaved prompt by prompt inside a process
as the pipeline measures them. A prompt's ratio is head tokens/s / base tokens/s, averaged over
rounds; the figure is the mean over prompts with a bootstrap interval
(``decodebench.paired.summarise_ratios``, the same statistic as every speedup in the paper).
Both sides must produce the same output ids (a performance change must not change outputs): a
method whose outputs differ is reported as such.

Run it on a quiet machine (nothing else running), from a directory whose resources/ holds the
prepared models and prompts (the embedded default's `make paper` makes them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from decodebench.paired import summarise_ratios  # noqa: E402


def run_side(src: Path, config: Path, args, outs: dict[str, Path]) -> float:
    cmd = [sys.executable, "-m", "decodebench.cli", "run", "--config", str(config),
           "--experiment", args.experiment, "--dataset", args.dataset, "--quiet"]
    for method, out in outs.items():
        cmd += ["--method", method, "--out", str(out)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    if args.max_new_tokens:
        cmd += ["--max-new-tokens", str(args.max_new_tokens)]
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def records(path: Path) -> list[dict]:
    return json.loads(path.read_text())["records"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-src", required=True, type=Path, help="the base revision's src/ directory")
    p.add_argument("--base-config", type=Path, help="the base revision's config (default: --config)")
    p.add_argument("--head-src", type=Path, default=ROOT / "src")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--experiment", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--method", action="append", required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    sides = {"base": (args.base_src.resolve(), (args.base_config or args.config).resolve()),
             "head": (args.head_src.resolve(), args.config.resolve())}
    wall = {s: [] for s in sides}
    for r in range(args.rounds):
        order = ["base", "head"] if r % 2 == 0 else ["head", "base"]
        for side in order:
            outs = {m: args.out / side / f"{m}_r{r}.json" for m in args.method}
            for o in outs.values():
                o.parent.mkdir(parents=True, exist_ok=True)
            wall[side].append(run_side(*sides[side], args, outs))
            print(f"round {r + 1}/{args.rounds} {side}: {wall[side][-1]:.0f} s", file=sys.stderr)
    rows = []
    for m in args.method:
        per_prompt: dict[str, list[float]] = {}
        same = True
        for r in range(args.rounds):
            base = {rec["prompt_index"]: rec for rec in records(args.out / "base" / f"{m}_r{r}.json")}
            for rec in records(args.out / "head" / f"{m}_r{r}.json"):
                b = base.get(rec["prompt_index"])
                if b is None:
                    continue
                same &= b["output_sha256"] == rec["output_sha256"]
                per_prompt.setdefault(str(rec["prompt_index"]), []).append(rec["tokens_per_s"] / b["tokens_per_s"])
        s = summarise_ratios(per_prompt)
        rows.append({"method": m, "ratio": s.estimate, "low": s.low, "high": s.high, "prompts": s.prompts,
                     "pairs": s.pairs, "same_outputs": same})
    summary = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "command": " ".join(sys.argv), "rounds": args.rounds, "wall_s": wall, "methods": rows}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("| method | head / base tokens/s | 95 % interval | prompts x rounds | same outputs |")
    print("|---|---:|---|---:|---|")
    for row in rows:
        print(f"| {row['method']} | {row['ratio']:.3f} | [{row['low']:.3f}, {row['high']:.3f}] | "
              f"{row['prompts']} x {args.rounds} | {'yes' if row['same_outputs'] else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
