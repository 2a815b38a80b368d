"""A local run of a CUDA study starts at most one benchmark job per visible GPU, without extra
flags (workflow/rules/common.smk); a cluster run is left alone, and --resources gpu=N wins.

The benchmark jobs are real Snakemake jobs of the real workflow; only the `decodebench` they
call is a stand-in that records when it ran (no GPU here), so the test sees the schedule."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "workflow", "templates", "scripts", "profiles", "config"]
FAKE = '''#!{python}
"""Stand-in for decodebench: prepare-prompts writes its file, run sleeps and records its span."""
import json, sys, time
from pathlib import Path
args = sys.argv[1:]
if args[0] == "prepare-prompts":
    dataset = args[args.index("--dataset") + 1]
    out = Path("resources/prompts/gpuplan") / f"{{dataset}}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
elif args[0] == "run":
    start = time.time()
    time.sleep(2.0)
    outs = [args[i + 1] for i, a in enumerate(args) if a == "--out"]
    for o in outs:
        Path(o).parent.mkdir(parents=True, exist_ok=True)
        Path(o).write_text("{{}}")
    with open("spans.jsonl", "a") as fh:
        fh.write(json.dumps({{"outs": outs, "start": start, "end": time.time()}}) + "\\n")
else:
    sys.exit(f"unexpected: {{args}}")
'''


@pytest.fixture
def workspace(tmp_path):
    for name in WORKFLOW_FILES:
        src, dst = REPO / name, tmp_path / name
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)
    cfg = {"study": "gpuplan", "device": "cuda", "dtype": "float16", "threads": 1,
           "models": {"target": {"name": "m", "path": str(tmp_path / "model")}},
           "datasets": {"docs": {"loader": "jsonl", "path": "docs.jsonl", "num_prompts": 1, "prompt_tokens": 4}},
           "protocol": {"max_new_tokens": 2},
           "experiments": {e: {"baseline": "ar", "datasets": ["docs"], "methods": {"ar": {"method": "ar"}}}
                           for e in ("main", "memory", "length")}}
    (tmp_path / "config" / "gpu.yaml").write_text(yaml.safe_dump(cfg))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "decodebench"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def run(ws: Path, *extra: str, visible: str | None) -> list[tuple[float, float]]:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(PATH=f"{ws / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
               PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}")
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    targets = [f"results/raw/gpuplan/{e}/docs/ar.json" for e in ("main", "memory", "length")]
    proc = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "4", *extra,
                           "--configfile", "config/gpu.yaml"], cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    spans = [json.loads(line) for line in (ws / "spans.jsonl").read_text().splitlines()]
    assert len(spans) == 3
    return sorted((s["start"], s["end"]) for s in spans)


def overlapping(spans: list[tuple[float, float]]) -> bool:
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))


def test_one_gpu_runs_one_benchmark_at_a_time(workspace):
    assert not overlapping(run(workspace, visible="0"))


def test_two_visible_gpus_run_two_at_once_and_the_user_limit_wins(workspace):
    assert overlapping(run(workspace, visible="0,1"))
    (workspace / "spans.jsonl").unlink()
    shutil.rmtree(workspace / "results")
    assert not overlapping(run(workspace, "--resources", "gpu=1", visible="0,1"))
