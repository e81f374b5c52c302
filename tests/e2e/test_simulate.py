"""`kiln simulate run` on the shipped month trace (examples/traces/, made by
scripts/make-traces.py): the issue's targets read from --json, a chart that
parses and holds its series, determinism, and clear errors for bad input."""

import json
import os
import shutil
import tempfile
import unittest
import xml.etree.ElementTree as ET

import kiln_test as kt

SCENARIO = os.path.join(kt.source_dir(), "examples", "traces", "month.toml")


class SimulateTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln-sim-")
        cls.svg = os.path.join(cls.tmp, "month.svg")
        _, out, _ = kt.run_kiln(["simulate", "run", SCENARIO, "--json", "--svg", cls.svg],
                                expect_rc=0, timeout=300)
        cls.report = json.loads(out)
        cls.by_name = {s["name"]: s for s in cls.report["strategies"]}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_the_month_meets_the_targets(self):
        s = self.by_name
        self.assertEqual(set(s), {"per-request", "fixed-peak", "fixed-median", "autoscaled"})
        steps = self.report["steps"]
        self.assertGreater(steps, 1000)
        for name in ("fixed-peak", "fixed-median", "autoscaled"):
            self.assertEqual(s[name]["completed"], steps, name)
        # Autoscaled spot costs at most 40% of the peak-sized on-demand cluster...
        self.assertLessEqual(s["autoscaled"]["cost"], 0.40 * s["fixed-peak"]["cost"], s)
        # ... with step wait p95 within 60 s.
        self.assertLessEqual(s["autoscaled"]["wait_seconds"]["p95"], 60, s["autoscaled"])
        # A cluster per request waits for its bootstrap every time; Kiln does not.
        self.assertGreaterEqual(s["per-request"]["wait_seconds"]["p95"], 600)
        self.assertLess(s["autoscaled"]["wait_seconds"]["p95"],
                        s["per-request"]["wait_seconds"]["p95"] / 10)
        # It really used spot, and paid the core all month.
        self.assertGreater(s["autoscaled"]["node_hours"]["spot"], 0)
        self.assertGreater(s["autoscaled"]["node_hours"]["on_demand"], 29 * 24)

    def test_the_chart_parses_and_shows_demand_capacity_and_cost(self):
        root = ET.parse(self.svg).getroot()
        ids = {e.get("id") for e in root.iter() if e.get("id")}
        for wanted in ("demand", "capacity-on-demand", "capacity-spot", "cost-per-request",
                       "cost-fixed-peak", "cost-fixed-median", "cost-autoscaled"):
            self.assertIn(wanted, ids)
        demand = [e for e in root.iter() if e.get("id") == "demand"][0]
        self.assertGreater(len(demand.get("points").split()), 24 * 25, "hourly points")

    def test_same_inputs_same_report(self):
        _, out, _ = kt.run_kiln(["simulate", "run", SCENARIO, "--json"], expect_rc=0, timeout=300)
        again = json.loads(out)
        again.pop("wall_seconds")
        first = dict(self.report)
        first.pop("wall_seconds")
        self.assertEqual(again, first)

    def test_bad_traces_name_the_file_and_line(self):
        bad = os.path.join(self.tmp, "bad.csv")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("arrival_s,environment,tiles\n10,production,100\n20,production,lots\n")
        rc, out, err = kt.run_kiln(["simulate", "run", SCENARIO, "--workload", bad])
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        self.assertIn("bad.csv:3", err)
        self.assertIn("lots", err)
        self.assertEqual(out, "")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("arrival_s,environment,tiles\n10,qa,100\n")
        rc, _, err = kt.run_kiln(["simulate", "run", SCENARIO, "--workload", bad])
        self.assertEqual(rc, kt.EXIT_USAGE, err)
        self.assertIn("'qa'", err)
        rc, _, err = kt.run_kiln(["simulate", "run", os.path.join(self.tmp, "missing.toml")])
        self.assertNotEqual(rc, 0)
        self.assertIn("missing.toml", err)


if __name__ == "__main__":
    unittest.main()
