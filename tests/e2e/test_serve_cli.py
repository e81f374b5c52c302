"""`kiln step`, `kiln cluster` and `kiln token` against a real kiln serve, as
a user runs them: exit codes, what they print, --json."""

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import unittest

import kiln_server as ks
import kiln_test as kt

SLOW_ZOOM = 17


class TokenCliTest(unittest.TestCase):
    def test_token_new_prints_a_token_and_its_sha256(self):
        _, out, _ = kt.run_kiln(["token", "new"], expect_rc=kt.EXIT_OK)
        fields = dict(line.split(None, 1) for line in out.strip().splitlines())
        token, digest = fields["token"].strip(), fields["token_sha256"].strip()
        self.assertGreaterEqual(len(token), 32)
        self.assertEqual(digest, hashlib.sha256(token.encode()).hexdigest())
        _, out2, _ = kt.run_kiln(["token", "new"], expect_rc=kt.EXIT_OK)
        self.assertNotEqual(out, out2, "two new tokens are the same")

    def test_token_hash(self):
        _, out, _ = kt.run_kiln(["token", "hash", ks.PRODUCTION_TOKEN], expect_rc=kt.EXIT_OK)
        # The hash examples/kiln.toml lists for the demo production token.
        self.assertEqual(out.strip(),
                         "592102a684bdc797e64164b4d092d22ebf82eb053d9b6db86134ad6c9a83737e")
        kt.run_kiln(["token", "hash"], expect_rc=kt.EXIT_USAGE)
        rc, _, _ = kt.run_kiln(["token"])
        self.assertEqual(rc, kt.EXIT_USAGE)


class StepCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = ks.KilnServer()
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def kiln(self, args, expect_rc=None, token=ks.PRODUCTION_TOKEN, cwd=None, env=None):
        full = list(args) + ["--server", self.srv.url]
        if token is not None:
            full += ["--token", token]
        return kt.run_kiln(full, expect_rc=expect_rc, cwd=cwd, env=env)

    def test_submit_sources_and_wait(self):
        rc, out, err = self.kiln(["step", "submit", kt.l7_path(), "--layer", "cli-l7",
                                  "--bands", "3,2,1", "--format", "png", "--name", "from-cli",
                                  "--wait"], expect_rc=kt.EXIT_OK)
        m = re.search(r"(s-[0-9A-Z]{13}) COMPLETED: layer cli-l7 version 1", out)
        self.assertTrue(m, out + err)
        step = self.srv.describe(m.group(1))
        self.assertEqual(step["name"], "from-cli")
        self.assertEqual(ks.layer_versions(self.srv.catalog, "production", "cli-l7"),
                         ["v000001"])

    def test_submit_definition_with_relative_paths_from_another_directory(self):
        # examples/landsat-rgb.json names data/L7_ETMs.tif relative to the
        # repository root; the server does not run there.
        rc, out, err = self.kiln(["step", "submit", "--definition", "examples/landsat-rgb.json",
                                  "--json"], expect_rc=kt.EXIT_OK, cwd=kt.source_dir())
        step = json.loads(out)
        self.assertEqual(step["environment"], "production")
        self.assertTrue(os.path.isabs(step["action"]["ingest"]["sources"][0]["uri"]), step)
        _, out, _ = self.kiln(["step", "wait", step["id"], "--json"], expect_rc=kt.EXIT_OK)
        self.assertEqual(json.loads(out)["state"], "COMPLETED")
        self.assertEqual(ks.layer_versions(self.srv.catalog, "production", "landsat-rgb"),
                         ["v000001"])

    def test_server_and_token_from_the_environment(self):
        env = {"KILN_SERVER": self.srv.url, "KILN_TOKEN": ks.STAGING_TOKEN}
        _, out, _ = kt.run_kiln(["step", "list", "--json"], expect_rc=kt.EXIT_OK, env=env)
        self.assertIn("steps", json.loads(out))
        _, out, _ = kt.run_kiln(["cluster", "status", "--json"], expect_rc=kt.EXIT_OK, env=env)
        self.assertIn("workers", json.loads(out))

    def test_list_describe_logs_cancel(self):
        _, out, _ = self.kiln(["step", "submit", kt.l7_path(), "--layer", "cli-slow",
                               "--bands", "3,2,1", "--max-zoom", str(SLOW_ZOOM)],
                              expect_rc=kt.EXIT_OK)
        sid = out.split()[0]
        self.assertRegex(sid, r"^s-[0-9A-Z]{13}$")
        self.srv.wait_running(sid)

        _, out, _ = self.kiln(["step", "list"], expect_rc=kt.EXIT_OK)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^ID\s+STATE\s+CREATED")
        row = [l for l in lines if l.startswith(sid)]
        self.assertEqual(len(row), 1, out)
        self.assertIn("RUNNING", row[0])
        self.assertRegex(row[0], r"\d+/\d+ tiles")

        _, out, _ = self.kiln(["step", "list", "--state", "running", "--json"],
                              expect_rc=kt.EXIT_OK)
        self.assertIn(sid, [s["id"] for s in json.loads(out)["steps"]])
        _, out, _ = self.kiln(["step", "list", "--limit", "1", "--json"], expect_rc=kt.EXIT_OK)
        self.assertEqual(len(json.loads(out)["steps"]), 1)

        _, out, _ = self.kiln(["step", "describe", sid], expect_rc=kt.EXIT_OK)
        self.assertRegex(out, r"(?m)^state\s+RUNNING$")
        self.assertRegex(out, r"(?m)^progress\s+\d+/\d+ tiles \(\d+%\)")
        _, out, _ = self.kiln(["step", "describe", sid, "--json"], expect_rc=kt.EXIT_OK)
        self.assertEqual(json.loads(out)["id"], sid)

        self.kiln(["step", "logs", sid], expect_rc=kt.EXIT_OK)

        _, out, _ = self.kiln(["step", "cancel", sid], expect_rc=kt.EXIT_OK)
        self.assertRegex(out, r"^%s (CANCEL_PENDING|CANCELLED)$" % sid)
        rc, out, err = self.kiln(["step", "wait", sid])
        self.assertEqual(rc, 130, out + err)
        self.assertIn("CANCELLED", out)
        # --follow ends once the step has ended.
        self.kiln(["step", "logs", sid, "--follow"], expect_rc=kt.EXIT_OK)

    def test_wait_timeout_and_failure_exit_codes(self):
        _, out, _ = self.kiln(["step", "submit", kt.l7_path(), "--layer", "cli-timeout",
                               "--bands", "3,2,1", "--max-zoom", str(SLOW_ZOOM)],
                              expect_rc=kt.EXIT_OK)
        sid = out.split()[0]
        # One of its tasks stopped: the step cannot end within the wait's
        # timeout however fast the machine, so the wait must give up.
        self.addCleanup(ks.resume_task, self.srv.pause_task_of(sid))
        rc, out, err = self.kiln(["step", "wait", sid, "--timeout", "1"])
        self.assertEqual(rc, 124, out + err)
        self.assertIn("still", err)
        self.kiln(["step", "cancel", sid, "--kill"], expect_rc=kt.EXIT_OK)

        tmp = tempfile.mkdtemp(prefix="kiln-cli-", dir=self.srv.tmp)  # under the source roots
        os.chmod(tmp, 0o755)  # sandboxed planners and tasks (uid 65534) enter it
        self.addCleanup(shutil.rmtree, tmp, True)
        bad = kt.truncated_geotiff(kt.l7_path(), os.path.join(tmp, "cut-scene.tif"), keep=0.4)
        rc, out, err = self.kiln(["step", "submit", bad, "--layer", "cli-bad", "--bands", "3,2,1",
                                 "--wait"])
        # A source error: the exit code `kiln ingest` gives a corrupt source.
        self.assertEqual(rc, kt.EXIT_INPUT, out + err)
        self.assertRegex(out, r"FAILED: .*cut-scene\.tif")

    def test_errors_exit_codes(self):
        rc, _, err = self.kiln(["step", "describe", "s-0000000000000"])
        self.assertEqual(rc, kt.EXIT_NOT_FOUND, err)
        self.assertRegex(err, r"^kiln: error: .+")
        rc, _, err = self.kiln(["step", "list"], token=None, env={"KILN_TOKEN": ""})
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        self.assertIn("token", err)
        rc, _, err = self.kiln(["step", "list"], token="wrong")
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        # Checked locally before anything is sent.
        rc, _, err = self.kiln(["step", "submit", kt.l7_path(), "--layer", "bad/name"])
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        self.assertIn("layer", err)
        rc, _, err = self.kiln(["step", "submit", kt.l7_path()])
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        self.assertIn("--layer", err)
        rc, _, err = self.kiln(["step", "submit", kt.l7_path(), "--layer", "x", "--catalog", "/tmp"])
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        # Refused by the server, with its reason.
        rc, _, err = self.kiln(["step", "submit", kt.l7_path(), "--layer", "x",
                                "--action-on-failure", "TERMINATE_CLUSTER"])
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        self.assertIn("TERMINATE_CLUSTER", err)
        rc, _, err = kt.run_kiln(["step", "list", "--server", "http://127.0.0.1:%d" % ks.free_port(),
                                  "--token", "x"])
        self.assertEqual(rc, kt.EXIT_INTERNAL, err)
        self.assertIn("cannot reach", err)
        rc, _, err = kt.run_kiln(["step", "list", "--server", "ftp://x/y"])
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        rc, _, _ = kt.run_kiln(["step"])
        self.assertEqual(rc, kt.EXIT_USAGE)

    def test_cluster_status(self):
        # /readyz answers before the core node's worker has registered: wait
        # for a settled fleet, so that both reads below see the same states.
        deadline = time.time() + 120
        while any(n["state"] != "ready" for n in self.srv.cluster()["elastic"]["nodes"]):
            self.assertLess(time.time(), deadline, "the core node never became ready\n" +
                            self.srv.log_tail())
            time.sleep(0.1)
        _, out, _ = self.kiln(["cluster", "status"], expect_rc=kt.EXIT_OK)
        self.assertIn(self.srv.url, out)
        self.assertRegex(out, r"(?i)workers")
        self.assertRegex(out, r"elastic\.cost\.total")
        self.assertRegex(out, r"(?i)core-1")  # the nodes table
        # Money to the cent, no currency sign, amounts right-aligned so
        # their decimal points line up.
        money = re.findall(r"(?m)^(elastic\.cost\.(?:total|rate_per_hour)\s+)(\d+\.\d\d)$", out)
        self.assertEqual(len(money), 2, out)
        self.assertEqual(len({len(k) + len(v) for k, v in money}), 1, out)
        # A group's node counts by state are columns of the groups table,
        # not a JSON object in a cell.
        self.assertNotIn("{", out)
        lines = out.splitlines()
        header = lines[lines.index("elastic.groups:") + 1].split()
        core = lines[lines.index("elastic.groups:") + 2].split()
        self.assertEqual(len(header), len(core), out)
        row = dict(zip(header, core))
        self.assertEqual(row["NAME"], "core")
        self.assertEqual(row["NODES.READY"], "1")
        self.assertRegex(row["PRICE_PER_HOUR"], r"^\d+\.\d\d$")
        _, out, _ = self.kiln(["cluster", "status", "--json"], expect_rc=kt.EXIT_OK)
        # The API's JSON as it came. What moves with the clock between the
        # two reads (cost and node-seconds, a worker's last heartbeat, a
        # node's up and idle time) is compared apart: it may only grow.
        cli, api = json.loads(out), self.srv.cluster()
        cli_cost, api_cost = cli["elastic"].pop("cost"), api["elastic"].pop("cost")
        cli_clock, api_clock = _pop_clock_fields(cli), _pop_clock_fields(api)
        self.assertEqual(cli, api)
        self.assertLessEqual(cli_cost["total"], api_cost["total"])
        self.assertEqual(cli_cost["rate_per_hour"], api_cost["rate_per_hour"])
        self.assertEqual([k for k, _ in cli_clock], [k for k, _ in api_clock])
        for (key, was), (_, now) in zip(cli_clock, api_clock):
            if was is not None and now is not None:
                self.assertLessEqual(was, now, key)

    def test_help_explains_each_command(self):
        for cmd in (["step"], ["step", "submit"], ["step", "list"], ["step", "describe"],
                    ["step", "cancel"], ["step", "logs"], ["step", "wait"],
                    ["cluster", "status"], ["cluster", "interrupt"], ["token", "new"],
                    ["token", "hash"], ["simulate", "replay"]):
            _, out, _ = kt.run_kiln(cmd + ["--help"], expect_rc=kt.EXIT_OK)
            self.assertIn(cmd[-1], out)
        _, out, _ = kt.run_kiln(["step", "submit", "--help"], expect_rc=kt.EXIT_OK)
        for flag in ("--definition", "--layer", "--bands", "--max-zoom", "--wait",
                     "--action-on-failure", "--server", "--token"):
            self.assertIn(flag, out)


def _pop_clock_fields(cluster):
    """Removes from a /v1/cluster document the fields that change with the
    clock alone; returns [(name, value)] in document order."""
    out = []
    for w in cluster.get("workers", []):
        out.append(("worker %s last_seen_at" % w.get("id"), w.pop("last_seen_at", None)))
    for n in cluster.get("elastic", {}).get("nodes", []):
        for key in ("up_seconds", "idle_seconds"):
            out.append(("node %s %s" % (n.get("id"), key), n.pop(key, None)))
    return out


if __name__ == "__main__":
    unittest.main()
