"""A real Slurm test cluster for Kiln's end-to-end tests.

SlurmCluster drives scripts/slurm-cluster.sh (docs/slurm-cluster.md): munged,
slurmctld, static nodes node1..node3 and power-saved CLOUD nodes cloud1,
cloud2, all in a private state directory on private loopback ports, so
several test runs can share a machine. Every Slurm client call goes through
run() (or env()), which sets SLURM_CONF: without it the 22.05 clients look
the controller up in DNS, off this machine.

    with SlurmCluster() as cluster:
        job = cluster.sbatch(["-p", "production"], "/path/job.sh")
        cluster.wait_job_state(job, "COMPLETED", timeout=30)

Needs root and the Debian packages munge and slurm-wlm
(scripts/install-deps.sh); without them start() raises SlurmMissing, a
failure rather than a skip.
"""

import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time

import kiln_test as kt

# Ports a cluster uses: slurmctld on the base, five slurmd above it.
PORTS_PER_CLUSTER = 6
STATIC_NODES = ("node1", "node2", "node3")
CLOUD_NODES = ("cloud1", "cloud2")
# Programs the cluster and the tests need (client and daemons).
REQUIRED_PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue",
                     "sinfo", "scontrol", "scancel")
# Where Debian puts the daemons; a non-root PATH may lack these.
SBIN_DIRS = ("/usr/sbin", "/sbin")


class SlurmMissing(RuntimeError):
    """Slurm or munge is not installed on this machine."""


class SlurmCommandError(RuntimeError):
    """A Slurm client or the cluster script failed; the message holds its
    command line, exit status and stderr."""

    def __init__(self, argv, returncode, stdout, stderr):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"{' '.join(self.argv)} exited {returncode}\n"
            f"stderr:\n{stderr.strip()}\nstdout:\n{stdout.strip()}")


def cluster_script():
    return os.path.join(kt.source_dir(), "scripts", "slurm-cluster.sh")


def _search_path():
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(dirs + [d for d in SBIN_DIRS if d not in dirs])


def missing_programs():
    """The REQUIRED_PROGRAMS not found on PATH (or in /usr/sbin, /sbin)."""
    path = _search_path()
    return [p for p in REQUIRED_PROGRAMS if shutil.which(p, path=path) is None]


def require_slurm():
    """Raise SlurmMissing naming the install script when Slurm is absent."""
    missing = missing_programs()
    if missing:
        raise SlurmMissing(
            f"Slurm test cluster: {', '.join(missing)} not installed; run "
            f"scripts/install-deps.sh (installs munge and slurm-wlm)")


