"""The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium)
driven by playwright-core from web/node_modules, against the real server and
PostgreSQL.

The database is filled as production fills it: a real worker benchmarks the
tinyllm demo history (the baseline twice, then every commit once, scenarios
latency, memory_leak and accuracy) on target t2, and the detector opens what
it finds (the leak and the drift reliably; a perf alert depends on this VM's
noise). Commit metadata is set as the push webhook sets it. A synthetic
project, "synth", adds a deterministic 30% regression on t1 and a 30%
improvement on t3 for the marker tests, and "empty" has no data at all.

Every expectation is read from the API or the database first (how many
points, alerts, improvements), then looked for on the page: tests/browser/
dashboard.mjs runs the browser checks once, each on a fresh page that fails
on any console error or page error, and saves a screenshot of every view to
tests/artifacts/screenshots/. Each test here asserts one of its checks.
"""
# benchline-test-timeout: 900

import json
import os
import random
import shutil
import subprocess
import time

import harness
from fixtures import (QUICK_PARAMS, Catalog, claim, cli_ok, demo_history, job_state, queue_job,
                      result, start_worker)

CHROMIUM = "/usr/bin/chromium"
SCRIPT = os.path.join(harness.REPO, "tests", "browser", "dashboard.mjs")
SHOTS = os.path.join(harness.REPO, "tests", "artifacts", "screenshots")
PLAYWRIGHT = os.path.join(harness.REPO, "web", "node_modules", "playwright-core")

DEMO_ORDER = ("baseline", "speedup", "neutral1", "neutral2", "slow", "neutral3", "neutral4",
              "leak", "drift", "fix")
SCENARIOS = ["latency", "memory_leak", "accuracy"]
PARAMS = QUICK_PARAMS     # as tests/e2e/test_detection_history.py benchmarks the history


