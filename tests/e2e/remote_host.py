"""A "remote host" for tests of sandboxes with remote roots: a network
namespace this test run makes (kiln-e2e-<pid>-<name>), joined to ours by a
veth pair with a /30 of its own, and one server process inside it, started
and stopped by PID. A sandbox reaches it the way it would reach a real
remote host: through its slirp4netns, from the host's namespace. Needs root
and iproute2 (scripts/install-deps.sh)."""

import os
import subprocess
import sys

IP = "/sbin/ip"

# argv: address, port, directory. HEAD and GET, whole or one byte range.
_RANGE_SERVER = """
import http.server, os, re, sys
root = sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def send(self, body_wanted):
        path = os.path.join(root, os.path.basename(self.path.split("?")[0]))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        m = re.match(r"bytes=(\\d+)-(\\d*)$", self.headers.get("Range", ""))
        if m:
            a = int(m.group(1))
            b = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))
            data = data[a:b + 1]
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body_wanted:
            self.wfile.write(data)
    def do_HEAD(self):
        self.send(False)
    def do_GET(self):
        self.send(True)
s = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H)
print("ready", flush=True)
s.serve_forever()
"""


def _ip(*args):
    subprocess.run([IP, *args], check=True, stdout=subprocess.DEVNULL)


class RemoteHost:
    """`net` (0-249) tells apart the hosts of one test run. serve_directory()
    or stall() starts its one server; close() stops it and removes the
    namespace and the veth pair."""

    def __init__(self, name, net):
        pid = os.getpid()
        self.ns = "kiln-e2e-%d-%s" % (pid, name)
        self.host_if = "ke%d%sh" % (pid % 100000, name[:2])
        self.peer_if = "ke%d%sr" % (pid % 100000, name[:2])
        prefix = "10.232.%d." % net
        self.host_addr, self.addr = prefix + "1", prefix + "2"
        self.proc = None
        self._made_ns = self._made_link = False
        try:
            _ip("netns", "add", self.ns)
            self._made_ns = True
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
            self._made_link = True
            _ip("link", "set", self.peer_if, "netns", self.ns)
            _ip("addr", "add", self.host_addr + "/30", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.ns, "addr", "add", self.addr + "/30", "dev", self.peer_if)
            _ip("-n", self.ns, "link", "set", self.peer_if, "up")
            _ip("-n", self.ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def _start(self, code, *args):
        # `ip netns exec` execs the command: self.proc.pid is the server's.
        self.proc = subprocess.Popen(
            [IP, "netns", "exec", self.ns, sys.executable, "-u", "-c", code, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line.startswith(b"ready"):
            self.close()
            raise RuntimeError("the server in %s did not start" % self.ns)

    def serve_directory(self, directory, port=8000):
        """The files of `directory` at http://ADDR:port/, with byte ranges
        (GDAL's /vsicurl/ reads by range)."""
        self._start(_RANGE_SERVER, self.addr, str(port), directory)
        return "http://%s:%d/" % (self.addr, port)

    def stall(self, port=9000):
        """A listener at http://ADDR:port/ that takes connections and never
        answers."""
        self._start("import socket, sys, time\n"
                    "s = socket.socket()\n"
                    "s.bind((sys.argv[1], int(sys.argv[2])))\n"
                    "s.listen(64)\n"
                    "print('ready', flush=True)\n"
                    "time.sleep(3600)\n", self.addr, str(port))
        return "http://%s:%d/" % (self.addr, port)

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self._made_link:
            subprocess.run([IP, "link", "del", self.host_if], check=False)
            self._made_link = False
        if self._made_ns:
            subprocess.run([IP, "netns", "del", self.ns], check=False)
            self._made_ns = False
