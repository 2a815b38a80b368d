"""A local run of a CUDA study starts at most one benchmark job per visible GPU, without extra
flags (workflow/rules/common.smk); a cluster run is left alone, and --resources gpu=N wins.

The benchmark jobs are real Snakemake jobs of the real workflow; only the `decodebench` they
call is a stand-in that records when it ran (no GPU here), so the test sees the schedule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from decodebench.testing import gpu_plan_spans, gpu_plan_workspace, overlapping

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path):
    return gpu_plan_workspace(REPO, tmp_path)


def run(ws: Path, *extra: str, visible: str | None) -> list[tuple[float, float]]:
    return gpu_plan_spans(REPO, ws, *extra, visible=visible)


def test_one_gpu_runs_one_benchmark_at_a_time(workspace):
    assert not overlapping(run(workspace, visible="0"))


def test_two_visible_gpus_run_two_at_once_and_the_user_limit_wins(workspace):
    assert overlapping(run(workspace, visible="0,1"))
    (workspace / "spans.jsonl").unlink()
    shutil.rmtree(workspace / "results")
    assert not overlapping(run(workspace, "--resources", "gpu=1", visible="0,1"))
