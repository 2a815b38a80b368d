"""A throwaway one-node SLURM cluster on this machine, for tests and for trying profiles/slurm.

Installs nothing: where munged, slurmctld and slurmd exist (Debian: `apt-get install munge
slurmctld slurmd slurm-client`; `make test` installs them as root), it writes a one-node
slurm.conf into a temporary folder (no accounting, squeue-friendly MinJobAge, one fake GPU as a
gres with File=/dev/null, one partition that is not the default, so a job must name it), starts
munged, slurmctld and slurmd as child processes on free localhost ports, waits until sinfo
shows the node idle, and stops them by pid at the end. Needs root (slurmd starts jobs as their
user). Clients find it through SLURM_CONF and an srun wrapper on PATH (see `env`).

    with SlurmCluster(workdir) as cluster:    # or: python tests/slurm_cluster.py [--default-partition]
        subprocess.run(["sinfo"], env=cluster.env)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "srun", "scontrol")
PARTITION = "decodebench-test"
NODE = "localnode"


def missing() -> str | None:
    """Why no cluster can be started here, or None when it can."""
    absent = [p for p in DAEMONS + CLIENTS if not _which(p)]
    if absent:
        return (f"SLURM is not installed ({', '.join(absent)} missing): as root on Debian/Ubuntu, "
                f"`apt-get install munge slurmctld slurmd slurm-client` (`make test` does it)")
    if os.geteuid() != 0:
        return "a test SLURM cluster needs root (slurmd runs jobs as their user)"
    return None


def _which(program: str) -> str | None:
    return shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 2048


class SlurmCluster:
    def __init__(self, root: Path | None = None, cpus: int | None = None, memory_mib: int | None = None,
                 default_partition: bool = False):
        self.own_root = root is None  # a temporary folder of its own, removed by stop()
        self.root = Path(root or tempfile.mkdtemp(prefix="slurm-"))
        self.cpus = cpus or os.cpu_count() or 1
        # Less than the machine has: slurmd drains a node that has less than it claims.
        self.memory_mib = memory_mib or min(4000, _memory_mib() // 2)
        self.partition = PARTITION
        # Not the default by default: a job that names no partition is rejected.
        self.default_partition = default_partition
        self.node = NODE
        self.processes: dict[str, subprocess.Popen] = {}
        self.conf = self.root / "slurm.conf"
        self.bin = self.root / "bin"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf),
                    "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"}

    def write_config(self) -> None:
        r = self.root
        for d in ("state", "spool", "munge", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r, 0o700)
        os.chmod(r / "munge", 0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        host = socket.gethostname().split(".")[0]
        self.socket = r / "munge" / "munge.socket"
        self.conf.write_text(f"""# one-node test cluster (tests/slurm_cluster.py)
ClusterName=decodebench
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue must still see a finished job when snakemake asks (profiles/slurm: >= 120 s).
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName={self.node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mib} Gres=gpu:1 State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default={"YES" if self.default_partition else "NO"} MaxTime=INFINITE State=UP
""")
        # The SLURM plugin's job step drops every SLURM_* variable (SLURM_CONF too) before it
        # calls srun; a real cluster's srun finds /etc/slurm/slurm.conf, ours is told here.
        self.bin.mkdir(exist_ok=True)
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {_which("srun")} "$@"\n')
        srun.chmod(0o755)
        (r / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n")

    def start(self, timeout_s: float = 60) -> SlurmCluster:
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.write_config()
        try:
            self._start(timeout_s)
        except BaseException:
            self.stop()  # no daemon outlives a failed start
            raise
        return self

    def _start(self, timeout_s: float) -> None:
        r, log = self.root, self.root / "log"
        self._spawn("munged", [_which("munged"), "--foreground", "--force", f"--socket={self.socket}",
                               f"--key-file={r}/munge/munge.key", f"--pid-file={r}/munge/munged.pid",
                               f"--log-file={log}/munged.log", f"--seed-file={r}/munge/munge.seed"])
        self._wait(lambda: self.socket.exists(), 10, "munged did not create its socket")
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-c", "-f", str(self.conf)])
        self._spawn("slurmd", [_which("slurmd"), "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait(self.idle, timeout_s, "the node did not become idle")

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "w")
        self.processes[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                                start_new_session=True)

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited: {self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} within {timeout_s:.0f} s: {self.logs()}")

    def sinfo_state(self) -> str:
        proc = subprocess.run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%t"], env=self.env,
                              capture_output=True, text=True, timeout=10)
        return proc.stdout.strip()

    def idle(self) -> bool:
        return self.sinfo_state() == "idle"

    def logs(self, lines: int = 15) -> str:
        out = []
        for f in sorted((self.root / "log").glob("*")):
            tail = f.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {f.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop the daemons this object started, by pid, slurmd first."""
        for name in reversed(list(self.processes)):
            p = self.processes[name]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.processes.clear()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    # Try it by hand: starts the cluster, prints how to reach it, stops it on Enter or Ctrl-C.
    reason = missing()
    if reason:
        sys.exit(reason)
    with SlurmCluster(default_partition="--default-partition" in sys.argv) as cluster:
        print(f"node {cluster.node} idle in partition {cluster.partition}; in another shell:\n"
              f"  export SLURM_CONF={cluster.conf} PATH={cluster.bin}:$PATH\n  sinfo\nPress Enter to stop.")
        try:
            input()
        except (KeyboardInterrupt, EOFError):
            pass
