"""The read API: projects, series, downsampled points that keep spikes, and commit comparison."""

import harness
from fixtures import Catalog, claim, result, sha


class TestQueryApi(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.server = cls.start_server()
        # Two commits benchmarked through the real API: the second is 20% slower.
        cls.runs = {}
        for i, scale in ((1, 1.0), (2, 1.25)):
            job = cls.cat.job(sha(i))
            status, _ = claim(cls.server, cls.cat.workers["w1"])
            assert status == 200
            samples = [scale * v for v in (10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.3)]
            body = result(1, metrics={"ttft_ms": ("ms", "lower", samples),
                                      "tokens_per_s": ("tok/s", "higher",
                                                       [100 / scale + d for d in (0, 1, -1, 2)])})
            status, _, answer = harness.http(
                "POST", f"{cls.server.url}/api/v1/jobs/{job}/result", body,
                token=cls.cat.workers["w1"])
            assert status == 200, answer
            cls.runs[i] = answer["run_id"]

    def get(self, path):
        return harness.http("GET", self.server.url + path)

    def test_projects_and_targets(self):
        status, _, body = self.get("/api/v1/projects")
        self.assertEqual(status, 200)
        self.assertEqual([p["name"] for p in body], ["demo"])
        self.assertNotIn("webhook_secret", body[0])
        status, _, body = self.get("/api/v1/targets")
        self.assertEqual([t["name"] for t in body], ["t1", "t2"])
        self.assertEqual([w["name"] for w in body[0]["workers"]], ["w1", "w2"])

    def test_series_filters(self):
        status, _, body = self.get("/api/v1/projects/demo/series")
        self.assertEqual(status, 200)
        self.assertEqual(sorted(s["metric"] for s in body), ["tokens_per_s", "ttft_ms"])
        status, _, body = self.get("/api/v1/projects/demo/series?metric=ttft_ms&target=t1")
        self.assertEqual(len(body), 1)
        self.assertEqual(body[0]["direction"], "lower")
        self.assertAlmostEqual(body[0]["last"]["value"], 1.25 * 10.05)
        status, _, body = self.get("/api/v1/projects/demo/series?target=t2")
        self.assertEqual(body, [])
        status, _, body = self.get("/api/v1/projects/nope/series")
        self.assertEqual(status, 404)
        self.assertIn("no project 'nope'", body["error"]["message"])

    def test_compare_two_commits(self):
        status, _, body = self.get(f"/api/v1/projects/demo/commits/{sha(2)}/compare?base={sha(1)}")
        self.assertEqual(status, 200, body)
        rows = {r["metric"]: r for r in body["metrics"]}
        self.assertAlmostEqual(rows["ttft_ms"]["change_pct"], 25.0, places=6)
        self.assertFalse(rows["ttft_ms"]["better"])
        self.assertAlmostEqual(rows["tokens_per_s"]["change_pct"], -20.0, delta=0.5)
        self.assertEqual(rows["ttft_ms"]["base"]["n"], 8)
        # 8 samples against 8 fully separated ones: exact two-sided p = 2/12870.
        self.assertAlmostEqual(rows["ttft_ms"]["p_value"], 2 / 12870, places=8)
        # A short sha works; an unknown base is a 404; no base and no parent is a 400.
        status, _, body = self.get(f"/api/v1/projects/demo/commits/{sha(2)[:12]}/compare"
                                   f"?base={sha(1)}")
        self.assertEqual(status, 200)
        status, _, body = self.get(f"/api/v1/projects/demo/commits/{sha(2)[:5]}/compare")
        self.assertEqual(status, 400, "a sha shorter than 7 digits is refused")
        status, _, body = self.get(f"/api/v1/projects/demo/commits/{sha(2)}/compare"
                                   f"?base={sha(99)}")
        self.assertEqual(status, 404)
        status, _, body = self.get(f"/api/v1/projects/demo/commits/{sha(2)}/compare")
        self.assertEqual(status, 400)
        self.assertIn("give 'base'", body["error"]["message"])

    def test_points_downsampled_keep_the_spike(self):
        sid = int(self.sql_value("SELECT id FROM series WHERE metric = 'ttft_ms'"))
        commit = self.sql_value("SELECT id FROM commits WHERE sha = :'p1'", sha(1))
        # 20,000 points of a flat line with one spike, one per minute, in January 2024.
        self.sql("SELECT points_partition_for('2024-01-15T00:00:00Z')")
        self.sql("INSERT INTO points (series_id, ts, commit_id, run_id, value, lo, hi, n, samples) "
                 "SELECT :'p1', '2024-01-01T00:00:00Z'::timestamptz + i * interval '1 minute', "
                 ":'p2', -i, CASE WHEN i = 12345 THEN 500 ELSE 10 + (i % 7) * 0.01 END, 9, 11, 1, "
                 "'{10}' FROM generate_series(1, 20000) AS i", sid, commit)
        status, _, body = self.get(f"/api/v1/series/{sid}/points?max_points=500"
                                   "&from=2024-01-01T00:00:00Z&to=2024-12-31T00:00:00Z")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["total"], 20000)
        self.assertLessEqual(body["returned"], 500)
        self.assertEqual(len(body["points"]), body["returned"])
        values = [p["value"] for p in body["points"]]
        self.assertIn(500, values, "downsampling hid the spike")
        self.assertEqual(body["series"]["metric"], "ttft_ms")
        # Epoch seconds work as bounds too; the range excludes the API's own two runs.
        status, _, small = self.get(f"/api/v1/series/{sid}/points?from=1704067200&to=1704070800")
        self.assertEqual(small["total"], 60)
        self.assertEqual(small["returned"], 60)
        for bad in ("max_points=1", "max_points=abc", "from=yesterday"):
            status, _, err = self.get(f"/api/v1/series/{sid}/points?{bad}")
            self.assertEqual(status, 400, bad)
        status, _, err = self.get("/api/v1/series/999999/points")
        self.assertEqual(status, 404)

    def test_jobs_list(self):
        status, _, body = self.get("/api/v1/jobs?project=demo&state=done")
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 2)
        self.assertEqual({j["commit"] for j in body}, {sha(1), sha(2)})
        self.assertTrue(all(j["run_id"] for j in body))
        status, _, body = self.get("/api/v1/jobs?state=bogus")
        self.assertEqual(status, 400)
