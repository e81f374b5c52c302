"""Starts and stops a real `kiln serve` for the end-to-end tests of the warm
cluster (docs/cluster.md), and talks to its native API.

    with KilnServer(self) as srv:        # config + state in a temp dir
        step = srv.submit(l7_definition("l7"))
        step = srv.wait_step(step["id"])

A KilnServer writes its own kiln.toml (a free loopback port, a temp state
dir, the demo tokens), starts `kiln serve --config` and waits for /readyz.
Stopping is by PID: SIGTERM, then SIGKILL after a grace. The test process
makes itself a child subreaper, so workers and task processes orphaned by a
killed server become its children and are found and killed by PID too:
a test never leaves a process behind.
"""

import ctypes
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import kiln_test as kt

# The demo tokens examples/kiln.toml hashes.
PRODUCTION_TOKEN = "kiln-demo-production"
STAGING_TOKEN = "kiln-demo-staging"

TERMINAL = ("COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")

# Seconds `kiln serve` may take to answer /readyz 200 after it was started.
READY_TIMEOUT = 60

_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper():
    """Orphans of our descendants are re-parented to this process instead of
    init, so they stay findable (and killable by PID) from here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


_become_subreaper()


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def free_port():
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_table():
    """{pid: (ppid, argv list)} of the processes visible in /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                stat = f.read().decode("utf-8", "replace")
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        # Field 4 (ppid) follows the ")" that closes the command name.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) < 2:
            continue
        state, ppid = fields[0], int(fields[1])
        if state == "Z":
            continue
        table[pid] = (ppid, argv)
    return table


def descendants(root_pid):
    """{pid: argv} of the live processes below root_pid."""
    table = _proc_table()
    children = {}
    for pid, (ppid, _argv) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root_pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if c not in out:
                out[c] = table[c][1]
                todo.append(c)
    return out


def is_kiln_process(argv, subcommand=None):
    """argv runs the kiln binary (and `subcommand` when given). `kiln serve`
    starts its workers as the lean kiln-worker next to kiln when it is
    there: that counts as `kiln worker`."""
    if not argv:
        return False
    name, kiln = os.path.basename(argv[0]), os.path.basename(kt.kiln_bin())
    if name == kiln + "-worker":
        return subcommand in (None, "worker")
    if name != kiln:
        return False
    return subcommand is None or subcommand in argv[1:3]


