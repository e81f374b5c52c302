"""Headless Chromium for the console's tests and bench (docs/console.md).

    b = Browser(out_dir)       # starts chromedriver (and, through it, Chromium)
    b.driver.get(url)          # a Selenium WebDriver
    b.close()                  # quits, then kills what is left by PID

Debian's chromium, chromium-driver and python3-selenium (scripts/install-deps.sh).
chromedriver is started here as our own child, so the test knows its PID
and the PIDs of the Chromium processes below it, and stops them all by PID
(kiln_server.kill_and_reap), even when the WebDriver session is stuck.
"""

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from selenium import webdriver

import kiln_server as ks

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 900

# Seconds chromedriver may take to answer /status after it was started.
DRIVER_READY_TIMEOUT = 30


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="kiln-chromium-")
        self.port = ks.free_port()
        self.log = open(os.path.join(self.profile, "chromedriver.log"), "wb")
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, "--port=%d" % self.port, "--allowed-ips=127.0.0.1"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.driver = None
        try:
            self._wait_driver()
            o = webdriver.ChromeOptions()
            o.binary_location = CHROMIUM
            for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                        "--window-size=%d,%d" % (WIDTH, HEIGHT), "--force-device-scale-factor=1",
                        "--user-data-dir=" + os.path.join(self.profile, "profile"),
                        "--no-first-run", "--disable-extensions", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync"):
                o.add_argument(arg)
            # The page's console messages, for script errors (Browser.script_errors).
            o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
            self.driver = webdriver.Remote(command_executor="http://127.0.0.1:%d" % self.port,
                                           options=o)
            self.driver.set_script_timeout(60)
        except BaseException:
            self.close()
            raise

    def _wait_driver(self):
        deadline = time.monotonic() + DRIVER_READY_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/status" % self.port, timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.log.flush()
                    with open(self.log.name, "rb") as f:
                        log = f.read()[-2000:].decode("utf-8", "replace")
                    raise AssertionError("chromedriver did not start (exit %r): %s"
                                         % (self.proc.poll(), log))
                time.sleep(0.1)

    def script_errors(self):
        """The page's error messages since the last call, less failed loads
        (an expected 401 or 404 of the API is logged as one)."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]

    def pids(self):
        """chromedriver's PID and those of the processes below it (Chromium)."""
        return [self.proc.pid] + list(ks.descendants(self.proc.pid))

    def close(self):
        tracked = self.pids() if self.proc.poll() is None else []
        try:
            if self.driver is not None:
                try:
                    self.driver.quit()
                except Exception:  # a stuck session: the kill below ends it
                    pass
        finally:
            ks.kill_and_reap([p for p in tracked if ks.pid_alive(p)])
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)


def page_weight(driver):
    """{"resources": n, "transfer_bytes": b, "body_bytes": b} of the page's
    document and every resource it loaded (Resource Timing)."""
    return driver.execute_script("""
        const all = performance.getEntriesByType('navigation')
            .concat(performance.getEntriesByType('resource'));
        let transfer = 0, body = 0;
        for (const e of all) { transfer += e.transferSize || 0; body += e.decodedBodySize || 0; }
        return {resources: all.length, transfer_bytes: transfer, body_bytes: body,
                names: all.map((e) => e.name)};
    """)
