"""Time `decodebench check` on many synthetic result files.

    python benchmarks/check_speed.py                      # 1,000 files x 50 records, the target: < 10 s
    python benchmarks/check_speed.py --files 50 --records 5   # a quick smoke run

Writes valid synthetic results (decodebench.check.synthetic) into a temporary directory laid
out like results/raw/<study>/<experiment>/<dataset>/<method>.json, then runs the `check`
command in a fresh process (imports included, as a user or the pipeline runs it) and, in this
process, the library call alone. Prints wall and CPU times (CPU time is less disturbed by other
load on the machine; wall time on an otherwise idle machine is the figure to report).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from decodebench.check import check_paths
from decodebench.check.synthetic import make_result, write_results

METHODS = ["ar", "linear_k2", "linear_k4", "linear_k8", "tree_d3", "tree_d4", "dynatree", "pld", "hf_assisted",
           "linear_k6"]


def synthetic_corpus(n_files: int, n_records: int) -> list[dict]:
    per_table = len(METHODS)
    out = []
    for t in range((n_files + per_table - 1) // per_table):
        experiment, dataset = f"exp{t // 10}", f"data{t % 10}"
        for m in METHODS:
            if len(out) == n_files:
                break
            method_id = {"tree": "tree", "linear": "linear"}.get(m.split("_")[0], m)
            out.append(make_result(m, method_id, experiment=experiment, dataset=dataset, num_prompts=n_records,
                                   tokens_per_s=20.0 if m == "ar" else 30.0))
    return out


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--records", type=int, default=50, help="records (prompts) per result file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="check-speed-") as tmp:
        root = Path(tmp)
        write_results(root, synthetic_corpus(args.files, args.records))
        start, child_cpu = time.perf_counter(), _children_cpu_s()
        proc = subprocess.run([sys.executable, "-m", "decodebench.cli", "check", str(root / "results" / "raw"),
                               "--root", str(root), "--no-prompts"], capture_output=True, text=True)
        cli_s, cli_cpu = time.perf_counter() - start, _children_cpu_s() - child_cpu
        start, cpu = time.perf_counter(), time.process_time()
        report = check_paths([root / "results" / "raw"], root=root, regenerate_prompts=False)
        lib_s, lib_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr)
    print(f"{args.files} files x {args.records} records: `decodebench check` {cli_s:.2f} s wall, {cli_cpu:.2f} s CPU "
          f"(fresh process, imports included); check_paths {lib_s:.2f} s wall, {lib_cpu:.2f} s CPU (library call)")
    if proc.returncode != 0 or report.count("error"):
        sys.exit(f"unexpected findings on valid synthetic results:\n{proc.stdout[-3000:]}")


if __name__ == "__main__":
    main()