def _proc_state(pid):
    """The one-letter state of a process in /proc ("" when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2:].split()[0]


def resume_task(pid):
    """SIGCONT a task paused by KilnServer.pause_task_of (no-op once gone)."""
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def _labels_of(key):
    """{name: value} of a metric sample's `name{a="x",b="y"}` key."""
    inner = key[key.index("{") + 1:key.rindex("}")]
    return dict((k, v.strip('"')) for k, _, v in
                (part.partition("=") for part in inner.split(",") if part))


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def reap(pid):
    """Collects the exit status of an orphan re-parented to us (no zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kill_and_reap(pids, grace=5.0):
    """SIGTERM each pid, SIGKILL what is still alive after `grace`."""
    pids = [p for p in pids if pid_alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace
    while time.time() < deadline and any(pid_alive(p) for p in pids):
        for p in pids:
            reap(p)
        time.sleep(0.05)
    for p in pids:
        if pid_alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in pids:
        for _ in range(100):
            reap(p)
            if not pid_alive(p):
                break
            time.sleep(0.02)


class ApiError(AssertionError):
    pass


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # {lower-case name: value}
        self.body = body        # bytes

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise ApiError("HTTP %d body is not JSON: %r" % (self.status, self.body[:300])) from e

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:300])


def l7_definition(layer, max_zoom=None, fmt="png", uri=None):
    """Kiln-format definition of data/L7_ETMs.tif bands 3,2,1 (no catalog:
    the server sets it). `max_zoom` above the scene's own (~12) makes a
    slower step (4x the tiles per level)."""
    d = {
        "layer": layer,
        "sources": [{"uri": uri or kt.l7_path(), "bands": [3, 2, 1]}],
        "output": {"encoding": {"format": fmt}},
    }
    if max_zoom is not None:
        d["output"]["zoom"] = {"max": max_zoom}
    return d


class KilnServer:
    """One `kiln serve` with its config, state dir and catalog in a temp dir.

    Settings are config keys as in examples/kiln.toml: server={...},
    scheduler={...}, executor={...}, extra_toml (text appended to the
    config, e.g. [[group]] tables); environments is a list of dicts
    (name, token, catalog, concurrency, priority, source_roots, and
    `settings`: more [[environment]] keys) whose tokens are hashed into the
    config; source_roots defaults to default_source_roots(). Defaults:
    production (PRODUCTION_TOKEN, concurrency 2, priority 10) and staging
    (STAGING_TOKEN, concurrency 1, priority 0), sharing one catalog root;
    short leases and heartbeats so tests recover fast."""

    def __init__(self, testcase=None, server=None, scheduler=None, executor=None,
                 environments=None, tmp=None, extra_toml=""):
        self.testcase = testcase
        self._own_tmp = tmp is None
        self.tmp = tmp or tempfile.mkdtemp(prefix="kiln-serve-")
        # It is one of the environments' source roots (default_source_roots):
        # sandboxed tasks run as uid 65534 and must be able to enter it, as
        # an operator's imagery directories are. The state dir inside stays
        # private (kiln serve makes it 0700).
        if self._own_tmp:
            os.chmod(self.tmp, 0o755)
        self.catalog = os.path.join(self.tmp, "catalog")
        self.state_dir = os.path.join(self.tmp, "state")
        # Port 0 on the first start (the server picks a free one and writes it
        # to --port-file); a restart reuses it, as clients would expect.
        self.port = None
        self.url = None
        self.port_file = os.path.join(self.tmp, "port")
        self.server_settings = {"shutdown_grace_seconds": 10}
        self.server_settings.update(server or {})
        self.scheduler = {"lease_seconds": 5, "heartbeat_seconds": 1, "max_attempts": 3,
                          "cancel_grace_seconds": 3}
        self.scheduler.update(scheduler or {})
        self.executor = {"kind": "local", "workers": 1, "slots_per_worker": 2}
        if os.environ.get("KILN_E2E_SANDBOX") == "none":
            # make tsan: every process is many times slower and two tests
            # run at once; workers at nice 0 run their tasks at 0 too, not
            # 19, so a task is not starved behind the TSan servers (a task
            # of test_serve_failures missed its deadline that way). make
            # test keeps the default (workers 10, tasks 19).
            self.executor["nice"] = 0
        self.executor.update(executor or {})
        self.environments = environments or [
            {"name": "production", "token": PRODUCTION_TOKEN, "concurrency": 2, "priority": 10},
            {"name": "staging", "token": STAGING_TOKEN, "concurrency": 1, "priority": 0},
        ]
        self.extra_toml = extra_toml  # appended verbatim ([[group]], [autoscaling], ...)
        # The token metrics() presents; set it with server={"metrics_token_sha256": [...]}.
        self.metrics_token = None
        self.config_path = os.path.join(self.tmp, "kiln.toml")
        self.proc = None
        self.log_path = os.path.join(self.tmp, "serve.log")
        self._log = None
        self.starts = 0

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def write_config(self):
        def toml_value(v):
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, (int, float)):
                return str(v)
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(toml_value(x) for x in v) + "]"
            return json.dumps(str(v))  # a TOML basic string is JSON-compatible

        lines = ["[server]", "listen = %s" % toml_value("127.0.0.1:%d" % (self.port or 0)),
                 "state_dir = %s" % toml_value(self.state_dir)]
        lines += ["%s = %s" % (k, toml_value(v)) for k, v in self.server_settings.items()]
        lines += ["", "[scheduler]"]
        lines += ["%s = %s" % (k, toml_value(v)) for k, v in self.scheduler.items()]
        lines += ["", "[executor]"]
        lines += ["%s = %s" % (k, toml_value(v)) for k, v in self.executor.items()]
        for env in self.environments:
            tokens = env.get("tokens") or [env["token"]]
            lines += ["", "[[environment]]", "name = %s" % toml_value(env["name"]),
                      "token_sha256 = %s" % toml_value([sha256_hex(t) for t in tokens]),
                      "catalog = %s" % toml_value(env.get("catalog", self.catalog)),
                      "concurrency = %d" % env.get("concurrency", 1),
                      "priority = %d" % env.get("priority", 0),
                      "source_roots = %s" % toml_value(env.get("source_roots",
                                                                self.default_source_roots()))]
            # More [[environment]] keys as given (quotas, ...).
            lines += ["%s = %s" % (k, toml_value(v)) for k, v in env.get("settings", {}).items()]
        # make tsan: sanitizer runtimes do not start inside the sandbox.
        if os.environ.get("KILN_E2E_SANDBOX") == "none":
            lines += ["", "[sandbox]", 'mode = "none"']
        if self.extra_toml:
            lines += ["", self.extra_toml.strip()]
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def default_source_roots(self):
        """Where an environment reads unless the test says otherwise: the
        repository's imagery (data/, tests/data/) and this server's temp
        dir, where tests write their definition files and broken sources."""
        return kt.data_dirs() + [self.tmp]

    def start(self, wait_ready=True):
        """Writes the config and starts `kiln serve`; waits for /readyz."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        binary = kt.kiln_bin()
        if not os.path.isfile(binary):
            raise AssertionError("kiln binary not found at %s (set KILN_BIN)" % binary)
        self.write_config()
        if self._log:
            self._log.close()
        self._log = open(self.log_path, "ab")
        self._log.write(b"\n=== start %d ===\n" % self.starts)
        self._log.flush()
        self.starts += 1
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        # Workers keep their task specs under $TMPDIR; a worker a test
        # SIGKILLs cannot clean up, so keep them inside the temp dir too.
        tmpdir = os.path.join(self.tmp, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        self.proc = subprocess.Popen([binary, "serve", "--config", self.config_path,
                                      "--port-file", self.port_file],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.tmp,
                                     env=dict(os.environ, TMPDIR=tmpdir))
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("kiln serve exited with %d before it was ready\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            if self.port is None:
                try:
                    with open(self.port_file, encoding="utf-8") as f:
                        self.port = int(f.read().strip())
                    self.url = "http://127.0.0.1:%d" % self.port
                except (OSError, ValueError):
                    time.sleep(0.05)
                    continue
            try:
                r = self.request("GET", "/readyz", token=None, timeout=2)
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise AssertionError("kiln serve not ready after %ss (last: %r)\n%s"
                             % (timeout, last, self.log_tail()))

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
            return "--- kiln serve log ---\n" + data[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def processes(self):
        """{pid: argv} of the server's live descendants (workers, tasks)."""
        if self.proc is None:
            return {}
        return descendants(self.proc.pid)

    def orphans(self):
        """{pid: argv} of kiln processes re-parented to this test process
        (left by a killed server or worker)."""
        mine = {self.proc.pid} if self.proc is not None else set()
        return {p: a for p, a in descendants(os.getpid()).items()
                if is_kiln_process(a) and p not in mine and p not in self.processes()}

    def worker_pids(self):
        return sorted(p for p, a in self.processes().items() if is_kiln_process(a, "worker"))

    def task_pids(self):
        return sorted(p for p, a in self.processes().items() if is_kiln_process(a, "task"))

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals the server by PID and waits for it; SIGKILL after `timeout`
        (default: the shutdown grace + 15 s). Returns its exit code. Leaves
        its workers alone: they are its to stop (see cleanup_orphans)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        if timeout is None:
            timeout = self.server_settings.get("shutdown_grace_seconds", 30) + 15
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError("kiln serve did not exit within %ss of signal %d\n%s"
                                 % (timeout, sig, self.log_tail()))

    def kill9(self):
        """SIGKILL the server process only (its workers become orphans)."""
        self.proc.kill()
        self.proc.wait(10)

    def cleanup_orphans(self, grace=5.0):
        """Kills (by PID) the kiln processes left behind; returns their argv."""
        left = self.orphans()
        kill_and_reap(list(left), grace)
        return left

    def close(self):
        """Stops the server (SIGTERM, then SIGKILL), kills any process it left
        and removes the temp dir."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                tracked = self.processes()
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(self.server_settings.get("shutdown_grace_seconds", 30) + 15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
                kill_and_reap([p for p in tracked if pid_alive(p)])
            self.cleanup_orphans()
        finally:
            if self._log:
                self._log.close()
            if self._own_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # --- HTTP ------------------------------------------------------------------

    def request(self, method, path, body=None, token=PRODUCTION_TOKEN, raw=None, headers=None,
                timeout=60):
        """One HTTP request; `body` is sent as JSON, `raw` (bytes) as is.
        Returns a Response whatever the status."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = {}
            if token is not None:
                h["Authorization"] = "Bearer " + token
            data = None
            if body is not None:
                data = json.dumps(body).encode("utf-8")
                h["Content-Type"] = "application/json"
            elif raw is not None:
                data = raw
                h["Content-Type"] = "application/json"
            h.update(headers or {})
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, payload)
        finally:
            conn.close()

    def call(self, method, path, body=None, token=PRODUCTION_TOKEN, expect=200, **kw):
        """A request that must answer `expect`; returns its parsed JSON."""
        r = self.request(method, path, body=body, token=token, **kw)
        if r.status != expect:
            raise ApiError("%s %s -> HTTP %d, expected %d: %s\n%s"
                           % (method, path, r.status, expect, r.text()[:2000], self.log_tail()))
        return r.json()

    def submit(self, definition, token=PRODUCTION_TOKEN, name=None, action_on_failure=None):
        body = {"name": name or definition.get("layer", "step"),
                "action": {"ingest": definition}}
        if action_on_failure:
            body["action_on_failure"] = action_on_failure
        return self.call("POST", "/v1/steps", body, token=token, expect=201)

    def describe(self, step_id, token=PRODUCTION_TOKEN):
        return self.call("GET", "/v1/steps/" + step_id, token=token)

    def cancel(self, step_id, token=PRODUCTION_TOKEN, signal_name="TERM"):
        return self.call("POST", "/v1/steps/%s/cancel" % step_id, {"signal": signal_name},
                         token=token)

    def list_steps(self, token=PRODUCTION_TOKEN, **query):
        q = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return self.call("GET", "/v1/steps" + ("?" + q if q else ""), token=token)

    def logs(self, step_id, offset=0, token=PRODUCTION_TOKEN):
        """(text, next offset) of the step's log from byte `offset`."""
        r = self.request("GET", "/v1/steps/%s/logs?offset=%d" % (step_id, offset), token=token)
        if r.status != 200:
            raise ApiError("logs of %s -> HTTP %d: %s" % (step_id, r.status, r.text()[:500]))
        return r.text(), int(r.headers.get("x-kiln-log-offset", "-1"))

    def cluster(self, token=PRODUCTION_TOKEN):
        return self.call("GET", "/v1/cluster", token=token)

    def wait_step(self, step_id, timeout=300, token=PRODUCTION_TOKEN, states=TERMINAL):
        """Polls GET /v1/steps/{id}/wait until the step is in `states`;
        AssertionError (with the server log) at `timeout`."""
        deadline = time.time() + timeout
        step = None
        while time.time() < deadline:
            chunk = max(1, min(10, int(deadline - time.time())))
            step = self.call("GET", "/v1/steps/%s/wait?timeout=%d" % (step_id, chunk),
                             token=token, timeout=chunk + 30)
            if step["state"] in states:
                return step
            if states != TERMINAL:
                time.sleep(0.05)  # /wait returns at terminal only: poll for others
        raise AssertionError("step %s still %s after %ss (wanted %s)\n%s"
                             % (step_id, step and step["state"], timeout, states,
                                self.log_tail()))

    def wait_until(self, step_id, pred, timeout=120, token=PRODUCTION_TOKEN, what="condition"):
        """Polls GET /v1/steps/{id} every 50 ms until pred(step); returns it."""
        deadline = time.time() + timeout
        step = None
        while time.time() < deadline:
            step = self.describe(step_id, token=token)
            if pred(step):
                return step
            if step["state"] in TERMINAL:
                break
            time.sleep(0.05)
        raise AssertionError("step %s: %s not reached (last: %s)\n%s"
                             % (step_id, what, json.dumps(step)[:2000], self.log_tail()))

    def wait_running(self, step_id, tiles_done=1, timeout=120, token=PRODUCTION_TOKEN):
        """Waits until the step is RUNNING with work really under way: at
        least `tiles_done` tiles reported, or a task already done (progress
        comes with heartbeats, which a short task may finish before)."""
        return self.wait_until(
            step_id,
            lambda s: s["state"] == "RUNNING" and (s["progress"]["tiles_done"] >= tiles_done
                                                   or s["progress"]["tasks_done"] >= 1),
            timeout=timeout, token=token, what="RUNNING with %d tiles done" % tiles_done)

    def wait_busy_worker(self, timeout=120):
        """Polls the process table until a worker has a task process below
        it (its child, or, sandboxed, the child of bwrap under it); returns
        (worker pid, task pid)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            procs = self.processes()
            table = _proc_table()
            for pid, argv in procs.items():
                if is_kiln_process(argv, "task"):
                    ppid = table.get(pid, (None,))[0]
                    while ppid in procs and not is_kiln_process(procs[ppid], "worker"):
                        ppid = table.get(ppid, (None,))[0]
                    if ppid in procs:
                        return ppid, pid
            time.sleep(0.01)
        raise AssertionError("no worker ran a task within %ss: %s\n%s"
                             % (timeout, self.processes(), self.log_tail()))

    def metrics(self):
        r = self.request("GET", "/metrics", token=self.metrics_token)
        if r.status != 200:
            raise ApiError("/metrics -> HTTP %d" % r.status)
        return r.text()

    def metric(self, name, labels=None):
        """The value of one sample of /metrics (`labels` a dict, matched
        exactly); AssertionError when the server does not export it."""
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            key, _, value = line.rpartition(" ")
            if labels is None and key == name:
                return float(value)
            if labels is not None and key.startswith(name + "{") and _labels_of(key) == labels:
                return float(value)
        raise AssertionError("/metrics has no sample %s %s" % (name, labels or ""))

    def scheduler_passes(self):
        """Scheduler passes the server has completed (kiln_scheduler_passes_total)."""
        return int(self.metric("kiln_scheduler_passes_total"))

    def wait_for_scheduler_passes(self, n=2, timeout=60):
        """Returns once `n` more scheduler passes than now have completed.

        How a test shows that something did NOT happen, without sleeping:
        call it after the request, then assert the state. A pass expires
        leases, starts PENDING steps, finishes cancellations and cleans
        staging; the counter is read after the request, so with n >= 2 at
        least one whole pass began after the request and has ended: what
        that request could have made the scheduler do is done by then.
        AssertionError (with the server log) when the passes do not come
        within `timeout` seconds."""
        assert n >= 1
        target = self.scheduler_passes() + n
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.scheduler_passes()
            if seen >= target:
                return seen
            time.sleep(0.02)
        raise AssertionError("scheduler passes: %s after %ss, wanted %d\n%s"
                             % (seen, timeout, target, self.log_tail()))

    def task_pids_of(self, step_id):
        """PIDs of the live task processes running a task of `step_id` (a
        task's argv names its spec file, which names its step)."""
        out = []
        for pid, argv in self.processes().items():
            if not is_kiln_process(argv, "task") or "--spec" not in argv[:-1]:
                continue
            path = argv[argv.index("--spec") + 1]
            spec = None
            # A sandboxed task sees its spec at a path of its own mount
            # namespace: read it through the process's root.
            for where in (path, "/proc/%d/root%s" % (pid, path)):
                try:
                    with open(where, encoding="utf-8") as f:
                        spec = json.load(f)
                    break
                except (OSError, ValueError):
                    continue
            if spec is None:
                continue  # the task ended and its spec went with it
            if spec.get("step_id") == step_id:
                out.append(pid)
        return sorted(out)

    def pause_task_of(self, step_id, timeout=120):
        """SIGSTOPs one live task process of the step and returns its PID.

        The step cannot end while it is stopped (its commit waits for every
        partition, and the worker still heartbeats the lease), so what a
        test then observes of it is not a race with its completion. Its
        caller resumes it (resume_task) or the server's stop kills it.
        Registers the resume as a cleanup of the test case when there is one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in self.task_pids_of(step_id):
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    continue
                # SIGSTOP takes effect asynchronously: wait for the stop (a
                # busy machine may take a while). A task that had already
                # exited (a zombie its worker has not reaped yet) ignores
                # the signal: only a stopped one counts, and one that did
                # not stop in time is resumed before the next is tried, so
                # no task is ever left stopped behind the test's back (its
                # partition would never end: the step would hang).
                settle = time.monotonic() + 5
                state = _proc_state(pid)
                while state not in ("T", "t", "Z", "X", "") and time.monotonic() < settle:
                    time.sleep(0.005)
                    state = _proc_state(pid)
                if state in ("T", "t"):
                    if self.testcase is not None:
                        self.testcase.addCleanup(resume_task, pid)
                    return pid
                if state not in ("Z", "X", ""):
                    resume_task(pid)
            time.sleep(0.02)
        raise AssertionError("no live task of step %s to pause within %ss\n%s"
                             % (step_id, timeout, self.log_tail()))


def assert_nothing_published_soon(testcase, catalog, env, layer, timeout=10):
    """kiln_test.assert_nothing_published, allowing the server `timeout`
    seconds after the step ended to remove its staging (it cleans up in the
    scheduler pass that follows the state change)."""
    deadline = time.time() + timeout
    while True:
        try:
            kt.assert_nothing_published(testcase, catalog, env, layer)
            return
        except AssertionError:
            if time.time() >= deadline:
                raise
            time.sleep(0.1)


def assert_staging_clean_soon(testcase, ldir, timeout=10):
    """kiln_test.assert_staging_clean with the same allowance."""
    deadline = time.time() + timeout
    while True:
        try:
            kt.assert_staging_clean(testcase, ldir)
            return
        except AssertionError:
            if time.time() >= deadline:
                raise
            time.sleep(0.1)


def layer_versions(catalog, env, layer):
    """Sorted version directory names of a layer ([] when it has none)."""
    d = os.path.join(kt.layer_dir(catalog, env, layer), "versions")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def tile_digests(version_dir):
    """{relative tile path: sha256} of every tile under a version directory."""
    out = {}
    for z, tiles in kt.list_tiles(version_dir).items():
        for (x, y), path in tiles.items():
            with open(path, "rb") as f:
                out[os.path.relpath(path, version_dir)] = hashlib.sha256(f.read()).hexdigest()
    return out


def reference_ingest(definition, tmp):
    """Runs `kiln ingest` of the same definition into a catalog under `tmp`
    (environment "default"); returns the published version directory."""
    ref_catalog = os.path.join(tmp, "reference-catalog")
    d = dict(definition)
    d["output"] = dict(definition["output"], catalog=ref_catalog)
    path = os.path.join(tmp, "reference-%s.json" % definition["layer"])
    with open(path, "w", encoding="utf-8") as f:
        json.dump(d, f)
    kt.run_kiln(["ingest", "--definition", path, "--progress", "none"], expect_rc=kt.EXIT_OK)
    return os.path.realpath(kt.current_dir(ref_catalog, "default", definition["layer"]))
