"""What else the machine was doing during a measurement (contention telemetry).

    probe = Probe(device, threads)          # just before the timed region
    ...timed generation...
    fields = probe.finish(wall_time_s)      # just after it: a dict stored in the record

Fields (``None`` where the platform does not expose the value):

- ``load_1m_before`` / ``load_1m_after``: the 1-minute load average (``/proc/loadavg``); slow
  to react, kept for the record.
- ``procs_running_before`` / ``procs_running_after``: runnable tasks machine-wide
  (``/proc/stat``), this process's own running threads included.
- ``cpu_time_s``: this process's user + system CPU time during the region (all threads);
  ``cpu_utilisation`` = cpu_time_s / wall time (up to the thread count).
- ``other_cpu_fraction``: CPU time that other processes used during the region, as a fraction
  of the machine's capacity: (busy jiffies of all CPUs / CLK_TCK - own CPU time) / (wall time x
  CPUs), clamped to [0, 1]. Jiffies tick at 100 Hz, so short regions read with ~10 ms granularity.
- ``steal_fraction``: share of CPU time the hypervisor gave to other guests (``steal`` in
  ``/proc/stat``) during the region.
- ``cpu_mhz``: mean current frequency over the CPUs (cpufreq, else ``/proc/cpuinfo``).
- GPU (CUDA, where ``pynvml`` is installed): ``gpu_other_processes`` (compute processes on the
  device other than this one), ``gpu_sm_clock_mhz``, ``gpu_mem_clock_mhz``,
  ``gpu_utilisation_pct``; ``gpu_telemetry`` says why they are missing otherwise.

``busy(fields)`` is the one definition of a busy measurement, used by ``check``'s
``contention`` rule: other processes used more than ``OTHER_CPU_BUSY`` of the machine, or the
hypervisor stole more than ``STEAL_BUSY``, or another process ran on the GPU.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

OTHER_CPU_BUSY = 0.10
STEAL_BUSY = 0.05
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _stat() -> tuple[list[int] | None, int | None]:
    """(aggregate cpu jiffies [user nice system idle iowait irq softirq steal], procs_running)."""
    text = _read("/proc/stat")
    if text is None:
        return None, None
    cpu, running = None, None
    for line in text.splitlines():
        if line.startswith("cpu "):
            cpu = [int(x) for x in line.split()[1:9]]
        elif line.startswith("procs_running"):
            running = int(line.split()[1])
    return cpu, running


def _load_1m() -> float | None:
    text = _read("/proc/loadavg")
    return float(text.split()[0]) if text else None


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_mhz() -> float | None:
    freqs = []
    for path in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        text = _read(str(path))
        if text and text.strip().isdigit():
            freqs.append(int(text) / 1000)
    if not freqs:
        text = _read("/proc/cpuinfo") or ""
        freqs = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    return round(sum(freqs) / len(freqs), 1) if freqs else None


def _gpu_fields(device) -> dict:
    try:
        import pynvml
    except ImportError:
        return {"gpu_telemetry": "pynvml not installed (pip install nvidia-ml-py)"}
    try:
        import torch

        pynvml.nvmlInit()
        index = device.index if device.index is not None else torch.cuda.current_device()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        others = [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid != os.getpid()]
        return {"gpu_other_processes": len(others),
                "gpu_sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                "gpu_mem_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
                "gpu_utilisation_pct": pynvml.nvmlDeviceGetUtilizationRates(handle).gpu}
    except Exception as exc:  # NVML present but refusing: say why, never guess
        return {"gpu_telemetry": f"NVML error: {type(exc).__name__}: {exc}"}


class Probe:
    """Readings at the start of a region; ``finish`` takes the end readings and the deltas."""

    def __init__(self, device, threads: int):
        self.device = device
        self.threads = threads
        self.load_before = _load_1m()
        self.cpu_before, self.running_before = _stat()
        self.mhz_before = cpu_mhz()
        self.own_before = _own_cpu_s()

    def finish(self, wall_time_s: float) -> dict:
        own = _own_cpu_s() - self.own_before
        cpu_after, running_after = _stat()
        mhz_after = cpu_mhz()
        fields = {
            "load_1m_before": self.load_before, "load_1m_after": _load_1m(),
            "procs_running_before": self.running_before, "procs_running_after": running_after,
            "cpu_time_s": own, "cpu_utilisation": own / wall_time_s if wall_time_s > 0 else None,
            "other_cpu_fraction": None, "steal_fraction": None,
            "cpu_mhz": (None if self.mhz_before is None or mhz_after is None
                        else round((self.mhz_before + mhz_after) / 2, 1)),
        }
        if self.cpu_before is not None and cpu_after is not None and wall_time_s > 0:
            delta = [a - b for a, b in zip(cpu_after, self.cpu_before)]
            total = sum(delta)
            busy_s = (delta[0] + delta[1] + delta[2] + delta[5] + delta[6]) / _CLK_TCK
            cpus = os.cpu_count() or 1
            # clamped to [0, 1]: jiffies tick at 100 Hz, so a region of a few ms can read a whole tick
            fields["other_cpu_fraction"] = min(max(busy_s - own, 0.0) / (wall_time_s * cpus), 1.0)
            fields["steal_fraction"] = delta[7] / total if total > 0 else 0.0
        if self.device.type == "cuda":
            fields.update(_gpu_fields(self.device))
        return fields


def busy(fields: dict | None) -> str | None:
    """Why a measurement counts as contended, or None (also None when nothing was recorded)."""
    if not fields:
        return None
    reasons = []
    other, steal = fields.get("other_cpu_fraction"), fields.get("steal_fraction")
    if other is not None and other > OTHER_CPU_BUSY:
        reasons.append(f"other processes used {other:.0%} of the CPUs (limit {OTHER_CPU_BUSY:.0%})")
    if steal is not None and steal > STEAL_BUSY:
        reasons.append(f"the hypervisor stole {steal:.0%} of CPU time (limit {STEAL_BUSY:.0%})")
    if fields.get("gpu_other_processes"):
        reasons.append(f"{fields['gpu_other_processes']} other process(es) on the GPU")
    return "; ".join(reasons) or None
