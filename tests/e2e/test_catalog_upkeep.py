"""Catalog upkeep as a user does it (docs/catalog.md, "Upkeep"): `kiln
catalog rm|rollback|prune` on a local catalog, and the same through a real
`kiln serve`'s API for an environment's own layers: DELETE /v1/layers/{layer},
POST /v1/layers/{layer}/rollback, POST /v1/layers/prune. Dry runs change
nothing; another environment's layer is a 404 like an unknown one; a layer
with a step in progress is refused (409 naming the step)."""

import json
import os
import shutil
import socket
import unittest

import kiln_server as ks
import kiln_test as kt

# Above L7's own max zoom (~12): a step slow enough to be seen RUNNING.
SLOW_ZOOM = 17


def tree(root):
    """{relative path: what it is} of everything under root: a symlink's
    target, a file's size and mtime, "dir". Equal trees: nothing changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                out[rel] = "dir"
            else:
                st = os.stat(path)
                out[rel] = (st.st_size, st.st_mtime_ns)
    return out


def current_target(catalog, env, layer):
    return os.readlink(os.path.join(kt.layer_dir(catalog, env, layer), "current"))


class CatalogUpkeepApiTest(unittest.TestCase):
    def start_server(self):
        srv = ks.KilnServer(self)
        self.addCleanup(srv.close)
        srv.start()
        return srv

    def ingest(self, srv, layer, **kw):
        done = srv.wait_step(srv.submit(ks.l7_definition(layer, **kw))["id"])
        self.assertEqual(done["state"], "COMPLETED", done)
        return done["version"]

    def test_rollback_prune_and_remove_of_the_demo_layer(self):
        srv = self.start_server()
        self.assertEqual(self.ingest(srv, "demo"), 1)
        self.assertEqual(self.ingest(srv, "demo"), 2)
        self.assertEqual(current_target(srv.catalog, "production", "demo"), "versions/v000002")

        # Rollback: a dry run first, which changes nothing.
        before = tree(srv.catalog)
        dry = srv.call("POST", "/v1/layers/demo/rollback", {"to": 1, "dry_run": True})
        self.assertEqual(dry["environment"], "production")
        self.assertTrue(dry["dry_run"])
        self.assertEqual([(c["action"], c["layer"], c["from"], c["to"]) for c in dry["changes"]],
                         [("move_current", "demo", 2, 1)])
        self.assertEqual(dry["changes"][0]["description"],
                         "would point layer 'demo' at version 1 (was 2)")
        self.assertNotIn(srv.catalog, json.dumps(dry), "the server's paths are not shown")
        self.assertEqual(tree(srv.catalog), before)

        done = srv.call("POST", "/v1/layers/demo/rollback", {"to": 1})
        self.assertFalse(done["dry_run"])
        self.assertEqual(done["changes"][0]["description"],
                         "pointed layer 'demo' at version 1 (was 2)")
        self.assertEqual(current_target(srv.catalog, "production", "demo"), "versions/v000001")
        self.assertEqual(kt.load_metadata(srv.catalog, "production", "demo")["version"], 1)
        again = srv.call("POST", "/v1/layers/demo/rollback", {"to": 1})
        self.assertEqual(again["changes"], [])

        # A version that is not there: 404 listing those that are.
        r = srv.request("POST", "/v1/layers/demo/rollback", {"to": 7})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"]["message"],
                         "version 7 of layer 'demo' not found in environment 'production' "
                         "(versions: 1-2)")
        for body, field in (({"to": "1"}, "to"), ({}, "to"), ({"to": 0}, "to"),
                            ({"to": 1, "dry_run": "yes"}, "dry_run"),
                            ({"to": 1, "catalog": "/tmp"}, "catalog")):
            r = srv.request("POST", "/v1/layers/demo/rollback", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertIn(field, r.json()["error"]["message"], body)
        r = srv.request("POST", "/v1/layers/bad%20name/rollback", {"to": 1})
        self.assertEqual(r.status, 400, r)
        self.assertIn("'bad name'", r.json()["error"]["message"])
        # A "/" decoded from the path matches no route at all.
        r = srv.request("POST", "/v1/layers/..%2Fstaging/rollback", {"to": 1})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(current_target(srv.catalog, "production", "demo"), "versions/v000001")

        # Prune keeping no version beyond the current one: v2 goes.
        before = tree(srv.catalog)
        dry = srv.call("POST", "/v1/layers/prune", {"keep": 0, "dry_run": True})
        self.assertEqual([(c["action"], c["layer"], c["version"]) for c in dry["changes"]],
                         [("remove_version", "demo", 2)])
        self.assertEqual(tree(srv.catalog), before)
        done = srv.call("POST", "/v1/layers/prune", {"keep": 0})
        self.assertEqual([c["description"] for c in done["changes"]],
                         ["removed version 2 of layer 'demo'"])
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "demo"), ["v000001"])
        self.assertEqual(current_target(srv.catalog, "production", "demo"), "versions/v000001")
        # The next ingest still takes a new number.
        self.assertEqual(self.ingest(srv, "demo"), 3)

        # Remove: the query's dry run and the body's.
        before = tree(srv.catalog)
        for path, body in (("/v1/layers/demo?dry_run=true", None),
                           ("/v1/layers/demo", {"dry_run": True})):
            dry = srv.call("DELETE", path, body)
            self.assertTrue(dry["dry_run"])
            self.assertEqual([(c["action"], c["versions"], c["current"]) for c in dry["changes"]],
                             [("remove_layer", [1, 3], 3)])
        self.assertEqual(tree(srv.catalog), before)
        done = srv.call("DELETE", "/v1/layers/demo")
        self.assertEqual(done["changes"][0]["description"],
                         "removed layer 'demo' with versions 1, 3 (current 3)")
        self.assertFalse(os.path.lexists(kt.layer_dir(srv.catalog, "production", "demo")))
        self.assertEqual([n for n in os.listdir(os.path.join(srv.catalog, "production"))], [],
                         "nothing of the layer is left, hidden or not")
        r = srv.request("DELETE", "/v1/layers/demo")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"]["message"],
                         "layer 'demo' not found in environment 'production'")
        # Without a token, nothing.
        self.assertEqual(srv.request("DELETE", "/v1/layers/demo", token=None).status, 401)

    def test_staging_cannot_touch_production_layers(self):
        srv = self.start_server()
        self.assertEqual(self.ingest(srv, "demo"), 1)
        self.assertEqual(self.ingest(srv, "demo"), 2)
        before = tree(srv.catalog)

        def error_of(method, path, body=None):
            r = srv.request(method, path, body, token=ks.STAGING_TOKEN)
            return r.status, r.json()

        def alike(layer):
            """What staging gets for `layer`, with the name taken out."""
            out = []
            for method, path, body in (("DELETE", "/v1/layers/%s", None),
                                       ("DELETE", "/v1/layers/%s?dry_run=true", None),
                                       ("POST", "/v1/layers/%s/rollback", {"to": 1}),
                                       ("POST", "/v1/layers/%s/rollback",
                                        {"to": 1, "dry_run": True})):
                status, doc = error_of(method, path % layer, body)
                doc["error"]["message"] = doc["error"]["message"].replace(layer, "LAYER")
                out.append((status, doc))
            status, doc = error_of("POST", "/v1/layers/prune", {"layer": layer, "keep": 0})
            doc["error"]["message"] = doc["error"]["message"].replace(layer, "LAYER")
            out.append((status, doc))
            return out

        production = alike("demo")
        self.assertEqual(production, alike("never-was"))
        self.assertEqual({s for s, _ in production}, {404})
        self.assertEqual(production[0][1]["error"]["message"],
                         "layer 'LAYER' not found in environment 'staging'")
        # Pruning staging's own (empty) catalog leaves production alone.
        pruned = srv.call("POST", "/v1/layers/prune", {"keep": 0}, token=ks.STAGING_TOKEN)
        self.assertEqual((pruned["environment"], pruned["changes"], pruned["skipped"]),
                         ("staging", [], []))
        self.assertEqual(tree(srv.catalog), before)

    def test_refused_while_a_step_of_the_layer_runs_then_prune_clears_the_empty_layer(self):
        srv = self.start_server()
        self.assertEqual(self.ingest(srv, "demo"), 1)
        slow = srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        srv.wait_running(slow["id"])
        # Paused, it cannot end while the refusals are checked.
        srv.pause_task_of(slow["id"])
        before = tree(srv.catalog)

        want = "step %s is RUNNING" % slow["id"]
        for method, path, body, verb in (
                ("DELETE", "/v1/layers/slow", None, "remove"),
                ("DELETE", "/v1/layers/slow?dry_run=true", None, "remove"),
                ("POST", "/v1/layers/slow/rollback", {"to": 1}, "roll back"),
                ("POST", "/v1/layers/prune", {"layer": "slow", "keep": 0}, "prune"),
                ("POST", "/v1/layers/prune", {"layer": "slow", "dry_run": True}, "prune")):
            r = srv.request(method, path, body)
            self.assertEqual(r.status, 409, (method, path, r))
            err = r.json()["error"]
            self.assertEqual(err["code"], "conflict")
            self.assertEqual(err["message"],
                             "cannot %s layer 'slow' in environment 'production': %s; try again "
                             "when it has ended" % (verb, want))
        # Over the whole environment the busy layer is skipped, naming the step.
        pruned = srv.call("POST", "/v1/layers/prune", {"keep": 0})
        self.assertEqual(pruned["changes"], [])
        self.assertEqual(pruned["skipped"], [{"layer": "slow", "reason": want}])
        self.assertEqual(tree(srv.catalog), before)

        # Cancelled, the step leaves an empty layer; prune removes it and
        # leaves the published one.
        srv.cancel(slow["id"])
        self.assertEqual(srv.wait_step(slow["id"])["state"], "CANCELLED")
        ks.assert_nothing_published_soon(self, srv.catalog, "production", "slow")
        self.assertTrue(os.path.isdir(kt.layer_dir(srv.catalog, "production", "slow")))
        pruned = srv.call("POST", "/v1/layers/prune", {})
        self.assertEqual([(c["action"], c["layer"], c["versions"], c["current"])
                          for c in pruned["changes"]],
                         [("remove_layer", "slow", [], None)])
        self.assertFalse(os.path.exists(kt.layer_dir(srv.catalog, "production", "slow")))
        self.assertEqual(current_target(srv.catalog, "production", "demo"), "versions/v000001")


class CatalogUpkeepCliTest(unittest.TestCase):
    def test_rm_rollback_prune_with_dry_runs(self):
        with kt.TempCatalog() as cat:
            for _ in range(3):
                kt.ingest_l7(cat, "demo")
            base = ["--catalog", str(cat)]

            before = tree(str(cat))
            _, out, _ = kt.run_kiln(["catalog", "rollback", "demo", "--to", "1", "--dry-run"] +
                                    base, expect_rc=kt.EXIT_OK)
            self.assertEqual(out.strip(), "would point layer 'demo' at version 1 (was 3): " +
                             os.path.join(kt.layer_dir(cat, "default", "demo"), "current"))
            self.assertEqual(tree(str(cat)), before)
            kt.run_kiln(["catalog", "rollback", "demo", "--to", "1"] + base, expect_rc=kt.EXIT_OK)
            self.assertEqual(current_target(cat, "default", "demo"), "versions/v000001")

            _, _, err = kt.run_kiln(["catalog", "rollback", "demo", "--to", "9"] + base,
                                    expect_rc=kt.EXIT_NOT_FOUND)
            self.assertIn("version 9 of layer 'demo' not found in environment 'default' "
                          "(versions: 1-3)", err)

            before = tree(str(cat))
            _, out, _ = kt.run_kiln(["catalog", "prune", "--keep", "1", "--dry-run"] + base,
                                    expect_rc=kt.EXIT_OK)
            self.assertEqual(out.strip(), "would remove version 2 of layer 'demo': " +
                             os.path.join(kt.layer_dir(cat, "default", "demo"), "versions",
                                          "v000002"))
            self.assertEqual(tree(str(cat)), before)
            _, out, _ = kt.run_kiln(["catalog", "prune", "--keep", "1", "--json"] + base,
                                    expect_rc=kt.EXIT_OK)
            doc = json.loads(out)
            self.assertEqual([(c["action"], c["version"]) for c in doc["changes"]],
                             [("remove_version", 2)])
            self.assertEqual(ks.layer_versions(str(cat), "default", "demo"),
                             ["v000001", "v000003"])
            _, out, _ = kt.run_kiln(["catalog", "prune", "--keep", "1"] + base,
                                    expect_rc=kt.EXIT_OK)
            self.assertEqual(out.strip(), "nothing to prune in environment 'default'")

            # An ingest in progress (its owner file names a live process of
            # this host, as `kiln ingest` writes it): refused with exit 7.
            staging = os.path.join(kt.layer_dir(cat, "default", "demo"), ".staging")
            os.makedirs(os.path.join(staging, "live-ingest"))
            owner = os.path.join(staging, ".live-ingest.owner")
            with open(owner, "w", encoding="utf-8") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "shared": False,
                           "created_at": "2026-01-01T00:00:00Z"}, f)
            before = tree(str(cat))
            for args in (["rm", "demo"], ["rollback", "demo", "--to", "3"],
                         ["prune", "demo", "--keep", "0"]):
                _, _, err = kt.run_kiln(["catalog"] + args + base, expect_rc=kt.EXIT_CONFLICT)
                self.assertIn("an ingest is in progress: staging '.staging/live-ingest' "
                              "(process %d on this host is writing it)" % os.getpid(), err)
            _, out, _ = kt.run_kiln(["catalog", "prune", "--keep", "0"] + base,
                                    expect_rc=kt.EXIT_OK)
            self.assertIn("skipped layer 'demo': an ingest is in progress", out)
            self.assertEqual(tree(str(cat)), before)
            shutil.rmtree(os.path.join(staging, "live-ingest"))
            os.remove(owner)

            before = tree(str(cat))
            _, out, _ = kt.run_kiln(["catalog", "rm", "demo", "--dry-run"] + base,
                                    expect_rc=kt.EXIT_OK)
            self.assertIn("would remove layer 'demo' with versions 1, 3 (current 1)", out)
            self.assertEqual(tree(str(cat)), before)
            kt.run_kiln(["catalog", "rm", "demo"] + base, expect_rc=kt.EXIT_OK)
            self.assertFalse(os.path.lexists(kt.layer_dir(cat, "default", "demo")))
            _, _, err = kt.run_kiln(["catalog", "rm", "demo"] + base,
                                    expect_rc=kt.EXIT_NOT_FOUND)
            self.assertIn("layer 'demo' not found in environment 'default'", err)


if __name__ == "__main__":
    unittest.main()
