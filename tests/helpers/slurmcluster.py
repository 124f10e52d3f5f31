"""A real single-node Slurm cluster for the tests (test_slurm): Debian's munged, slurmctld and slurmd (`make slurm`
installs them) with a generated slurm.conf, state and spool in a temporary folder, inside a network namespace of
their own where only loopback is up, so nothing they open is reachable from another machine (the namespace also has a
bridge without ports, down, holding an address: Slurm asks glibc for IPv4 listening addresses with AI_ADDRCONFIG, which
finds none while loopback's is the only one). Everything that talks
to them (sbatch, scancel, the sweep and its Dask scheduler) runs in that namespace too (`Slurm.command`). Every
process is started here in the foreground and stopped by its PID.

By hand (`make slurm-up`, `make slurm-down`): `python tests/helpers/slurmcluster.py up FOLDER` starts one in FOLDER
and leaves it running, with the PIDs of its processes in FOLDER/pids and the command that runs a program inside it
printed;
`python tests/helpers/slurmcluster.py down FOLDER` stops it by those PIDs and removes FOLDER."""
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scancel", "squeue", "sinfo", "unshare", "nsenter", "ip", "ss")


def missing() -> str:
    """Why no Slurm cluster can start here ('' when one can)."""
    absent = [d for d in DAEMONS if shutil.which(d) is None]
    if absent:
        return f"Slurm not installed ({', '.join(absent)} missing): `make slurm` installs it where root or sudo is"
    if os.geteuid() != 0:
        return "a single-node Slurm cluster needs root (munged, slurmd and the network namespace)"
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:  # e.g. a container without the right
        return "this machine refuses a network namespace (`unshare -n`), which keeps the cluster off the network"
    return ""


def memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 512  # what slurmd finds, less a margin it would refuse
    raise RuntimeError("no MemTotal in /proc/meminfo")


def slurm_conf(folder: Path, host: str) -> str:
    """One node with this machine's CPUs and memory, one default partition; no cgroups (linuxproc, task/none)."""
    return "\n".join([
        "ClusterName=normlib-test", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={folder / 'munge.socket'}",
        f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "MpiDefault=none", "ReturnToService=2",
        "KillWait=5", "SchedulerParameters=sched_interval=1",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb()} State=UNKNOWN",
        f"PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


class Slurm:
    """The running cluster: its folder, its environment (SLURM_CONF) and the processes started here."""

    def __init__(self, folder: Path):
        self.folder, self.procs = folder, []
        self.env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
        self.netns = None

    def command(self, *args) -> list:
        """argv that runs `args` in the cluster's network namespace."""
        return ["nsenter", f"--net={self.netns}", *args]

    def start(self, name: str, *args) -> None:
        log = open(self.folder / f"{name}.out", "w")
        self.procs.append(subprocess.Popen(self.command(*args), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL))
        log.close()

    def run(self, *args, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout)

    def up(self) -> None:
        f, host = self.folder, socket.gethostname().split(".")[0]
        for d in ("state", "spool"):
            (f / d).mkdir()
        (f / "munge.key").write_bytes(os.urandom(1024))
        (f / "munge.key").chmod(0o600)
        (f / "slurm.conf").write_text(slurm_conf(f, host))
        holder = subprocess.Popen(["unshare", "-n", "sleep", "infinity"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # holds no pipe of ours
        self.procs.append(holder)
        self.netns = f"/proc/{holder.pid}/ns/net"
        deadline = time.monotonic() + 10
        while os.readlink(self.netns) == os.readlink("/proc/self/ns/net"):  # unshare has not switched yet
            assert time.monotonic() < deadline, "unshare -n did not make a network namespace"
            time.sleep(0.02)
        for step in (["link", "set", "lo", "up"], ["link", "add", "normlib0", "type", "bridge"],
                     ["addr", "add", "10.255.255.1/32", "dev", "normlib0"]):
            subprocess.run(self.command("ip", *step), check=True, timeout=10)
        up = self.run("ip", "-o", "link", "show", "up").stdout.splitlines()
        assert [line.split(":")[1].strip() for line in up] == ["lo"], up  # no way in or out but loopback
        self.start("munged", "munged", "-F", "--force", f"--socket={f / 'munge.socket'}",
                   f"--key-file={f / 'munge.key'}", f"--pid-file={f / 'munged.pid'}", f"--log-file={f / 'munged.log'}",
                   f"--seed-file={f / 'munge.seed'}")
        self.wait(lambda: (f / "munge.socket").exists(), "munged's socket")
        self.start("slurmctld", "slurmctld", "-D", "-i", "-f", str(f / "slurm.conf"))
        self.start("slurmd", "slurmd", "-D", "-N", host, "-f", str(f / "slurm.conf"))
        self.wait(lambda: "idle" in self.run("sinfo", "-h", "-o", "%t").stdout, "an idle node (sinfo)")

    def wait(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [p.args[2] for p in self.procs[1:] if p.poll() is not None]
            assert not dead and time.monotonic() < deadline, (f"no {what}; ended: {dead}\n" + self.logs())
            time.sleep(0.2)

    def listening(self) -> list:
        """(address, command line) of every TCP socket that listens in the namespace."""
        found = []
        for line in self.run("ss", "-ltnpH").stdout.splitlines():
            pid = line.split("pid=")[1].split(",")[0]
            found.append((line.split()[3], Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()))
        return found

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.folder.glob("*.log"))
                         + sorted(self.folder.glob("*.out")) if p.exists())

    def down(self) -> None:
        """Stop every process started here, by PID: the daemons last to first (their jobs' processes with slurmd),
        then the namespace's holder; first every job is cancelled, as its processes are slurmd's grandchildren."""
        if self.netns and all(p.poll() is None for p in self.procs):
            self.run("scancel", "--partition=test")
            deadline = time.monotonic() + 30
            while self.run("squeue", "-h").stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.2)
        deadline = time.monotonic() + 15  # KillWait, then an orphaned kernel's second to notice its parent's end
        while self.job_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = self.job_processes()
        for pid in survivors:  # a job's process that outlived its job: this fixture's all the same
            os.kill(pid, signal.SIGKILL)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        assert not survivors, f"processes outlived their Slurm jobs (killed now): {survivors}"

    def job_processes(self) -> list:
        """PIDs of the processes of this cluster's jobs still running (they carry its SLURM_CONF and a job id)."""
        mine = f"SLURM_CONF={self.env['SLURM_CONF']}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            try:
                env = (proc / "environ").read_bytes().split(b"\0")
            except OSError:  # not a process, or one that ended
                continue
            if mine in env and any(kv.startswith(b"SLURM_JOB_ID=") for kv in env):
                found.append(int(proc.name))
        return found


class Pid:
    """A process started by an earlier `up`, as Slurm.down handles its own Popen objects: by its PID alone."""

    def __init__(self, pid: int):
        self.pid, self.args = pid, ["", "", f"pid {pid}"]

    def poll(self):
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return 0
        return None

    def send_signal(self, sig) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float = None):
        deadline = time.monotonic() + (timeout or 30)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.1)
        return 0


