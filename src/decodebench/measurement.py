"""Timing and peak memory, measured the one way every method uses.

A measurement brackets one generation:

    tracker = Tracker(device)
    with tracker.measure() as m:
        ...generate...             # the method calls m.commit(n) each time it commits n tokens
    m.wall_time_s, m.latency(), m.peak_memory_mib, m.peak_memory_overhead_mib, m.telemetry

Timing: ``time.perf_counter()`` read after ``torch.cuda.synchronize()`` on CUDA, so queued
kernels are inside the interval. Commit times are read without a synchronisation: every
method calls ``commit`` right after it has copied the committed ids to the host (``.tolist()``,
``int(...)``), which already waits for the device, so the timed path has no synchronisation
that AR's lacks. Each committed token gets the time of the commit that produced it;
``latency`` derives TTFT, TPOT and its percentiles from those times (one definition for
every method, see ``Latency``).

Clean baselines: before the baseline is read, the garbage collector runs (a previous
generation's reference cycles would otherwise hold its caches, and their collection could
land inside the timed region); during the region the collector is disabled. On CUDA the
caching allocator's free blocks are released first (``empty_cache``), so ``reserved`` starts
from what is live.

Peak memory is a true peak, never a reading taken after the tensors were freed:

- CUDA: ``reset_peak_memory_stats()`` before; ``max_memory_allocated()`` and
  ``max_memory_reserved()`` after. The baseline is ``memory_allocated()`` just before.
- CPU (Linux): the process's resident high-water mark is reset by writing ``5`` to
  ``/proc/self/clear_refs`` and read as ``VmHWM`` from ``/proc/self/status``. The baseline
  is ``VmRSS`` just before. Where the reset is refused (some sandboxes), a thread samples
  ``VmRSS`` every millisecond instead and the measurement is flagged ``memory_exact=False``.
  Before the baseline is read, freed heap that glibc keeps in its arenas is returned to the
  kernel (``malloc_trim(0)``); otherwise a warmup's freed buffers would already be resident,
  generation would reuse them without raising the high-water mark, and the overhead would
  read 0 MiB: the very error this tracker exists to prevent.

Precision on CPU: the kernel keeps RSS in per-CPU counters that are folded into the total in
batches (``percpu_counter_batch`` = max(32, 2 x CPUs) pages per CPU), and it records the
high-water mark from the folded total, so ``VmHWM`` can lag the true peak by up to one batch
per CPU and counter (anon, file, shmem): ``hwm_precision_mib()``, 0.75 MiB on 2 CPUs.

``peak_memory_mib`` is the total peak (weights included); ``peak_memory_overhead_mib`` is the
peak minus the baseline, i.e. what generation itself added. On CPU the baseline's resident
memory is also recorded split into anonymous and file-backed pages (``RssAnon``, ``RssFile``):
models are loaded into anonymous memory (``models.load_model``), so the total does not depend
on which pages of a memory-mapped weights file the page cache happens to hold.

Contention: every measurement carries ``telemetry`` (``decodebench.telemetry``): what else the
machine was doing while it ran.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import telemetry
from .latency import PERCENTILES, Latency  # noqa: F401  (re-exported)

MIB = 1024 * 1024
_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    for line in _PROC_STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{_PROC_STATUS}: field {key} not found")


def _load_libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _load_libc()


def release_free_heap() -> None:
    """Return freed malloc arenas to the kernel, so that RSS counts live memory only."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def hwm_precision_mib() -> float:
    """Bound on how far the kernel's VmHWM can lag the true resident peak on this machine (see
    above; the formula is ``memory_model.hwm_precision_mib``)."""
    from .memory_model import hwm_precision_mib as bound

    return bound(os.cpu_count() or 1, os.sysconf("SC_PAGE_SIZE"))


def current_rss_bytes() -> int:
    return _status_kb("VmRSS")