def _port_free(port):
    """True when nothing is bound to TCP `port` on any address (the daemons
    bind 0.0.0.0, so that is what has to be free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the daemons do: a port held only by TIME_WAIT connections is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def pick_port_base(tries=200):
    """A random base port in 17000-29990 with PORTS_PER_CLUSTER free ports
    above it: below Linux's ephemeral range (outgoing connections will not
    take them) and away from the script's default 16900, left to clusters
    started by hand."""
    for _ in range(tries):
        base = random.randrange(17000, 29990, 10)
        if all(_port_free(base + i) for i in range(PORTS_PER_CLUSTER)):
            return base
    raise RuntimeError("no free block of loopback ports for a Slurm cluster")


def parse_records(text):
    """`scontrol show ... -o` output -> one dict per line. Values may hold
    spaces (Reason=..., Comment=...): a value runs to the next ` Key=`."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        fields = {}
        matches = list(re.finditer(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=", line))
        for i, m in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
            fields.setdefault(m.group(1), line[m.end():end].strip())
        records.append(fields)
    return records


class SlurmCluster:
    """One private Slurm cluster; start() it, or use it as a context manager.

    state_dir: where everything lives; default a fresh temporary directory,
    deleted again by stop(). port_base: slurmctld's port (nodes above it);
    default: a free block found by probing. extra_env: more KILN_SLURM_*
    knobs for the script (e.g. {"KILN_SLURM_SUSPEND_TIME": "10"}).
    """

    def __init__(self, state_dir=None, port_base=None, extra_env=None):
        self._own_state = state_dir is None
        self.state_dir = state_dir
        self.port_base = port_base
        self.extra_env = dict(extra_env or {})
        self.conf = None
        self.start_seconds = None
        self.start_log = ""

    # ---------------------------------------------------------- lifecycle
    def start(self):
        require_slurm()
        if self.state_dir is None:
            self.state_dir = tempfile.mkdtemp(prefix="kiln-slurm-")
        pick = self.port_base is None
        t0 = time.monotonic()
        for attempt in range(3):
            if pick:
                self.port_base = pick_port_base()
            try:
                out = self.script("start", timeout=120)
                break
            except SlurmCommandError as e:
                # Another cluster took a probed port before our daemons bound it.
                if pick and attempt < 2 and "in use" in e.stderr:
                    continue
                self._cleanup_after_failed_start()
                raise
            except BaseException:
                self._cleanup_after_failed_start()
                raise
        self.start_seconds = time.monotonic() - t0
        last = out.strip().splitlines()[-1] if out.strip() else ""
        m = re.fullmatch(r"export SLURM_CONF=(\S+)", last)
        if not m:
            self.stop()
            raise RuntimeError(f"slurm-cluster.sh start printed no SLURM_CONF: {out!r}")
        self.conf = m.group(1)
        return self

    def _cleanup_after_failed_start(self):
        # The script stops what it started when it fails, but not when it is
        # killed (timeout, ^C): stop by the recorded PIDs, and wipe our dir.
        try:
            self.stop()
        except Exception:
            pass

    def stop(self):
        """Stop every daemon (and left-over job) of this cluster; delete the
        state directory when this object created it. Safe to call twice."""
        if self.state_dir is None or not os.path.isdir(self.state_dir):
            return
        args = ["stop"] + (["--wipe"] if self._own_state else [])
        self.script(*args, timeout=60)
        self.conf = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---------------------------------------------------------- commands
    def script(self, *args, timeout=60):
        """Run scripts/slurm-cluster.sh for this cluster; returns stdout.
        Its stderr (progress, timings) is kept in self.start_log for start."""
        argv = ["bash", cluster_script(), "--state", self.state_dir,
                "--port-base", str(self.port_base), *args]
        env = dict(os.environ, PATH=_search_path(), **self.extra_env)
        env.pop("SLURM_CONF", None)
        p = subprocess.run(argv, env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if args and args[0] == "start":
            self.start_log = p.stderr
        if p.returncode != 0:
            raise SlurmCommandError(argv, p.returncode, p.stdout, p.stderr)
        return p.stdout

    def env(self):
        """os.environ plus this cluster's SLURM_CONF (and /usr/sbin on PATH)."""
        if not self.conf:
            raise RuntimeError("Slurm cluster not started")
        return dict(os.environ, SLURM_CONF=self.conf, PATH=_search_path())

    def run(self, *argv, check=True, timeout=30):
        """Run a Slurm client (squeue, sinfo, scontrol, sbatch, scancel...)
        against this cluster; returns its stdout."""
        p = subprocess.run(list(argv), env=self.env(), capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise SlurmCommandError(argv, p.returncode, p.stdout, p.stderr)
        return p.stdout

    def sbatch(self, args, script_path, *script_args):
        """Submit script_path with sbatch options `args` (a list, never a
        shell string); returns the job id (for an array, the array's id)."""
        out = self.run("sbatch", "--parsable", *args, script_path, *script_args)
        return out.strip().split(";")[0]

    def scancel(self, *job_ids):
        if job_ids:
            self.run("scancel", *job_ids, check=False)

    # ---------------------------------------------------------- nodes
    def node_state(self, name):
        """The node's state as sinfo %T prints it: idle, mixed, allocated,
        with a suffix for power and health (idle~ powered down, idle#
        powering up, idle% powering down, down* not responding). "" when
        sinfo does not know the node."""
        out = self.run("sinfo", "-h", "-N", "-n", name, "-o", "%T", check=False)
        lines = out.split()
        return lines[0] if lines else ""

    def wait_node_state(self, name, states, timeout=60, poll=0.2):
        """Poll until node_state(name) is one of `states` (a string or a
        collection); returns it. Raises AssertionError with the states seen."""
        wanted = {states} if isinstance(states, str) else set(states)
        return self._wait(lambda: self.node_state(name), wanted, timeout, poll,
                          f"node {name}")

    def kill_node(self, name, keep_jobs=False):
        """Crash static node `name`: SIGKILL its slurmd and its job steps
        (keep_jobs: only slurmd)."""
        self.script("kill-node", name, *(["--keep-jobs"] if keep_jobs else []))

    def start_node(self, name):
        """Start static node `name`'s slurmd again (waits for registration)."""
        self.script("start-node", name, timeout=60)

    def recorded_pids(self):
        """{daemon name: pid} from the state directory's pids file, e.g.
        "slurmd-cloud1" while that cloud node is powered up."""
        pids = {}
        try:
            with open(os.path.join(self.state_dir, "pids")) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2:
                        pids[parts[0]] = int(parts[1])
        except FileNotFoundError:
            pass
        return pids

    def log_path(self, name):
        """Path of a log in the state dir: slurmctld.log, slurmd-node1.log,
        power.log (resume/suspend), jobcomp.txt..."""
        return os.path.join(self.state_dir, "log", name)

    # ---------------------------------------------------------- jobs
    def jobs(self, job_id):
        """scontrol show job -o JOB_ID as dicts: one per job, or one per array
        task for an array id. [] once the job is gone (MinJobAge=600 s)."""
        out = self.run("scontrol", "show", "job", "-o", str(job_id), check=False)
        return parse_records(out)

    def job(self, job_id):
        records = self.jobs(job_id)
        if not records:
            raise AssertionError(f"job {job_id} unknown to slurmctld")
        return records[0]

    def job_state(self, job_id):
        return self.job(job_id).get("JobState", "")

    def wait_job_state(self, job_id, states, timeout=60, poll=0.2):
        """Poll until job_state(job_id) is one of `states`; returns the job
        record. Raises AssertionError with the states seen."""
        wanted = {states} if isinstance(states, str) else set(states)
        self._wait(lambda: self.job_state(job_id), wanted, timeout, poll,
                   f"job {job_id}")
        return self.job(job_id)

    def wait(self, predicate, timeout, what, poll=0.2):
        """Poll predicate() until it returns something true; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(poll)

    def _wait(self, get, wanted, timeout, poll, what):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            value = get()
            if not seen or seen[-1] != value:
                seen.append(value)
            if value in wanted:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{what} not in {sorted(wanted)} after {timeout} s; "
                    f"states seen: {' -> '.join(seen)}")
            time.sleep(poll)
