"""`kiln plan --server` shows the partitions kiln serve will cut for the same
ingest: the server plans for every slot it may grow to, not for this
machine's cores, and a plan made for the wrong count misleads."""

import json
import os
import unittest

import kiln_server as ks
import kiln_test as kt

# Zoom 14 of the Landsat scene: 4 partitions when planned for 2 threads, 9
# for 7 (a partition per slot, at least, when the scene has that many).
ZOOM = 14
SERVER_SLOTS = 7


class PlanMatchesServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = ks.KilnServer(executor={"workers": 1, "slots_per_worker": SERVER_SLOTS})
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def plan(self, extra, expect_rc=kt.EXIT_OK):
        args = ["plan", kt.l7_path(), "--bands", "3,2,1", "--layer", "planned", "--catalog",
                os.path.join(self.srv.tmp, "unused-catalog"), "--max-zoom", str(ZOOM)]
        return kt.run_kiln(args + extra, expect_rc=expect_rc)

    def test_plan_with_server_has_the_partitions_of_the_servers_step(self):
        _, out, _ = self.plan(["--server", self.srv.url, "--token", ks.PRODUCTION_TOKEN,
                               "--json"])
        planned = json.loads(out)
        self.assertEqual(planned["plan_threads"], SERVER_SLOTS)
        self.assertEqual(planned["partitioned_for"], "server")

        step = self.srv.submit(ks.l7_definition("planned", max_zoom=ZOOM))
        done = self.srv.wait_step(step["id"])
        self.assertEqual(done["state"], "COMPLETED", done)
        # The step's tasks: one per partition, and its commit.
        self.assertEqual(done["progress"]["tasks_total"], planned["partitions"] + 1, done)
        self.assertEqual(done["progress"]["tiles_total"], planned["tiles"], done)

        # The same plan for this machine's 2 threads differs: without
        # --server the numbers above could not have been trusted.
        _, local, _ = self.plan(["-j", "2", "--json"])
        self.assertNotEqual(json.loads(local)["partitions"], planned["partitions"])

    def test_plan_text_says_what_the_partitions_are_cut_for(self):
        _, out, _ = self.plan(["--server", self.srv.url, "--token", ks.PRODUCTION_TOKEN])
        self.assertIn("partitions cut for %d slot(s), as kiln serve at %s cuts them"
                      % (SERVER_SLOTS, self.srv.url), out)
        _, out, _ = self.plan(["-j", "2"])
        self.assertIn("partitions cut for 2 thread(s) of this machine", out)
        self.assertIn("--server URL shows its partitions", out)

    def test_plan_with_server_refuses_threads_and_a_bad_token(self):
        _, _, err = self.plan(["--server", self.srv.url, "--token", ks.PRODUCTION_TOKEN,
                               "-j", "3"], expect_rc=kt.EXIT_USAGE)
        self.assertIn("--threads and --server", err)
        _, _, err = self.plan(["--server", self.srv.url, "--token", "not-a-token"],
                              expect_rc=kt.EXIT_USAGE)
        self.assertIn("unknown token", err)


if __name__ == "__main__":
    unittest.main()