def can_reset_hwm() -> bool:
    """Whether the kernel lets this process reset its resident high-water mark."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


class _RssSampler:
    """Fallback when VmHWM cannot be reset: sample VmRSS in a thread (inexact)."""

    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_bytes())
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self.peak = current_rss_bytes()
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, current_rss_bytes())




@dataclass
class Measurement:
    """One measured region. Times in seconds, memory in MiB (1024**2 bytes)."""

    device: torch.device
    start: float = 0.0
    end: float = 0.0
    commit_times: list[float] = field(default_factory=list)  # perf_counter of each commit
    commit_tokens: list[int] = field(default_factory=list)  # tokens committed at each
    peak_memory_mib: float = 0.0
    peak_memory_overhead_mib: float = 0.0
    baseline_memory_mib: float = 0.0
    baseline_rss_anon_mib: float | None = None
    baseline_rss_file_mib: float | None = None
    peak_reserved_mib: float | None = None
    memory_exact: bool = True
    memory_kind: str = ""
    telemetry: dict | None = None

    def commit(self, tokens: int) -> None:
        """Called by the method each time it commits `tokens` new tokens (after reading them
        on the host; no synchronisation here, see the module docstring)."""
        self.commit_times.append(time.perf_counter())
        self.commit_tokens.append(int(tokens))

    @property
    def wall_time_s(self) -> float:
        return self.end - self.start

    @property
    def commit_times_s(self) -> list[float]:
        """Commit times relative to the region's start."""
        return [t - self.start for t in self.commit_times]

    def latency(self) -> Latency:
        return Latency.from_commits(self.commit_times_s, self.commit_tokens)

    @property
    def ttft_s(self) -> float | None:
        return self.latency().ttft_s


class Unmeasured:
    """The clock of a generation outside any timed region: commits are not recorded."""

    def commit(self, tokens: int) -> None:
        pass


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_split_mib() -> tuple[float | None, float | None]:
    try:
        return _status_kb("RssAnon") / MIB, _status_kb("RssFile") / MIB
    except RuntimeError:
        return None, None


def settle(device: torch.device) -> None:
    """Collect garbage and release freed memory, so the next baseline counts live memory only."""
    gc.collect()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    else:
        release_free_heap()


class Tracker:
    """Measures wall time, commit times, peak memory and contention telemetry of a region."""

    def __init__(self, device: torch.device | str, threads: int | None = None):
        self.device = torch.device(device)
        self.threads = threads or torch.get_num_threads()
        if self.device.type == "cuda":
            self.memory_kind = "cuda_allocated"
            self.memory_exact = True
        elif _PROC_STATUS.exists():
            self.memory_kind = "process_rss"
            self.memory_exact = can_reset_hwm()
        else:
            raise RuntimeError(
                "CPU peak memory needs Linux /proc/self/status; this platform has none, "
                "so no honest peak can be measured here"
            )

    @contextlib.contextmanager
    def measure(self):
        m = Measurement(device=self.device, memory_exact=self.memory_exact, memory_kind=self.memory_kind)
        sampler = None
        settle(self.device)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
                baseline = torch.cuda.memory_allocated(self.device)
            else:
                if self.memory_exact:
                    _CLEAR_REFS.write_text("5")  # VmHWM := VmRSS now; the baseline is read after it
                else:
                    sampler = _RssSampler()
                    sampler.start()
                baseline = current_rss_bytes()
                m.baseline_rss_anon_mib, m.baseline_rss_file_mib = _rss_split_mib()
            probe = telemetry.Probe(self.device, self.threads)
            m.start = time.perf_counter()
            try:
                yield m
            finally:
                synchronize(self.device)
                m.end = time.perf_counter()
                m.telemetry = probe.finish(m.wall_time_s)
                if self.device.type == "cuda":
                    peak = torch.cuda.max_memory_allocated(self.device)
                    m.peak_reserved_mib = torch.cuda.max_memory_reserved(self.device) / MIB
                elif sampler is not None:
                    peak = sampler.stop()
                else:
                    peak = _status_kb("VmHWM")
                m.baseline_memory_mib = baseline / MIB
                m.peak_memory_mib = peak / MIB
                m.peak_memory_overhead_mib = max(peak - baseline, 0) / MIB
        finally:
            if gc_was_enabled:
                gc.enable()