def up(folder: Path) -> None:
    """A cluster left running in folder; its PIDs in folder/pids (the namespace's holder first)."""
    why = missing()
    if why:
        sys.exit(f"slurm-up: {why}")
    if (folder / "pids").exists():
        sys.exit(f"slurm-up: {folder} holds a cluster already (pids); `make slurm-down` stops it")
    folder.mkdir(parents=True)
    cluster = Slurm(folder.resolve())
    try:
        cluster.up()
    except BaseException:
        cluster.down()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    (folder / "pids").write_text("".join(f"{p.pid}\n" for p in cluster.procs))
    inside = shlex.join(["nsenter", f"--net={cluster.netns}", "env", f"SLURM_CONF={cluster.env['SLURM_CONF']}"])
    print(f"a single-node Slurm cluster runs in {folder} (partition test; loopback only). Run a program inside it:\n"
          f"  {inside} python -m normlib.sweep params/smoke.yaml --out build/slurm-reports --slurm\n"
          f"make slurm-down stops it.")


def down(folder: Path) -> None:
    """Stop the cluster `up` left in folder, by its recorded PIDs, and remove folder."""
    if not (folder / "pids").exists():
        sys.exit(f"slurm-down: no cluster in {folder} (no pids file); nothing to stop")
    pids = [int(line) for line in (folder / "pids").read_text().split()]
    cluster = Slurm(folder.resolve())
    cluster.procs = [Pid(pid) for pid in pids]
    cluster.netns = f"/proc/{pids[0]}/ns/net"
    cluster.down()
    shutil.rmtree(folder)
    print(f"stopped the Slurm cluster of {folder}")


if __name__ == "__main__":
    commands = {"up": up, "down": down}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit("usage: python tests/helpers/slurmcluster.py up|down FOLDER")
    commands[sys.argv[1]](Path(sys.argv[2]))
