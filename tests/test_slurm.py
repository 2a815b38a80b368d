"""profiles/slurm on a real (one-node, throwaway) SLURM cluster: tests/slurm_cluster.py starts
munged, slurmctld and slurmd with no accounting (the case where the plugin's default, sacct,
hangs), and a tiny CPU study with a non-default config file name runs through
`--profile profiles/slurm --profile tests/slurm_site`. Checked: one SLURM job per benchmark
job (paired and per_method), none for the small rules, the job id and node recorded in every
result, the site's partition and sizes applied, no GPU asked for, results and PDF present, a
second run does nothing, a cancelled job is reported as failed instead of waited for, and a
GPU study asks for its GPU once (--gpus=1, no gres).
Without SLURM (or root) the cluster tests skip and say why. Takes 1-3 minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from slurm_cluster import SlurmCluster, missing
from test_pipeline import HAVE_LATEXMK, NO_LATEXMK, REPO, WORKFLOW_FILES, make_config, snakemake

from decodebench import provenance

STUDY = "pipetest"  # make_config's
CONFIG = "config/cluster-study.yaml"
SITE = "tests/slurm_site"
try:
    import snakemake_executor_plugin_slurm  # noqa: F401
    NO_PLUGIN = None
except ImportError:
    NO_PLUGIN = "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"


def test_scheduler_provenance_from_the_slurm_environment():
    assert provenance.scheduler({"PATH": "/bin"}) is None
    env = {"SLURM_JOB_ID": "42", "SLURMD_NODENAME": "gpu07", "SLURM_JOB_NODELIST": "gpu07",
           "SLURM_CPUS_PER_TASK": "8", "SLURM_MEM_PER_NODE": "64000", "SLURM_JOB_GPUS": "3",
           "SLURM_JOB_PARTITION": "gpu"}
    asked = []
    job = {"AllocTRES": "cpu=8,mem=64000M,node=1,gres/gpu=1", "OverSubscribe": "NO", "TimeLimit": "04:00:00"}
    sched = provenance.scheduler(env, scontrol=lambda job_id: asked.append(job_id) or job)
    assert asked == ["42"]
    assert sched["name"] == "slurm" and sched["job_id"] == "42" and sched["node"] == "gpu07"
    assert (sched["cpus_per_task"], sched["mem_per_node_mb"], sched["gpus"]) == ("8", "64000", "3")
    assert (sched["alloc_tres"], sched["oversubscribe"]) == ("cpu=8,mem=64000M,node=1,gres/gpu=1", "NO")
    assert sched["account"] is None  # not set by SLURM here: recorded as unknown
    assert provenance.scheduler(env, scontrol=lambda job_id: {})["alloc_tres"] is None
    schema = json.loads((REPO / "workflow" / "schemas" / "result.schema.json").read_text())
    sub = schema["properties"]["provenance"]["properties"]["scheduler"]
    jsonschema.validate(sched, sub)
    jsonschema.validate(None, sub)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**sched, "hostname": "x"}, sub)


def copy_workflow(ws: Path) -> None:
    for name in WORKFLOW_FILES + [SITE]:
        src, dst = REPO / name, ws / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)


def cluster_config(ws: Path, model: Path) -> dict:
    cfg = make_config(ws, model)
    # main stays paired (one job, two results); prompt_length becomes one job per configuration.
    cfg["experiments"]["prompt_length"]["protocol"] = {"pairing": "per_method"}
    return cfg


def plan(ws: Path, config: str, *profiles: str) -> str:
    args = ["--configfile", config, "-n", "-p"] + [a for p in profiles for a in ("--profile", p)]
    proc = snakemake(ws, *args)
    return proc.stdout + proc.stderr


def job_resources(out: str, rule_prefix: str) -> list[str]:
    blocks = re.findall(rf"rule {rule_prefix}\w*:\n(.*?)\n\n", out, flags=re.S)
    return [line for b in blocks for line in b.splitlines() if "resources:" in line]


@pytest.mark.skipif(NO_PLUGIN is not None, reason=NO_PLUGIN or "")
def test_cluster_resources_follow_the_configs_device(tmp_path, tiny_models):
    """CPU study: no GPU, the site's CPU partition, the config's threads, exclusive; GPU
    study: one GPU as `gpu` only (the plugin's --gpus), never also a gres."""
    copy_workflow(tmp_path)
    cfg = cluster_config(tmp_path, tiny_models["llama"])
    (tmp_path / CONFIG).write_text(yaml.safe_dump(cfg, sort_keys=False))
    cpu = job_resources(plan(tmp_path, CONFIG, "profiles/slurm", SITE), "benchmark")
    assert len(cpu) == 3, cpu  # benchmark_main_docs + 2 per_method jobs
    for line in cpu:
        assert "gpu" not in line.replace("decodebench-test", ""), line
        assert "slurm_partition=decodebench-test" in line and "cpus_per_task=1," in line, line
        assert "slurm_extra=--exclusive" in line and "mem_mb=1000," in line, line
    cfg["device"] = "cuda"
    (tmp_path / "config" / "gpu-study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    gpu = job_resources(plan(tmp_path, "config/gpu-study.yaml", "profiles/slurm"), "benchmark")
    assert len(gpu) == 3, gpu
    for line in gpu:
        assert "gpu=1" in line and "gres" not in line and "slurm_partition=gpu" in line, line


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = missing() or NO_PLUGIN
    if reason:
        pytest.skip(reason)
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    c.start()
    yield c
    c.stop()


def cluster_command(cluster: SlurmCluster, *extra: str) -> tuple[list[str], dict]:
    """The README's cluster command with the test site profile, and its environment (the
    submitted jobs inherit it: sbatch --export=ALL)."""
    env = {**cluster.env, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{cluster.env['PATH']}"}
    args = [sys.executable, "-m", "snakemake", "--configfile", CONFIG, "--profile", "profiles/slurm",
            "--profile", SITE, *extra]
    return args, env


def run_on_cluster(ws: Path, cluster: SlurmCluster, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    args, env = cluster_command(cluster, *extra)
    return subprocess.run(args, cwd=ws, env=env, capture_output=True, text=True, timeout=timeout)


def slurm_jobs(cluster: SlurmCluster) -> dict[str, str]:
    """{job id: state} of every job the cluster remembers (MinJobAge=300 s)."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T"], env=cluster.env,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(line.split("|") for line in out.split())


@pytest.fixture(scope="module")
def cluster_run(cluster, tmp_path_factory, tiny_models):
    ws = tmp_path_factory.mktemp("cluster-ws")
    copy_workflow(ws)
    (ws / CONFIG).write_text(yaml.safe_dump(cluster_config(ws, tiny_models["llama"]), sort_keys=False))
    start = time.monotonic()
    proc = run_on_cluster(ws, cluster, *([] if HAVE_LATEXMK else ["--until", "check"]))
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise AssertionError(f"the cluster run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}\n"
                             f"{cluster.logs()}")
    print(f"cluster run: {elapsed:.0f} s")
    return ws, proc, slurm_jobs(cluster)


def results(ws: Path) -> dict[str, dict]:
    raw = ws / "results" / "raw" / STUDY
    return {p.relative_to(raw).as_posix(): json.loads(p.read_text()) for p in sorted(raw.rglob("*.json"))}


def test_one_slurm_job_per_benchmark_job_and_its_id_in_every_result(cluster_run):
    ws, proc, jobs = cluster_run
    res = results(ws)
    assert sorted(res) == ["main/docs/ar.json", "main/docs/ar_again.json",
                           "prompt_length/docs_p12/ar.json", "prompt_length/docs_p8/ar.json"]
    sched = {name: r["provenance"]["scheduler"] for name, r in res.items()}
    assert all(s and s["name"] == "slurm" for s in sched.values()), sched
    # the paired job measured both configurations in one SLURM job; per_method: one job each
    assert sched["main/docs/ar.json"]["job_id"] == sched["main/docs/ar_again.json"]["job_id"]
    ids = {s["job_id"] for s in sched.values()}
    assert len(ids) == 3, sched
    # ... and those three are every job submitted: the small rules ran locally (localrules)
    assert set(jobs) == ids and set(jobs.values()) == {"COMPLETED"}, (jobs, sched)
    for s in sched.values():
        assert s["node"] == "localnode", s
        # the site profile's partition and memory, the config's threads, no GPU, not shared
        assert s["partition"] == "decodebench-test" and "mem=1000M" in s["alloc_tres"], s
        assert s["cpus_per_task"] == "1" and "gpu" not in s["alloc_tres"] and s["gpus"] is None, s
        assert s["oversubscribe"] == "NO", s
    assert (ws / "results" / "tables" / STUDY / "main.csv").exists()
    assert "; 0 errors," in (ws / "results" / "tables" / STUDY / "check.txt").read_text()


@pytest.mark.skipif(not HAVE_LATEXMK, reason=NO_LATEXMK)
def test_the_cluster_run_builds_the_pdf(cluster_run):
    ws, _, _ = cluster_run
    assert (ws / "paper" / "build" / "main.pdf").read_bytes()[:5] == b"%PDF-"


def test_a_second_cluster_run_does_nothing(cluster_run, cluster):
    ws, _, jobs = cluster_run
    proc = run_on_cluster(ws, cluster, *([] if HAVE_LATEXMK else ["--until", "check"]), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert slurm_jobs(cluster) == jobs


def test_a_cancelled_job_is_reported_as_failed(cluster_run, cluster):
    """scancel on a running benchmark job: snakemake reports the job failed and stops (with
    sacct and no accounting it waited forever). --retries 0: the profile would resubmit it."""
    ws, _, before = cluster_run
    target = f"results/raw/{STUDY}/prompt_length/docs_p8/ar.json"
    args, env = cluster_command(cluster, "--retries", "0", "--forcerun", target, "--until", target)
    proc = subprocess.Popen(args, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        new = {}
        while time.monotonic() < deadline and not new:
            new = {i: s for i, s in slurm_jobs(cluster).items() if i not in before and s == "RUNNING"}
            time.sleep(0.3)
        assert new, f"no job of the forced re-run started running: {slurm_jobs(cluster)}"
        (job_id,) = new
        subprocess.run(["scancel", job_id], env=cluster.env, check=True, timeout=30)
        try:
            out, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail("snakemake did not notice the cancelled job within 180 s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert slurm_jobs(cluster)[job_id] == "CANCELLED"
    assert proc.returncode != 0, out[-3000:]
    assert "Error in rule benchmark" in out and job_id in out, out[-3000:]


def test_a_gpu_study_asks_slurm_for_one_gpu_once(cluster, tmp_path, tiny_models):
    """device cuda: the job asks for the GPU once (--gpus=1, no --gres besides) and SLURM
    allocates the node's (fake) GPU. The job itself then fails here: no CUDA on this machine."""
    copy_workflow(tmp_path)
    cfg = cluster_config(tmp_path, tiny_models["llama"])
    cfg["device"] = "cuda"
    (tmp_path / CONFIG).write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = slurm_jobs(cluster)
    target = f"results/raw/{STUDY}/prompt_length/docs_p8/ar.json"
    proc = run_on_cluster(tmp_path, cluster, "--verbose", "--retries", "0", "--until", target, timeout=300)
    out = proc.stdout + proc.stderr
    calls = [line for line in out.splitlines() if "sbatch call:" in line]
    assert len(calls) == 1, out[-3000:]
    assert "--gpus=1" in calls[0] and "--gres" not in calls[0] and "--exclusive" in calls[0], calls[0]
    (job_id,) = set(slurm_jobs(cluster)) - set(before)
    job = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=cluster.env, capture_output=True,
                         text=True, timeout=30, check=True).stdout
    # one GPU asked for, and the job got its node (a node without a free GPU would leave it PENDING)
    assert "TresPerJob=gres:gpu:1" in job and "NodeList=localnode" in job, job

