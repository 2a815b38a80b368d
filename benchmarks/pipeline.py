"""Pipeline performance: planning, re-rendering, and (optionally) the embedded default from scratch.

    python benchmarks/pipeline.py                       # on this checkout (needs its results)
    python benchmarks/pipeline.py --workspace DIR --configfile config/test.yaml
    python benchmarks/pipeline.py --from-scratch        # long: a fresh copy, every benchmark

Measures, on a complete workspace (results and generated files present):

- ``dry_run_s``: ``snakemake -n`` (parse, validate, plan; nothing to do). Target < 3 s.
- ``rebuild_s``: ``snakemake --forcerun aggregate --until render``: every table, figure and
  numbers file rebuilt from the existing result files (no benchmark runs). Target < 30 s.
- ``from_scratch_s`` (``--from-scratch``): the embedded default in a fresh copy of the
  tracked files (``git ls-files``), from prepare to the PDF. Target < 20 min on 2 cores.

Each timing is the median of ``--repeats`` runs (from scratch: one). Prints JSON. Timings
taken while other work loads the machine are not representative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake(workspace: Path, args: list[str], configfile: str | None) -> float:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "all", *args]
    if configfile:
        cmd += ["--configfile", configfile]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {workspace}:\n{proc.stderr[-3000:]}")
    return elapsed


def timed(workspace: Path, args: list[str], configfile: str | None, repeats: int) -> dict:
    times = [snakemake(workspace, args, configfile) for _ in range(repeats)]
    return {"median_s": statistics.median(times), "runs_s": times}


def from_scratch(configfile: str | None) -> dict:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="decodebench-scratch-") as tmp:
        for f in files:
            dst = Path(tmp) / f
            dst.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / f).is_file():
                shutil.copy2(REPO / f, dst)
        return {"median_s": snakemake(Path(tmp), [], configfile), "runs_s": None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, default=REPO, help="a complete workspace (default: this checkout)")
    p.add_argument("--configfile", help="config to run with (default: the Snakefile's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--from-scratch", action="store_true", help="also run the embedded default from scratch (long)")
    args = p.parse_args()

    out = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
           "workspace": str(args.workspace), "configfile": args.configfile}
    out["dry_run_s"] = timed(args.workspace, ["-n"], args.configfile, args.repeats)
    out["rebuild_s"] = timed(args.workspace, ["--forcerun", "aggregate", "--until", "render"], args.configfile,
                             args.repeats)
    if args.from_scratch:
        out["from_scratch_s"] = from_scratch(args.configfile)
    out["targets_s"] = {"dry_run": 3, "rebuild": 30, "from_scratch": 1200}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
