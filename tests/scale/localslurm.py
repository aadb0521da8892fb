"""A single-node Slurm cluster on this machine, for tests: munged, slurmctld and slurmd
from Debian's packages (munge, slurm-wlm), each started here in a temporary directory
with its own key, sockets, ports and state, and stopped on exit. Runs as root (the
daemons need it); nothing of the machine's own configuration is used or changed.

    with LocalSlurm() as slurm:
        subprocess.run(["sbatch", ...], env=slurm.env)
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self, cpus=None, timeout=60):
        self.cpus = cpus or os.cpu_count()
        self.timeout = timeout
        self.procs = []
        self.logfiles = []

    def missing(self):
        """Why this machine cannot run it, or None."""
        for tool in ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo"):
            if not shutil.which(tool):
                return f"{tool} is not installed (packages munge, slurm-wlm)"
        if os.geteuid() != 0:
            return "the Slurm daemons need root"
        return None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="qs-slurm-")
        os.chmod(self.tmp, 0o700)
        d = self.tmp
        for sub in ("state", "spool", "munge"):
            os.makedirs(os.path.join(d, sub), mode=0o700)
        key = os.path.join(d, "munge", "munge.key")
        subprocess.run(["mungekey", "--create", "--keyfile", key], check=True, capture_output=True)
        self.socket = os.path.join(d, "munge", "munge.socket")
        self._start(["munged", "--foreground", "--force", "--key-file", key, "--socket", self.socket,
                     "--pid-file", os.path.join(d, "munge", "munged.pid"), "--log-file", os.path.join(d, "munged.log"),
                     "--seed-file", os.path.join(d, "munge", "munged.seed")], "munged")
        self._wait(lambda: os.path.exists(self.socket), "munged's socket")
        host = socket.gethostname().split(".")[0]
        conf = os.path.join(d, "slurm.conf")
        with open(conf, "w") as f:
            f.write(f"""ClusterName=qstest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={self.socket}
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=qsnode NodeHostname={host} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN
PartitionName=qs Nodes=qsnode Default=YES MaxTime=INFINITE State=UP
""")
        self.env = dict(os.environ, SLURM_CONF=conf)
        self._start(["slurmctld", "-D", "-i", "-f", conf], "slurmctld")
        self._start(["slurmd", "-D", "-N", "qsnode", "-f", conf], "slurmd")

        def idle():
            r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True)
            return r.returncode == 0 and r.stdout.strip() in ("idle", "mixed", "allocated")
        self._wait(idle, "the node to come up")
        return self

    def _start(self, argv, name):
        log = open(os.path.join(self.tmp, name + ".out"), "w")
        self.logfiles.append(log)
        self.procs.append((name, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                  env=getattr(self, "env", None), start_new_session=True)))

    def _wait(self, ready, what):
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}):\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}:\n{self.logs()}")

    def logs(self):
        text = ""
        for name in ("munged.log", "slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out", "munged.out"):
            path = os.path.join(self.tmp, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f"--- {name}\n" + "".join(f.readlines()[-15:])
        return text

    def __exit__(self, *exc):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for log in self.logfiles:
            log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False
