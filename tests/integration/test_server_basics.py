"""The server's frame: health, readiness, metrics, errors as JSON, config checks, admin writes."""

import os
import subprocess

import harness
from fixtures import Catalog, claim, result, sha


class TestServerBasics(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.server = cls.start_server()

    def test_health_ready_metrics(self):
        status, _, body = harness.http("GET", self.server.url + "/healthz")
        self.assertEqual((status, body["status"]), (200, "ok"))
        status, _, body = harness.http("GET", self.server.url + "/readyz")
        self.assertEqual((status, body["status"]), (200, "ready"))
        job = self.cat.job(sha(1))
        claim(self.server, self.cat.workers["w1"])
        harness.http("POST", f"{self.server.url}/api/v1/jobs/{job}/result", result(1),
                     token=self.cat.workers["w1"])
        status, headers, text = harness.http("GET", self.server.url + "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        text = text.decode()
        self.assertIn('benchline_http_requests_total{route="healthz",status="200"} ', text)
        self.assertIn('benchline_http_requests_total{route="jobs_result",status="200"} 1', text)
        self.assertIn('benchline_http_request_duration_seconds_bucket{route="jobs_claim",le="+Inf"}',
                      text)
        self.assertIn('benchline_jobs{state="done"} 1', text)
        self.assertIn("benchline_points_ingested_total 2", text)

    def test_keep_alive_is_kept(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        for _ in range(3):
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            self.assertNotEqual(resp.getheader("Connection", "").lower(), "close")
        conn.close()

    def test_errors_are_json(self):
        status, _, body = harness.http("GET", self.server.url + "/api/v1/nothing")
        self.assertEqual(status, 404)
        self.assertEqual(body["error"]["code"], "not_found")
        status, _, body = harness.http("DELETE", self.server.url + "/api/v1/projects")
        self.assertEqual(status, 405)
        self.assertIn("method 'DELETE'", body["error"]["message"])

    def test_admin_writes_need_the_admin_token(self):
        project = {"name": "other", "repo_url": "https://example.invalid/other.git"}
        for token in (None, self.cat.workers["w1"], self.cat.admin[:-2] + "zz"):
            status, _, body = harness.http("POST", self.server.url + "/api/v1/projects", project,
                                           token=token)
            self.assertEqual(status, 401)
        self.assertEqual(self.sql_value("SELECT count(*) FROM projects"), "1")
        status, _, body = harness.http("POST", self.server.url + "/api/v1/projects", project,
                                       token=self.cat.admin)
        self.assertEqual(status, 201, body)
        status, _, body = harness.http("POST", self.server.url + "/api/v1/projects", project,
                                       token=self.cat.admin)
        self.assertEqual(status, 409)
        status, _, body = harness.http("POST", self.server.url + "/api/v1/projects",
                                       {"name": "1bad", "repo_url": "x"}, token=self.cat.admin)
        self.assertEqual(status, 400)
        self.assertIn("$.name", body["error"]["message"])
        status, _, body = harness.http("POST", self.server.url + "/api/v1/workers",
                                       {"target": "t9", "name": "x"}, token=self.cat.admin)
        self.assertEqual(status, 404)
        self.assertIn("no target 't9'", body["error"]["message"])
        status, _, body = harness.http("POST", self.server.url + "/api/v1/workers",
                                       {"target": "t2", "name": "api-worker"}, token=self.cat.admin)
        self.assertEqual(status, 201)
        self.assertTrue(body["token"].startswith("blw_"))
        # The token works, and only its hash is stored.
        self.assertEqual(claim(self.server, body["token"])[0], 204)
        stored = self.sql_value("SELECT encode(token_hash, 'hex') FROM workers WHERE id = :'p1'",
                                body["id"])
        self.assertEqual(len(stored), 64)
        self.assertNotIn(stored, body["token"])

    def test_config_check(self):
        conf = os.path.join(harness.tmpdir(), "server.conf")
        with open(conf, "w") as f:
            f.write("# test\nlisten_port = 9999\ndatabase_url = \"postgresql://x@127.0.0.1/db\"\n")
        proc = subprocess.run([harness.bin_path("benchline-server"), "-n", "-c", conf],
                              capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("listen_port = 9999", proc.stdout)
        self.assertIn("database_url = ********", proc.stdout)
        self.assertIn("configuration OK", proc.stdout)
        with open(conf, "a") as f:
            f.write("lisen_port = 1\n")
        proc = subprocess.run([harness.bin_path("benchline-server"), "-n", "-c", conf],
                              capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
        self.assertEqual(proc.returncode, 1)
        self.assertIn("line 4: unknown key 'lisen_port'", proc.stderr)
        proc = subprocess.run([harness.bin_path("benchline-server"), "-n", "-c", conf],
                              capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "BENCHLINE_LISTEN_PORT": "70000"})
        self.assertEqual(proc.returncode, 1)


class TestReadiness(harness.DatabaseTestCase):
    """readyz follows the database: a private cluster is stopped under a running server."""

    def test_readyz_fails_when_the_database_goes(self):
        pg = harness.Postgres().start()
        self.addCleanup(pg.stop)
        srv = harness.Server(pg.url)
        self.addCleanup(srv.stop)
        srv.start()
        self.assertEqual(harness.http("GET", srv.url + "/readyz")[0], 200)
        pg.stop()
        status, _, body = harness.http("GET", srv.url + "/readyz", timeout=20)
        self.assertEqual(status, 503)
        self.assertEqual(body["error"]["code"], "unavailable")
        self.assertEqual(harness.http("GET", srv.url + "/healthz")[0], 200)
        self.assertTrue(srv.alive())