def missing_tools():
    """What the browser test needs and does not find; make test installs all of it."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM + " (Debian package chromium)")
    if shutil.which("node") is None:
        missing.append("node (Debian package nodejs)")
    if not os.path.isdir(PLAYWRIGHT):
        missing.append("web/node_modules/playwright-core (npm ci in web/)")
    return missing


class TestDashboard(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        missing = missing_tools()
        if missing:
            # make test installs them: missing means the install failed,
            # which must not pass as a skip.
            raise AssertionError("the browser test needs " + ", ".join(missing) +
                                 "; `make test` installs them")
        super().setUpClass()
        cls.repo, cls.shas = demo_history()
        cls.cat = Catalog(cls.db_url)
        harness.sql(cls.db_url, "UPDATE projects SET repo_url = :'p1' WHERE name = 'demo'", cls.repo)
        cli_ok(cls.db_url, "target", "create", "t3", "--arch", "riscv64", "--cpu", "synthetic")
        cls.w4 = cli_ok(cls.db_url, "worker", "create", "--target", "t3", "--name", "w4").strip()
        # No worker takes synth's jobs: its uploads are scripted, so no
        # confirmation re-runs (they would be claimed by the script).
        cli_ok(cls.db_url, "project", "create", "synth", "--repo", "file:///nonexistent/synth.git",
               "--settings", '{"confirm": false}')
        cli_ok(cls.db_url, "project", "create", "empty", "--repo", "file:///nonexistent/empty.git")
        cls.server = cls.start_server(env={
            "BENCHLINE_WEB_ROOT": os.path.join(harness.REPO, "web"),
            "BENCHLINE_BACKGROUND_INTERVAL_MS": "100",
            "BENCHLINE_PUBLIC_URL": "http://dashboard.example"})
        # The real worker on t2: the synthetic uploads on t1 and t3 are not its jobs.
        cls.worker = start_worker(cls, cls.server, cls.cat.workers["w3"], harness.tmpdir("worker-"),
                                  env={"BENCHLINE_WORKER_ENGINE_CPUS": "1"})
        t0 = time.monotonic()
        jobs = [queue_job(cls.server, cls.cat.admin, "demo", cls.shas["baseline"], "t2", SCENARIOS,
                          params=PARAMS, reason="baseline") for _ in range(2)]
        jobs += [queue_job(cls.server, cls.cat.admin, "demo", cls.shas[role], "t2", SCENARIOS,
                           params=PARAMS) for role in DEMO_ORDER[1:]]
        cls.synthetic()
        harness.wait_for(lambda: all(job_state(cls.db_url, j)[0] in ("done", "failed") for j in jobs),
                         timeout=600, interval=1, message="the worker did not finish the demo history")
        harness.wait_for(lambda: cls.sql_value(
            "SELECT (SELECT count(*) FROM runs WHERE detected_at IS NULL) + "
            "(SELECT count(*) FROM alerts WHERE investigation_wanted)") == "0", timeout=60)
        cls.fill_seconds = time.monotonic() - t0
        cls.commit_metadata()
        cls.bisection_details()
        status, _, body = harness.http("PATCH", cls.server.url + "/api/v1/projects/demo", {"settings": {"goals": [
            {"scenario": "latency", "metric": "p32_g16.ttft_ms", "stat": "p95", "op": "<", "value": 500,
             "label": "TTFT p95 < 500 ms"},
            {"scenario": "latency", "metric": "tokens_per_s", "op": ">", "value": 10, "label": "tokens/s > 10"},
            {"scenario": "memory_leak", "metric": "peak_rss_bytes", "op": "<", "value": 4e9,
             "label": "peak memory < 4 GB"},
            {"metric": "mean_power_w", "op": "<", "value": 20, "label": "power < 20 W"},
            {"scenario": "memory_leak", "metric": "rss_slope_bytes_per_request", "op": "<", "value": 1024,
             "label": "no leak (< 1 KiB/request)"}]}}, token=cls.cat.admin)
        assert status == 200, body
        cls.results = cls.run_browser(cls.expectations())

    # --- filling the database ---------------------------------------------------

    @classmethod
    def synthetic(cls):
        """synth: latency/ttft_ms on t1 (a 30% regression at commit 8) and t3 (a 30%
        improvement at commit 8), uploaded as a worker uploads."""
        rng = random.Random(11)
        tokens = {"t1": cls.cat.workers["w1"], "t3": cls.w4}
        for i in range(12):
            sha = f"{0x5e000000 + i:08x}" + "ab" * 16
            for target, level in (("t1", 100 if i < 8 else 130), ("t3", 100 if i < 8 else 70)):
                job = queue_job(cls.server, cls.cat.admin, "synth", sha, target, ["latency"])
                status, body = claim(cls.server, tokens[target])
                assert status == 200 and body["id"] == job, (status, body)
                run = level * rng.lognormvariate(0, 0.01)
                samples = [run * rng.lognormvariate(0, 0.02) for _ in range(20)]
                up = result(1, metrics={"ttft_ms": ("ms", "lower", samples)})
                status, _, answer = harness.http("POST", f"{cls.server.url}/api/v1/jobs/{job}/result", up,
                                                 token=tokens[target])
                assert status == 200, answer
                time.sleep(0.01)
        harness.sql(cls.db_url, "UPDATE commits c SET author_name = 'Synthetic Bot', author_email = "
                    "'bot@example.org', message = 'synth: step ' || (x.n - 1) || E'\\n\\nA synthetic commit.', "
                    "committed_at = now() - (12 - x.n) * interval '1 hour', parents = CASE WHEN x.n > 1 "
                    "THEN ARRAY[x.prev] ELSE '{}' END FROM (SELECT c2.id, row_number() OVER (ORDER BY c2.id) "
                    "AS n, lag(c2.sha) OVER (ORDER BY c2.id) AS prev FROM commits c2 JOIN projects p ON "
                    "p.id = c2.project_id WHERE p.name = 'synth') x WHERE x.id = c.id")

    @classmethod
    def commit_metadata(cls):
        """Author, message, time and parents of the demo commits, as the push webhook records them."""
        out = subprocess.run(["git", "-C", cls.repo, "log", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%P%x1f%B%x1e"],
                             capture_output=True, text=True, check=True).stdout
        for rec in out.split("\x1e"):
            f = rec.strip("\n").split("\x1f")
            if len(f) < 6:
                continue
            sha, name, email, when, parents, msg = f
            cls.sql("UPDATE commits SET author_name = :'p2', author_email = :'p3', committed_at = :'p4', "
                    "parents = :'p5', message = :'p6' WHERE sha = :'p1'", sha, name, email, when,
                    "{" + ",".join(parents.split()) + "}", msg.strip())

    @classmethod
    def bisection_details(cls):
        """The bisection and confirmation another engineer's code writes into an alert's
        details: put on the synthetic regression to see the incident view render them."""
        aid = cls.sql_value("SELECT a.id FROM alerts a JOIN series s ON s.id = a.series_id JOIN "
                            "projects p ON p.id = s.project_id JOIN targets t ON t.id = s.target_id "
                            "WHERE p.name = 'synth' AND t.name = 't1'")
        assert aid, "the synthetic regression opened no alert"
        good, bad = f"{0x5e000000 + 5:08x}" + "ab" * 16, f"{0x5e000000 + 8:08x}" + "ab" * 16
        details = {"bisection": {"state": "done", "good": good, "bad": bad, "first_bad": bad, "steps": [
            {"round": 1, "commit": f"{0x5e000000 + 7:08x}" + "ab" * 16, "verdict": "good", "change_pct": 0.8,
             "p_value": 0.41, "runs": 6},
            {"round": 2, "commit": bad, "verdict": "bad", "change_pct": 29.7, "p_value": 0.00002, "runs": 6}]},
            "confirmation": {"state": "confirmed", "pairs": 8, "change_pct": 30.2, "p_value": 0.0004}}
        cls.sql("UPDATE alerts SET details = details || :'p2'::jsonb WHERE id = :'p1'", aid, json.dumps(details))
        cls.bisected_alert = int(aid)

    # --- what the page must show, from the API ------------------------------------

    @classmethod
    def get(cls, path):
        status, _, body = harness.http("GET", cls.server.url + path)
        assert status == 200, (path, status, body)
        return body

    @classmethod
    def metric_view(cls, project, scenario, metric):
        """A trend chart's expected content: its series, points and markers per the API."""
        series = [s for s in cls.get(f"/api/v1/projects/{project}/series")
                  if s["scenario"] == scenario and s["metric"] == metric]
        view = {"project": project, "scenario": scenario, "metric": metric, "series": []}
        for s in series:
            pts = cls.get(f"/api/v1/series/{s['id']}/points?max_points=100000")
            marks = cls.get(f"/api/v1/series/{s['id']}/markers")["markers"]
            view["series"].append({"id": s["id"], "target": s["target"], "points": pts["total"],
                                   "markers": marks, "runs": [p["run_id"] for p in pts["points"]]})
        view["points"] = sum(s["points"] for s in view["series"])
        view["markers"] = sum(len(s["markers"]) for s in view["series"])
        return view

    @classmethod
    def expectations(cls):
        incidents = cls.get("/api/v1/incidents?project=demo")
        leak_inc = next(i for i in incidents if cls.shas["leak"] == i["commit"])
        drift_inc = next(i for i in incidents if cls.shas["drift"] == i["commit"])
        synth_inc = cls.get("/api/v1/incidents?project=synth")
        leak_run = int(cls.sql_value("SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_id JOIN commits c ON "
                                     "c.id = j.commit_id WHERE c.sha = :'p1' ORDER BY r.id LIMIT 1",
                                     cls.shas["leak"]))
        return {
            "base": cls.server.url,
            "admin": cls.cat.admin,
            "shots": SHOTS,
            "chromium": CHROMIUM,
            "overview": cls.get("/api/v1/overview?commits=15"),
            "leak": cls.metric_view("demo", "memory_leak", "rss_slope_bytes_per_request"),
            "drift": cls.metric_view("demo", "accuracy", "top1_agreement"),
            "synth": cls.metric_view("synth", "latency", "ttft_ms"),
            "demo_series": len(cls.get("/api/v1/projects/demo/series")),
            "leak_incident": leak_inc,
            "drift_incident": drift_inc,
            "synth_incidents": synth_inc,
            "bisected_alert": cls.bisected_alert,
            "leak_run": cls.get(f"/api/v1/runs/{leak_run}"),
            "compare": {"head": cls.shas["leak"], "base": cls.shas["neutral4"], "target": "t2",
                        "api": cls.get(f"/api/v1/projects/demo/commits/{cls.shas['leak']}/compare?target=t2")},
            "report": cls.get(f"/api/v1/projects/demo/report?commit={cls.shas['leak']}&target=t2"),
        }

    @classmethod
    def run_browser(cls, expect):
        os.makedirs(SHOTS, exist_ok=True)
        d = harness.tmpdir("browser-")
        cfg, out = os.path.join(d, "expect.json"), os.path.join(d, "results.json")
        with open(cfg, "w") as f:
            json.dump(dict(expect, results=out), f)
        proc = subprocess.run(["node", SCRIPT, cfg], capture_output=True, text=True, timeout=400,
                              cwd=harness.REPO)
        with open(os.path.join(d, "node.log"), "w") as f:
            f.write(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not os.path.exists(out):
            raise AssertionError(f"the browser driver exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                                 f"{proc.stderr[-3000:]}")
        with open(out) as f:
            results = {r["name"]: r for r in json.load(f)}
        for r in results.values():
            print(f"  browser check {r['name']}: {'ok' if r['ok'] else 'FAILED'} ({r['ms']} ms)")
        return results

    # --- assertions on the browser's checks ---------------------------------------

    def check(self, name):
        r = self.results.get(name)
        self.assertIsNotNone(r, f"the browser driver ran no check '{name}'")
        self.assertTrue(r["ok"], f"{name}: {r['error']}")
        self.assertEqual(r["console_errors"], [], f"{name}: console errors")
        return r["details"]

    def test_the_history_took_a_few_minutes(self):
        self.assertLess(self.fill_seconds, 420)

    def test_detection_found_the_leak_and_the_drift(self):
        self.assertGreaterEqual(len(self.results), 10)
        kinds = {i["commit"]: i["kinds"] for i in self.get("/api/v1/incidents?project=demo")}
        self.assertIn("leak", kinds[self.shas["leak"]])
        self.assertIn("accuracy", kinds[self.shas["drift"]])

    def test_overview(self):
        d = self.check("overview")
        self.assertEqual(d["targets"], ["t1", "t2", "t3"])
        self.assertEqual(d["commits"], 15)

    def test_trends_grid_draws_every_metric(self):
        d = self.check("trends_grid")
        self.assertEqual(d["cards"], d["expected_cards"])

    def test_chart_points_and_markers_match_the_api(self):
        for name in ("trend_leak", "trend_drift", "trend_synth"):
            d = self.check(name)
            self.assertEqual(d["points"], d["expected_points"], name)
            self.assertEqual(d["markers"], d["expected_markers"], name)
            self.assertGreater(d["markers"], 0, name)
            self.assertEqual(d["lines"], d["expected_lines"], name)

    def test_synthetic_markers_are_a_regression_and_an_improvement(self):
        d = self.check("trend_synth")
        self.assertEqual(sorted(d["marker_kinds"]), ["improvement", "regression"])

    def test_clicking_a_marker_opens_its_incident(self):
        for name in ("marker_click_leak", "marker_click_synth"):
            d = self.check(name)
            self.assertEqual(d["opened"], d["expected"], name)

    def test_clicking_a_point_opens_its_run(self):
        d = self.check("point_click")
        self.assertEqual(d["opened"], d["expected"])
        self.assertEqual(d["timeseries_charts"], d["expected_timeseries"])

    def test_acknowledging_changes_the_database(self):
        d = self.check("acknowledge")
        self.assertTrue(d["asked_for_token"])
        self.assertEqual(self.sql_value("SELECT state FROM alerts WHERE id = :'p1'", d["alert"]),
                         "acknowledged")
        self.assertEqual(d["shown_state"], "acknowledged")
        # The token was kept for the tab: the second change did not ask again.
        self.assertFalse(d["asked_again"])
        self.assertTrue(d["changed"])
        for aid in d["changed"]:
            self.assertEqual(self.sql_value("SELECT state FROM alerts WHERE id = :'p1'", aid), d["to"])

    def test_bisection_steps(self):
        d = self.check("bisection")
        self.assertEqual(d["steps"], 2)
        self.assertEqual(d["confirmation"], "confirmed")
        self.assertGreater(d["without_bisection"], 0)

    def test_permalink_restores_the_view(self):
        d = self.check("permalink")
        self.assertIn("from=", d["url"])
        self.assertEqual(d["restored"], d["zoomed"])

    def test_mail_link_opens_the_incident(self):
        d = self.check("mail_link")
        self.assertEqual(d["opened"], d["expected"])

    def test_compare(self):
        d = self.check("compare")
        self.assertEqual(d["rows"], d["expected_rows"])
        self.assertEqual(d["worse"], d["expected_worse"])

    def test_report(self):
        d = self.check("report")
        self.assertEqual(d["statuses"], d["expected_statuses"])

    def test_empty_state(self):
        self.check("empty")

    def test_api_failure_message(self):
        d = self.check("api_failure")
        self.assertIn("database unavailable", d["text"])
        self.assertTrue(d["recovered"])

    def test_keyboard(self):
        d = self.check("keyboard")
        self.assertTrue(d["reached_metric_select"])
        self.assertTrue(d["reached_zoom"])
        self.assertEqual(d["opened"], d["expected"])

    def test_phone_width(self):
        d = self.check("phone")
        self.assertEqual(d["overflowing"], [])

    def test_screenshots_of_every_view(self):
        self.check("overview")
        for name in ("overview", "trends-grid", "trends-leak", "trends-synth", "run", "incidents",
                     "incident-leak", "incident-bisection", "compare", "report", "empty", "api-error",
                     "incidents-acknowledged", "phone-overview", "phone-trends", "phone-incident",
                     "phone-run"):
            path = os.path.join(SHOTS, name + ".png")
            self.assertTrue(os.path.getsize(path) > 5000, path)
