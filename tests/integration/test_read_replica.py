"""A read replica: dashboard GETs read from it, writes and claims go to the primary, and a
replica that is down sends the GETs back to the primary instead of failing them.

The "replica" is a second database in the test cluster, a copy of the primary made
with CREATE DATABASE ... TEMPLATE and then changed so that it can be told apart: a
project and a target only it has, and its ttft_ms points scaled by 1000. Nothing
replicates into it, so whatever is written after the copy exists only on the primary.
"""

import re
import subprocess
import time

import harness
from fixtures import Catalog, claim, result, sha

SAMPLES = [10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.3]


class TestReadReplica(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        # Two benchmarked commits on the primary, through the real API.
        seed = harness.Server(cls.db_url, name="seed").start()
        try:
            for i, scale in ((1, 1.0), (2, 1.25)):
                job = cls.cat.job(sha(i))
                status, _ = claim(seed, cls.cat.workers["w1"])
                assert status == 200
                body = result(1, metrics={"ttft_ms": ("ms", "lower", [scale * v for v in SAMPLES])})
                status, _, answer = harness.http("POST", f"{seed.url}/api/v1/jobs/{job}/result",
                                                 body, token=cls.cat.workers["w1"])
                assert status == 200, answer
        finally:
            seed.stop()
        # The copy: CREATE DATABASE ... TEMPLATE needs the primary idle, as it is now.
        pg = harness.shared_postgres()
        cls.replica_name = (cls.db_name + "_ro")[-63:]
        pg.sql(f'CREATE DATABASE "{cls.replica_name}" TEMPLATE "{cls.db_name}"')
        cls.addClassCleanup(pg.drop_database, cls.replica_name)
        cls.replica_url = pg.url_for(cls.replica_name)
        harness.sql(cls.replica_url, """
            INSERT INTO projects (name, repo_url) VALUES ('only_on_replica', 'file:///replica.git');
            INSERT INTO targets (name) VALUES ('replica_target');
            UPDATE points SET value = value * 1000
             WHERE series_id IN (SELECT id FROM series WHERE metric = 'ttft_ms');
        """)
        cls.server = cls.start_server(env={"BENCHLINE_DATABASE_READ_URL": cls.replica_url})

    def get(self, path, server=None):
        status, _, body = harness.http("GET", (server or self.server).url + path)
        self.assertEqual(status, 200, f"GET {path}: {body}")
        return body

    def project_names(self, server=None):
        return sorted(p["name"] for p in self.get("/api/v1/projects", server))

    def replica_allows_connections(self, allow):
        pg = harness.shared_postgres()
        pg.sql(f'ALTER DATABASE "{self.replica_name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'p1'",
                   self.replica_name)
            harness.wait_for(lambda: harness.sql_value(
                pg.url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = :'p1'",
                self.replica_name) == "t", message="the replica's backends to end")

    def log_count(self, pattern):
        return len(re.findall(pattern, self.server.log_text()))

    # -- reads come from the replica -------------------------------------------------

    def test_1_gets_read_the_replica(self):
        self.assertIn("only_on_replica", self.project_names())
        self.assertIn("replica_target", [t["name"] for t in self.get("/api/v1/targets")])
        series = self.get("/api/v1/projects/demo/series?metric=ttft_ms")
        self.assertEqual(len(series), 1)
        # The latest point, as the replica holds it (scaled by 1000).
        self.assertAlmostEqual(series[0]["last"]["value"], 1000 * 1.25 * 10.05)
        points = self.get(f"/api/v1/series/{series[0]['id']}/points")
        self.assertEqual(sorted(round(p["value"], 6) for p in points["points"]),
                         [10050.0, 12562.5])
        cmp = self.get(f"/api/v1/projects/demo/commits/{sha(2)}/compare?base={sha(1)}")
        row = {r["metric"]: r for r in cmp["metrics"]}["ttft_ms"]
        self.assertAlmostEqual(row["head"]["value"], 12562.5)
        self.assertAlmostEqual(row["base"]["value"], 10050.0)
        # The primary has neither the extra project nor the scaled values.
        self.assertEqual(self.sql("SELECT name FROM projects ORDER BY name"), [("demo",)])
        self.assertEqual(self.sql_value(
            "SELECT max(value) FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE s.metric = 'ttft_ms'"), "12.5625")

    # -- writes and claims go to the primary -----------------------------------------

    def test_2_writes_and_claims_go_to_the_primary(self):
        status, _, body = harness.http(
            "POST", self.server.url + "/api/v1/jobs",
            {"project": "demo", "commit": sha(3), "target": "t1", "scenarios": ["latency"]},
            token=self.cat.admin)
        self.assertEqual(status, 201, body)
        job = body["id"]
        self.assertEqual(self.sql_value("SELECT state FROM jobs WHERE id = :'p1'", job), "queued")
        self.assertEqual(harness.sql_value(self.replica_url,
                                           "SELECT count(*) FROM jobs WHERE id = :'p1'", job), "0")
        # The jobs list is a dashboard read: the replica has not seen the new job.
        self.assertNotIn(job, [j["id"] for j in self.get("/api/v1/jobs")])

        status, body = claim(self.server, self.cat.workers["w1"])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["id"], job)
        status, _, answer = harness.http(
            "POST", f"{self.server.url}/api/v1/jobs/{job}/result",
            result(1, metrics={"ttft_ms": ("ms", "lower", [2 * v for v in SAMPLES])}),
            token=self.cat.workers["w1"])
        self.assertEqual(status, 200, answer)
        self.assertEqual(self.sql_value("SELECT state FROM jobs WHERE id = :'p1'", job), "done")
        self.assertEqual(self.sql_value("SELECT count(*) FROM runs WHERE job_id = :'p1'", job), "1")
        self.assertEqual(harness.sql_value(self.replica_url, "SELECT count(*) FROM runs"), "2")

    # -- a replica that goes away, and comes back -------------------------------------

    def test_3_replica_down_reads_fall_back_to_the_primary(self):
        self.assertIn("only_on_replica", self.project_names())   # connections pooled
        self.replica_allows_connections(False)
        try:
            t0 = time.monotonic()
            self.assertEqual(self.project_names(), ["demo"])
            first = time.monotonic() - t0
            # Every dashboard GET answers, from the primary.
            series = self.get("/api/v1/projects/demo/series?metric=ttft_ms")
            points = self.get(f"/api/v1/series/{series[0]['id']}/points")
            self.assertLess(max(p["value"] for p in points["points"]), 100)
            self.get("/api/v1/targets")
            self.get("/api/v1/jobs")
            self.get(f"/api/v1/projects/demo/commits/{sha(2)}/compare?base={sha(1)}")
            # Across the retry interval: the replica is tried again, still
            # down, and that is not logged a second time.
            time.sleep(5.5)
            for _ in range(5):
                self.assertEqual(self.project_names(), ["demo"])
            self.assertEqual(self.log_count(r"read replica: no connection"), 1,
                             self.server.log_tail())
            print(f"first GET with the replica down: {first * 1000:.1f} ms")
        finally:
            self.replica_allows_connections(True)
        harness.wait_for(lambda: "only_on_replica" in self.project_names(), timeout=15,
                         message="reads to return to the replica")
        self.assertEqual(self.log_count(r"read replica: reachable again"), 1)
        # No GET failed on the way: a dead pooled connection was noticed and
        # replaced before a query was sent on it.
        self.assertEqual(self.log_count(r"GET \S+: 5\d\d "), 0, self.server.log_tail())

    def test_4_replica_down_at_start(self):
        # A server whose replica does not exist starts, and serves reads from the primary.
        srv = harness.Server(self.db_url, name="server-no-replica", env={
            "BENCHLINE_DATABASE_READ_URL": harness.shared_postgres().url_for("no_such_replica")})
        self.addCleanup(srv.stop)
        srv.start()
        self.assertEqual(self.project_names(srv), ["demo"])
        self.assertEqual(len(re.findall(r"read replica: no connection", srv.log_text())), 1)

    def test_5_config_check_masks_the_url(self):
        proc = subprocess.run([harness.bin_path("benchline-server"), "-n"], capture_output=True,
                              text=True, env={"BENCHLINE_DATABASE_URL": self.db_url,
                                              "BENCHLINE_DATABASE_READ_URL": self.replica_url})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("database_read_url = ********", proc.stdout)
        self.assertNotIn(self.replica_name, proc.stdout)
        proc = subprocess.run([harness.bin_path("benchline-server"), "-n"], capture_output=True,
                              text=True, env={"BENCHLINE_DATABASE_URL": self.db_url})
        self.assertIn("database_read_url = \n", proc.stdout)
        proc = subprocess.run([harness.bin_path("benchline-server"), "-n"], capture_output=True,
                              text=True, env={"BENCHLINE_DATABASE_URL": self.db_url,
                                              "BENCHLINE_DATABASE_READ_URL": "mysql://x"})
        self.assertEqual(proc.returncode, 1)
        self.assertIn("database_read_url", proc.stderr)
