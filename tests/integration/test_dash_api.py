"""The dashboard's read endpoints (server/api_dash.c): their shapes against what
is in the database, and 400/404 on bad parameters.

One project with a 30% synthetic regression on target t1 (an alert, an
incident), a run with time series inside it, a failed job, and goals for
the report."""

import os
import random

import harness
from fixtures import Catalog, claim, result, sha, upload_synthetic


class TestDashApi(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        # No worker here to re-run suspicions: the routine detector alone.
        harness.sql(cls.db_url, "UPDATE projects SET settings = :'p1'::jsonb",
                    '{"confirm": false}')
        cls.server = cls.start_server(env={"BENCHLINE_BACKGROUND_INTERVAL_MS": "50",
                                           "BENCHLINE_WEB_ROOT": os.path.join(harness.REPO, "web")})
        rng = random.Random(7)
        for i in range(8):
            upload_synthetic(cls.db_url, cls.server, cls.cat, i, 100, rng, wait_judged=False)
        for i in range(8, 11):         # a 30% regression
            upload_synthetic(cls.db_url, cls.server, cls.cat, i, 130, rng, wait_judged=False)
        harness.wait_for(lambda: cls.sql_value(
            "SELECT (SELECT count(*) FROM runs WHERE detected_at IS NULL) + "
            "(SELECT count(*) FROM alerts WHERE investigation_wanted)") == "0", timeout=30)
        # A run with time series inside it and a long build log, on t2.
        cls.ts_job = cls.cat.job(sha(9000), target="t2")
        status, body = claim(cls.server, cls.cat.workers["w3"])
        assert status == 200 and body["id"] == cls.ts_job, (status, body)
        up = result(1, metrics={
            "tokens_per_s": ("tok/s", "higher", [100.0, 101.0, 99.0]),
            "peak_rss_bytes": ("bytes", "lower", [3.5e9]),
            "p32_g16.ttft_ms": ("ms", "lower", [420.0, 430.0, 480.0, 510.0]),
        }, timeseries={
            "rss_bytes": {"unit": "bytes", "t": [i * 0.1 for i in range(500)],
                          "v": [1e7 + i * 1000.0 + (5e6 if i == 250 else 0) for i in range(500)]},
            "tokens_per_s": {"unit": "tok/s", "t": [0, 1, 2], "v": [100, 98, 97]},
        })
        up["build"]["log_tail"] = "line\n" * 3000 + "the end\n"
        status, _, answer = harness.http("POST", f"{cls.server.url}/api/v1/jobs/{cls.ts_job}/result",
                                         up, token=cls.cat.workers["w3"])
        assert status == 200, answer
        cls.ts_run = answer["run_id"]
        # A job that failed on t2, with its reason.
        cls.failed_job = cls.cat.job(sha(9001), target="t2")
        status, body = claim(cls.server, cls.cat.workers["w3"])
        assert status == 200 and body["id"] == cls.failed_job
        status, _, body = harness.http("POST", f"{cls.server.url}/api/v1/jobs/{cls.failed_job}/fail",
                                       {"attempt": 1, "reason": "build failed: exit status 2",
                                        "log_tail": "cc: error"}, token=cls.cat.workers["w3"])
        assert status == 200, body
        # A queued job nobody claims.
        cls.queued_job = cls.cat.job(sha(9002), target="t2")
        harness.wait_for(lambda: cls.sql_value(
            "SELECT (SELECT count(*) FROM runs WHERE detected_at IS NULL) + "
            "(SELECT count(*) FROM alerts WHERE investigation_wanted)") == "0", timeout=30)

    def get(self, path, status=200):
        got, _, body = harness.http("GET", self.server.url + path)
        self.assertEqual(got, status, (path, body))
        return body

    def bad(self, path, status, words):
        body = self.get(path, status)
        for w in words:
            self.assertIn(w, body["error"]["message"], path)
        return body

    # --- overview -----------------------------------------------------------

    def test_overview(self):
        o = self.get("/api/v1/overview")
        self.assertEqual(set(o), {"generated_at", "projects", "targets", "commits", "incidents"})
        demo = o["projects"][0]
        self.assertEqual(demo["name"], "demo")
        self.assertEqual(demo["series"], int(self.sql_value("SELECT count(*) FROM series")))
        self.assertEqual(demo["open_incidents"], 1)
        t1 = next(t for t in o["targets"] if t["name"] == "t1")
        self.assertEqual([w["name"] for w in t1["workers"]], ["w1", "w2"])
        for w in t1["workers"]:
            self.assertIn(w["state"], ("busy", "idle", "silent", "never seen"))
        t2 = next(t for t in o["targets"] if t["name"] == "t2")
        self.assertEqual(t2["queued"], 1)
        # Ten commits, newest first, each with its latest job per target.
        self.assertEqual(len(o["commits"]), 10)
        self.assertEqual(o["commits"][0]["sha"], sha(9002))
        st = {c["sha"]: c["status"] for c in o["commits"]}
        self.assertEqual(st[sha(9002)][0]["state"], "queued")
        failed = st[sha(9001)][0]
        self.assertEqual((failed["target"], failed["state"], failed["fail_reason"]),
                         ("t2", "failed", "build failed: exit status 2"))
        done = st[sha(9000)][0]
        self.assertEqual((done["state"], done["run_id"]), ("done", self.ts_run))
        self.assertEqual(len(o["incidents"]), 1)
        inc = o["incidents"][0]
        self.assertEqual((inc["commit"], inc["kinds"], inc["targets"], inc["alerts"]),
                         (sha(5008), ["perf"], ["t1"], 1))

    def test_overview_parameters(self):
        self.assertEqual(len(self.get("/api/v1/overview?commits=3")["commits"]), 3)
        self.assertEqual(self.get("/api/v1/overview?project=demo")["projects"][0]["name"], "demo")
        self.bad("/api/v1/overview?commits=0", 400, ["'commits'"])
        self.bad("/api/v1/overview?commits=x", 400, ["'commits'"])
        self.bad("/api/v1/overview?commits=101", 400, ["'commits'"])
        self.bad("/api/v1/overview?project=nope", 404, ["nope"])

    # --- commits ------------------------------------------------------------

    def test_commits(self):
        all_ = self.get("/api/v1/projects/demo/commits?limit=1000")
        self.assertEqual(len(all_), 14)
        ids = [c["id"] for c in all_]
        self.assertEqual(ids, sorted(ids, reverse=True))
        page = self.get(f"/api/v1/projects/demo/commits?limit=2&before={ids[1]}")
        self.assertEqual([c["id"] for c in page], ids[2:4])
        with_points = self.get("/api/v1/projects/demo/commits?with_points=1&limit=1000")
        self.assertEqual(len(with_points), 12)
        self.assertTrue(all(c["has_points"] for c in with_points))
        c = with_points[0]
        for key in ("sha", "author", "message", "committed_at", "branch", "parent",
                    "parent_known", "status"):
            self.assertIn(key, c)
        self.assertIs(c["parent_known"], False)

    def test_commits_parameters(self):
        self.bad("/api/v1/projects/demo/commits?limit=0", 400, ["'limit'"])
        self.bad("/api/v1/projects/demo/commits?before=-1", 400, ["'before'"])
        self.bad("/api/v1/projects/demo/commits?with_points=2", 400, ["'with_points'"])
        self.bad("/api/v1/projects/nope/commits", 404, ["nope"])

    # --- runs ---------------------------------------------------------------

    def test_run(self):
        run = self.get(f"/api/v1/runs/{self.ts_run}")
        self.assertEqual((run["id"], run["project"], run["target"], run["worker"]),
                         (self.ts_run, "demo", "t2", "w3"))
        self.assertEqual(run["commit"]["sha"], sha(9000))
        self.assertEqual(run["environment"]["cpu_model"], "Test CPU @ 2.0GHz")
        self.assertTrue(run["build_log_tail"].endswith("the end\n"))
        self.assertEqual(len(run["build_log_tail"]), 8192)
        self.assertEqual(run["build_log_bytes"], 3000 * 5 + 8)
        metrics = {m["metric"]: m for m in run["metrics"]}
        self.assertEqual(set(metrics), {"tokens_per_s", "peak_rss_bytes", "p32_g16.ttft_ms"})
        self.assertEqual(metrics["tokens_per_s"]["value"], 100.0)
        self.assertEqual(metrics["tokens_per_s"]["n"], 3)
        self.assertIn(metrics["tokens_per_s"]["verdict"], ("baseline", None))
        ts = {s["name"]: s for s in run["timeseries"]}
        self.assertEqual(ts["rss_bytes"]["total"], 500)
        self.assertEqual(len(ts["rss_bytes"]["t"]), 500)
        self.assertEqual(ts["tokens_per_s"]["v"], [100, 98, 97])

    def test_run_downsampled_keeps_the_spike(self):
        run = self.get(f"/api/v1/runs/{self.ts_run}?ts_points=50&log_bytes=8")
        self.assertEqual(run["build_log_tail"], "the end\n")
        rss = next(s for s in run["timeseries"] if s["name"] == "rss_bytes")
        self.assertEqual((rss["total"], rss["returned"], len(rss["v"])), (500, 50, 50))
        self.assertIn(1e7 + 250 * 1000.0 + 5e6, rss["v"])

    def test_run_of_a_regression_names_its_alert(self):
        run_id = int(self.sql_value("SELECT run_id FROM alerts"))
        run = self.get(f"/api/v1/runs/{run_id}")
        self.assertEqual([a["kind"] for a in run["alerts"]], ["perf"])
        verdicts = {m["verdict"] for m in run["metrics"]}
        self.assertEqual(verdicts, {"regression"})

    def test_run_parameters(self):
        self.bad("/api/v1/runs/999999", 404, ["999999"])
        self.bad("/api/v1/runs/abc", 404, ["abc"])
        self.bad(f"/api/v1/runs/{self.ts_run}?log_bytes=-1", 400, ["'log_bytes'"])
        self.bad(f"/api/v1/runs/{self.ts_run}?ts_points=1", 400, ["'ts_points'"])

    # --- markers ------------------------------------------------------------

    def test_markers(self):
        sid = int(self.sql_value("SELECT s.id FROM series s JOIN targets t ON t.id = s.target_id "
                                 "WHERE t.name = 't1' AND s.metric = 'ttft_ms'"))
        m = self.get(f"/api/v1/series/{sid}/markers")
        self.assertEqual(m["series_id"], sid)
        alerts = self.sql("SELECT id, incident_id, state FROM alerts WHERE series_id = :'p1'", sid)
        regress = [x for x in m["markers"] if x["source"] == "alert"]
        self.assertEqual(len(regress), len(alerts))
        r = regress[0]
        self.assertEqual((r["kind"], r["alert_id"], r["incident_id"], r["commit"]),
                         ("regression", int(alerts[0][0]), int(alerts[0][1]), sha(5008)))
        self.assertGreater(r["change_pct"], 20)
        self.assertGreater(r["value"], 115)         # the series' value at that commit
        # The marker sits at the alert's own headline, not at whichever run came last.
        self.assertEqual(r["value"], float(self.sql_value(
            "SELECT after_value FROM alerts WHERE id = :'p1'", alerts[0][0])))
        improvements = int(self.sql_value("SELECT count(*) FROM detections WHERE series_id = :'p1' "
                                          "AND verdict = 'improvement'", sid))
        self.assertEqual(len(m["markers"]) - len(regress), improvements)

    def test_markers_parameters(self):
        self.bad("/api/v1/series/999999/markers", 404, ["999999"])
        self.bad("/api/v1/series/x/markers", 404, ["'x'"])

    # --- report -------------------------------------------------------------

    def test_report(self):
        goals = [
            {"scenario": "latency", "metric": "p32_g16.ttft_ms", "op": "<", "value": 500,
             "stat": "p95", "label": "TTFT p95 < 500 ms"},
            {"scenario": "latency", "metric": "p32_g16.ttft_ms", "op": "<", "value": 500,
             "label": "TTFT median < 500 ms"},
            {"metric": "tokens_per_s", "op": ">", "value": 10, "label": "tokens/s > 10"},
            {"metric": "peak_rss_bytes", "op": "<", "value": 3e9, "label": "peak memory < 3 GB"},
            {"metric": "mean_power_w", "op": "<", "value": 20},
        ]
        status, _, body = harness.http("PATCH", self.server.url + "/api/v1/projects/demo",
                                       {"settings": {"goals": goals}}, token=self.cat.admin)
        self.assertEqual(status, 200, body)
        rep = self.get(f"/api/v1/projects/demo/report?commit={sha(9000)[:10]}&target=t2")
        self.assertEqual((rep["project"], rep["target"], rep["commit"]["sha"]),
                         ("demo", "t2", sha(9000)))
        self.assertEqual((rep["goals"], rep["passed"], rep["failed"], rep["not_measured"]),
                         (5, 2, 2, 1))
        rows = {r["label"]: r for r in rep["rows"]}
        hi = float(self.sql_value("SELECT p.hi FROM points p JOIN series s ON s.id = p.series_id "
                                  "WHERE s.metric = 'p32_g16.ttft_ms'"))
        self.assertGreater(hi, 500)
        self.assertEqual((rows["TTFT p95 < 500 ms"]["status"], rows["TTFT p95 < 500 ms"]["value"],
                          rows["TTFT p95 < 500 ms"]["stat"]), ("fail", hi, "p95"))
        self.assertEqual(rows["TTFT median < 500 ms"]["status"], "pass")
        self.assertEqual(rows["TTFT median < 500 ms"]["value"], 455.0)
        self.assertEqual(rows["tokens/s > 10"]["status"], "pass")
        self.assertEqual(rows["peak memory < 3 GB"]["status"], "fail")
        self.assertEqual(rows["peak memory < 3 GB"]["unit"], "bytes")
        self.assertEqual(rows["mean_power_w < 20"]["status"], "not measured")
        self.assertNotIn("value", rows["mean_power_w < 20"])
        # Without commit and target: the latest run's.
        latest = self.get("/api/v1/projects/demo/report")
        self.assertEqual(latest["commit"]["sha"], sha(9000))
        self.assertEqual(latest["target"], "t2")

    def test_report_parameters(self):
        self.bad("/api/v1/projects/demo/report?commit=xyz", 400, ["'commit'"])
        self.bad(f"/api/v1/projects/demo/report?commit={sha(424242)}", 404, [sha(424242)])
        self.bad("/api/v1/projects/demo/report?target=nope", 404, ["'nope'"])
        self.bad("/api/v1/projects/nope/report", 404, ["nope"])

    def test_goals_are_validated(self):
        for goals, where in (
                ({"metric": "x"}, "$.settings.goals: must be an array"),
                ([{"metric": "x", "op": "==", "value": 1}], "$.settings.goals[0].op"),
                ([{"metric": "x", "op": "<"}], "$.settings.goals[0].value"),
                ([{"op": "<", "value": 1}], "$.settings.goals[0].metric"),
                ([{"metric": "x", "op": "<", "value": 1, "unit": "ms"}], "$.settings.goals[0]"),
                ([{"metric": "x", "op": "<", "value": 1, "stat": "p99"}],
                 "$.settings.goals[0].stat")):
            status, _, body = harness.http("PATCH", self.server.url + "/api/v1/projects/demo",
                                           {"settings": {"goals": goals}}, token=self.cat.admin)
            self.assertEqual(status, 400, goals)
            self.assertIn(where, body["error"]["message"])

    def test_reads_follow_public_reads(self):
        srv = harness.Server(self.db_url, env={"BENCHLINE_PUBLIC_READS": "false"}).start()
        self.addCleanup(srv.stop)
        for path in ("/api/v1/overview", "/api/v1/projects/demo/commits",
                     f"/api/v1/runs/{self.ts_run}", "/api/v1/projects/demo/report",
                     "/api/v1/series/1/markers"):
            status, _, _ = harness.http("GET", srv.url + path)
            self.assertEqual(status, 401, path)
            status, _, _ = harness.http("GET", srv.url + path, token=self.cat.admin)
            self.assertEqual(status, 200, path)

    # --- the dashboard's files ----------------------------------------------

    def test_dashboard_and_its_npm_libraries_are_served(self):
        status, headers, body = harness.http("GET", self.server.url + "/")
        self.assertEqual(status, 200)
        self.assertIn(b'src="js/main.js"', body)
        status, headers, _ = harness.http("GET", self.server.url + "/js/main.js")
        self.assertEqual((status, headers["content-type"]), (200, "text/javascript; charset=utf-8"))
        if not os.path.isdir(os.path.join(harness.REPO, "web", "node_modules", "chart.js")):
            self.fail("web/node_modules is missing: make test runs npm ci in web/")
        for path in ("/vendor/chart.js/dist/chart.umd.min.js",
                     "/vendor/chartjs-plugin-annotation/dist/chartjs-plugin-annotation.min.js",
                     "/vendor/chartjs-plugin-zoom/dist/chartjs-plugin-zoom.min.js",
                     "/vendor/chartjs-adapter-date-fns/dist/chartjs-adapter-date-fns.bundle.min.js",
                     "/vendor/hammerjs/hammer.min.js"):
            status, headers, body = harness.http("GET", self.server.url + path)
            self.assertEqual(status, 200, path)
            self.assertTrue(headers["content-type"].startswith("text/javascript"), path)
        # Only those packages' scripts: not the test driver, not package files.
        for path in ("/vendor/playwright-core/index.js", "/vendor/chart.js/package.json",
                     "/node_modules/chart.js/dist/chart.umd.min.js", "/vendor/chart.js",
                     "/vendor/../package.json", "/package-lock.json/../index.html"):
            status, _, _ = harness.http("GET", self.server.url + path)
            self.assertEqual(status, 404, path)
