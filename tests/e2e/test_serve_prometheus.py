"""A real Prometheus scrapes kiln serve's /metrics, and a kiln metric reads
back through Prometheus's query API: the exposition is what Prometheus
parses, not just text that looks like it. /metrics needs a token here
([server] metrics_token_sha256), which Prometheus presents as a scrape
credential, as an operator configures it. Fails when the prometheus binary
(Debian package `prometheus`, installed by `make deps`) is missing."""

import json
import os
import shutil
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import kiln_server as ks

# What Prometheus presents to /metrics; the server holds its SHA-256.
METRICS_TOKEN = "kiln-e2e-prometheus-scraper"


def prometheus_binary():
    return shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.path.isfile("/usr/bin/prometheus") else None)


class PrometheusScrapeTest(unittest.TestCase):
    def setUp(self):
        self.binary = prometheus_binary()
        # `make deps` installs it: a machine without it is set up wrong, and
        # the test says so instead of skipping.
        self.assertIsNotNone(
            self.binary, "prometheus binary not found: run `make deps` (Debian package prometheus)")
        self.srv = ks.KilnServer(
            self, server={"metrics_token_sha256": [ks.sha256_hex(METRICS_TOKEN)]})
        self.srv.metrics_token = METRICS_TOKEN
        self.addCleanup(self.srv.close)
        self.srv.start()
        self.prom_port = ks.free_port()
        self.prom_url = "http://127.0.0.1:%d" % self.prom_port
        self.start_prometheus()

    def start_prometheus(self):
        d = os.path.join(self.srv.tmp, "prometheus")
        os.makedirs(os.path.join(d, "data"))
        config = os.path.join(d, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: kiln\n    metrics_path: /metrics\n"
                    "    authorization:\n      credentials: %s\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                    % (json.dumps(METRICS_TOKEN), self.srv.port))
        self.prom_log = open(os.path.join(d, "prometheus.log"), "wb")
        self.addCleanup(self.prom_log.close)
        self.prom = subprocess.Popen(
            [self.binary, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(d, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.prom_port],
            stdin=subprocess.DEVNULL, stdout=self.prom_log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_prometheus)
        deadline = time.time() + 60
        while time.time() < deadline:
            self.assertIsNone(self.prom.poll(), "prometheus exited:\n" + self.prom_output())
            try:
                with urllib.request.urlopen(self.prom_url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.fail("prometheus not ready after 60 s:\n" + self.prom_output())

    def stop_prometheus(self):
        if self.prom.poll() is None:
            self.prom.terminate()
            try:
                self.prom.wait(20)
            except subprocess.TimeoutExpired:
                self.prom.kill()
                self.prom.wait(10)

    def prom_output(self):
        self.prom_log.flush()
        with open(self.prom_log.name, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    def query(self, promql):
        """The result vector of an instant query."""
        url = self.prom_url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.loads(r.read().decode("utf-8"))
        self.assertEqual(doc.get("status"), "success", doc)
        return doc["data"]["result"]

    def wait_for_query(self, promql, pred, timeout=60):
        deadline = time.time() + timeout
        result = None
        while time.time() < deadline:
            result = self.query(promql)
            if pred(result):
                return result
            time.sleep(0.5)
        self.fail("%s never satisfied the check (last: %s)\n%s"
                  % (promql, result, self.prom_output()))

    def test_metrics_refuses_a_scrape_without_the_token(self):
        for token in (None, ks.PRODUCTION_TOKEN):
            r = self.srv.request("GET", "/metrics", token=token)
            self.assertEqual(r.status, 401, r)
            self.assertNotIn("kiln_steps", r.text())

    def test_completed_step_is_counted_in_prometheus(self):
        # Prometheus scrapes kiln and finds the exposition valid.
        self.wait_for_query('up{job="kiln"}',
                            lambda r: r and r[0]["value"][1] == "1")
        targets = self.query('scrape_samples_scraped{job="kiln"}')
        self.assertTrue(targets and float(targets[0]["value"][1]) > 0, targets)

        step = self.srv.wait_step(self.srv.submit(ks.l7_definition("prom"))["id"])
        self.assertEqual(step["state"], "COMPLETED", step)
        result = self.wait_for_query(
            'kiln_steps{state="COMPLETED",environment="production"}',
            lambda r: r and float(r[0]["value"][1]) >= 1)
        self.assertEqual(float(result[0]["value"][1]), 1.0)
        # And what Prometheus holds is what kiln serves.
        self.assertRegex(self.srv.metrics(),
                         r'(?m)^kiln_steps\{[^}]*state="COMPLETED"[^}]*\} 1(\.0+)?$')
        up = self.query('up{job="kiln"}')
        self.assertEqual(up[0]["value"][1], "1", "a later scrape failed")


if __name__ == "__main__":
    unittest.main()
