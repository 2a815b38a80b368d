"""Where and with what a result was produced: device, library versions, git state, code hash."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Environment variables that change performance; recorded when set.
PERFORMANCE_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY",
                   "KMP_AFFINITY", "GOMP_CPU_AFFINITY", "CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING",
                   "PYTORCH_CUDA_ALLOC_CONF", "LD_PRELOAD", "TORCH_NUM_THREADS", "ATEN_CPU_CAPABILITY")


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def total_ram_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def nvidia_driver() -> str | None:
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    for word in text.split():
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    return None


def _blas(torch) -> str | None:
    """The BLAS / oneDNN lines of torch's build configuration."""
    import re

    config = torch.__config__.show()
    keep = re.findall(r"(?:BLAS_INFO|LAPACK_INFO|USE_MKLDNN|USE_OPENMP)=[^,\s]*", config)
    keep += [m.group(0) for m in [re.search(r"(MKL-DNN|oneDNN) v[\d.]+", config)] if m]
    return ", ".join(keep) or None


def environment(device: str, dtype: str, memory_kind: str | None) -> dict:
    import torch
    import transformers

    from . import __version__

    is_cuda = device == "cuda"
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name() if is_cuda else cpu_model(),
        "threads": torch.get_num_threads(),
        "dtype": dtype,
        "memory_kind": memory_kind,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "decodebench": __version__,
        "platform": platform.platform(),
        "cuda": torch.version.cuda if is_cuda else None,
        "cpu_count": os.cpu_count(),
        "total_ram_mib": total_ram_mib(),
        "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "gpu_memory_mib": (round(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 2**20, 1)
                          if is_cuda else None),
        "driver": nvidia_driver() if is_cuda else None,
        "cudnn": str(torch.backends.cudnn.version()) if is_cuda and torch.backends.cudnn.is_available() else None,
        "accelerate": _version("accelerate"),
        "tokenizers": _version("tokenizers"),
        "safetensors": _version("safetensors"),
        "numpy": _version("numpy"),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": _blas(torch),
        "env": {k: os.environ[k] for k in PERFORMANCE_ENV if k in os.environ},
    }


# The SLURM job a result was measured in: field -> environment variable (set by sbatch/srun).
SLURM_ENV = {
    "job_id": "SLURM_JOB_ID", "step_id": "SLURM_STEP_ID", "cluster": "SLURM_CLUSTER_NAME",
    "partition": "SLURM_JOB_PARTITION", "account": "SLURM_JOB_ACCOUNT", "node": "SLURMD_NODENAME",
    "nodelist": "SLURM_JOB_NODELIST", "cpus_per_task": "SLURM_CPUS_PER_TASK", "cpus_on_node": "SLURM_CPUS_ON_NODE",
    "mem_per_node_mb": "SLURM_MEM_PER_NODE", "mem_per_cpu_mb": "SLURM_MEM_PER_CPU", "gpus": "SLURM_JOB_GPUS",
    "gpus_on_node": "SLURM_GPUS_ON_NODE",
}
# ... and from `scontrol show job`: field -> key. The job's whole allocation (a job step, as
# Snakemake's SLURM plugin runs each job, sees only some of it in its environment).
# scontrol 22.05 calls the allocation TRES, later versions also AllocTRES.
SLURM_JOB_FIELDS = {"alloc_tres": ("AllocTRES", "TRES"), "oversubscribe": ("OverSubscribe",),
                    "time_limit": ("TimeLimit",)}


def _scontrol_job(job_id: str) -> dict[str, str]:
    """`scontrol show job -o <id>` as {key: value}; {} when scontrol cannot answer."""
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:
        return {}
    return dict(word.split("=", 1) for word in out.stdout.split() if "=" in word)


def scheduler(environ=None, scontrol=_scontrol_job) -> dict | None:
    """The batch job a result was measured in (job id, node, allocated cores, memory, GPUs,
    whether it shared its node), or None outside a scheduler. Only SLURM is recognised; what
    SLURM did not say is None."""
    environ = os.environ if environ is None else environ
    job_id = environ.get("SLURM_JOB_ID")
    if not job_id:
        return None
    job = scontrol(job_id)
    return {"name": "slurm", **{field: environ.get(var) for field, var in SLURM_ENV.items()},
            **{field: next((job[k] for k in keys if k in job), None) for field, keys in SLURM_JOB_FIELDS.items()}}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty): dirty when tracked files differ from the commit or files that git does
    not ignore are untracked (ignored outputs such as results/ and resources/ do not count)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=normal")
    return commit, (bool(status) if status is not None else None)


@lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 over the library's source files: changes when the code that measures changes."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
