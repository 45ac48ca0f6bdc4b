"""End to end: the tinyllm history arrives by webhook and is bisected.

A real server, PostgreSQL, worker and SMTP server.  The project's state
before the test push is the speed-up commit (pushed first and benchmarked
three times, as a project seeds its series).  Then the rest of the history
up to the drifting commit arrives as ONE signed GitHub push of seven
commits.  Only its head is benchmarked; the head is slower, leaks and has
drifted.  The server re-runs the slowdown against the last good commit
(confirmation), then bisects every alert's range on the same worker: the
leak ends on the leaking commit, the accuracy drift on the drifting commit,
and the slowdown on the slower commit, found on the counted metric
(instructions per request, exact: one run per commit) in at most
ceil(log2 7) + 1 rounds.  The wall-clock speed alerts follow that verdict:
each checks the slower commit against its parent on its own interleaved
pairs and either stands there or stays undecided over its range; on this
noisy machine both happen, but no other commit is ever blamed.  Each
incident is mailed once.  A last push of the fix resolves the leak and the
drift, and opens nothing.

Why not the whole history in one push: its head is the fix, which repairs
all three, so a head-only benchmark of that push shows no regression to
bisect.  The push that ends on the drifting commit is the one a team would
have made before fixing.
"""
# benchline-test-timeout: 1200

import importlib
import math
import os
import sys
import time

import harness
from fixtures import QUICK_PARAMS, Catalog, demo_history, queue_job, start_worker
from smtp import SmtpSink

sys.path.insert(0, os.path.join(harness.REPO, "deploy"))
forge = importlib.import_module("forge-push")

SECRET = "demo-webhook-secret"
SCENARIOS = ["latency", "memory_leak", "accuracy", "instructions"]
PUSH = ("neutral1", "neutral2", "slow", "neutral3", "neutral4", "leak", "drift")


class TestPushBisect(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.repo, cls.shas = demo_history()
        cls.cat = Catalog(cls.db_url)
        cls.smtp = SmtpSink().start()
        cls.addClassCleanup(cls.smtp.stop)
        cls.server = cls.start_server(env={
            "BENCHLINE_SMTP_URL": cls.smtp.url, "BENCHLINE_MAIL_DELAY_S": "2",
            "BENCHLINE_BACKGROUND_INTERVAL_MS": "100"})
        status, _, body = harness.http("PATCH", cls.server.url + "/api/v1/projects/demo", {
            "webhook_secret": SECRET,
            "settings": {"subscribers": ["perf-team@example.org"], "scenarios": SCENARIOS,
                         "job_params": QUICK_PARAMS}}, token=cls.cat.admin)
        assert status == 200, body
        harness.sql(cls.db_url, "UPDATE projects SET repo_url = :'p1'", cls.repo)
        # One hardware target here: pushes fan out to the active ones.
        harness.sql(cls.db_url, "UPDATE targets SET active = false WHERE name <> 't1'")
        cls.worker = start_worker(cls, cls.server, cls.cat.workers["w1"],
                                  harness.tmpdir("worker-"),
                                  env={"BENCHLINE_WORKER_ENGINE_CPUS": "1"})

        # The project's state before: baseline and speed-up pushed, the
        # speed-up benchmarked three times.
        cls.push1 = cls.push(forge.ZEROS, cls.shas["speedup"])
        for _ in range(2):
            queue_job(cls.server, cls.cat.admin, "demo", cls.shas["speedup"], "t1", SCENARIOS,
                      reason="baseline")
        cls.settle()
        cls.mails_before = len(cls.smtp.messages())

        cls.push2 = cls.push(cls.shas["speedup"], cls.shas["drift"])
        cls.settle(timeout=900)
        cls.incidents = [i for i in cls.get("/api/v1/incidents?project=demo")
                         if i["state"] != "invalid"]
        cls.mails = cls.smtp.wait_for(cls.mails_before + len(cls.incidents), timeout=30)

    @classmethod
    def push(cls, before, after):
        body = forge.payload(cls.repo, cls.repo, "main", before, after)
        status, answer = forge.deliver(cls.server.url + "/hooks/github", body, SECRET)
        assert status == 201, (status, answer)
        return answer

    @classmethod
    def settle(cls, timeout=600):
        """Waits until no job is queued or running, every run is judged and
        no investigation is under way."""
        def idle():
            return cls.sql_value(
                "SELECT (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')) + "
                "(SELECT count(*) FROM runs WHERE detected_at IS NULL) + "
                "(SELECT count(*) FROM alerts WHERE investigation_wanted) + "
                "(SELECT count(*) FROM investigations WHERE state IN "
                "('confirming', 'bisecting', 'following'))") == "0"
        def idle_twice():      # a step may be between a job's end and the next one
            if not idle():
                return False
            time.sleep(1.5)
            return idle()
        harness.wait_for(idle_twice, timeout=timeout, interval=1,
                         message="the history did not settle")

    @classmethod
    def get(cls, path):
        status, _, body = harness.http("GET", cls.server.url + path)
        assert status == 200, (path, status, body)
        return body

    def alerts(self, kind):
        return [a for a in self.get(f"/api/v1/alerts?project=demo&kind={kind}")
                if a["state"] != "invalid"]

    def test_1_the_push_benchmarks_its_head_only(self):
        self.assertEqual(self.push2["commits"], len(PUSH))
        self.assertEqual(len(self.push2["jobs"]), 1)
        head = self.sql("SELECT c.sha, j.reason FROM jobs j JOIN commits c ON c.id = "
                        "j.commit_id WHERE j.id = :'p1'", self.push2["jobs"][0])
        self.assertEqual(head, [(self.shas["drift"], "push")])
        # The push recorded its commits with their parents and authors.
        rows = self.sql("SELECT sha, parents[1], author_name FROM commits WHERE sha = :'p1'",
                        self.shas["slow"])
        self.assertEqual(rows, [(self.shas["slow"], self.shas["neutral2"], "Tia Nylm")])

    @staticmethod
    def memory_metric(metric):
        return "bytes" in metric or "rss" in metric

    def expected_role(self, alert):
        """The leaking commit also raises peak RSS: a perf alert on a memory
        metric belongs there; speed metrics belong to the slower commit."""
        if alert["kind"] == "perf":
            return "leak" if self.memory_metric(alert["metric"]) else "slow"
        return {"leak": "leak", "accuracy": "drift"}[alert["kind"]]

    def counted(self, alert):
        return alert["scenario"] == "instructions"

    def test_2_each_alert_is_bisected_to_its_first_bad_commit(self):
        bound = math.ceil(math.log2(len(PUSH))) + 1
        perf = self.alerts("perf")
        counted = [a for a in perf if self.counted(a)]
        self.assertIn("instructions_per_request", {a["metric"] for a in counted},
                      "the slowdown was not confirmed on the counted metric")
        for kind in ("perf", "leak", "accuracy"):
            alerts = [a for a in self.alerts(kind) if kind != "perf" or self.counted(a) or
                      self.memory_metric(a["metric"])]
            self.assertTrue(alerts, f"no {kind} alert")
            for a in alerts:
                role = self.expected_role(a)
                self.assertEqual(a["bad_commit"], self.shas[role], (kind, a["metric"]))
                bis = a["details"].get("bisection")
                self.assertIsNotNone(bis, (kind, a["metric"]))
                self.assertEqual(bis["state"], "done")
                self.assertEqual(bis["first_bad"], self.shas[role])
                rounds = bis["rounds"] + (1 if "confirmation" in a["details"] else 0)
                self.assertLessEqual(rounds, bound, (kind, bis))
                self.assertTrue(all(s["verdict"] in ("good", "bad") for s in bis["steps"]), bis)
        for a in counted:
            conf = a["details"]["confirmation"]
            self.assertEqual((conf["state"], conf["pairs"], conf["counted"]),
                             ("confirmed", 1, True), a["metric"])
            # One run per commit, and the headline is slow against its parent.
            steps = a["details"]["bisection"]["steps"]
            self.assertTrue(all(s["runs"] == 1 and s["counted"] for s in steps), steps)
            self.assertEqual(a["good_commit"], self.shas["neutral2"])
        per_request = next(a for a in counted if a["metric"] == "instructions_per_request")
        # slow is +13.3% instructions (examples/tinyllm/README.md); exact, one comparison.
        self.assertAlmostEqual(per_request["change_pct"], 100 * (per_request["after"] /
                               per_request["before"] - 1), places=6)
        self.assertGreater(per_request["change_pct"], 12)
        self.assertLess(per_request["change_pct"], 20)

    def test_2b_wall_clock_follows_the_counted_verdict_or_stays_undecided(self):
        speed = [a for a in self.alerts("perf") if not self.counted(a) and
                 not self.memory_metric(a["metric"])]
        slow_incident = next(i for i in self.incidents if i["commit"] == self.shas["slow"])
        for a in speed:
            bis, conf = a["details"]["bisection"], a["details"]["confirmation"]
            self.assertTrue(conf["boundary"], a["metric"])
            self.assertEqual(conf["commit"], self.shas["slow"])
            self.assertEqual(conf["reference"], self.shas["neutral2"])
            if bis["state"] == "done":
                # It stood on its own pairs of slow against its parent.
                self.assertEqual(conf["state"], "confirmed")
                self.assertEqual((a["bad_commit"], a["good_commit"]),
                                 (self.shas["slow"], self.shas["neutral2"]))
                self.assertAlmostEqual(a["change_pct"], conf["change_pct"], places=6)
            else:
                # Not separable at this noise: its range stays, nobody is blamed.
                self.assertEqual((bis["state"], conf["state"]), ("undecided", "undecided"))
                self.assertEqual((a["good_commit"], a["bad_commit"]),
                                 (self.shas["speedup"], self.shas["drift"]))
                self.assertIn("not separable at this target's noise", bis["note"])
            # Either way its verdict travels with the slower commit's incident.
            self.assertEqual(a["incident_id"], slow_incident["id"], a["metric"])
        stood = sum(a["details"]["bisection"]["state"] == "done" for a in speed)
        print(f"wall-clock speed alerts: {stood} stood at the slower commit on their own "
              f"pairs, {len(speed) - stood} undecided "
              f"({', '.join(sorted(a['metric'] for a in speed))})")

    def test_3_one_incident_per_bad_commit_one_mail_each(self):
        kinds = {i["commit"]: sorted(i["kinds"]) for i in self.incidents}
        self.assertEqual(set(kinds), {self.shas[r] for r in ("slow", "leak", "drift")}, kinds)
        self.assertEqual(kinds[self.shas["slow"]], ["perf"])
        self.assertIn(kinds[self.shas["leak"]], (["leak"], ["leak", "perf"]))
        self.assertEqual(kinds[self.shas["drift"]], ["accuracy"])
        mails = self.mails[self.mails_before:]
        self.assertEqual(len(mails), 3)
        subjects = sorted(m["subject"] for m in mails)
        for role in ("slow", "leak", "drift"):
            self.assertEqual(sum(self.shas[role][:8] in s for s in subjects), 1, subjects)
        for m in mails:
            self.assertEqual(m["rcpt_tos"], ["perf-team@example.org"])
            self.assertIn("/#/incidents/", m["body"])
        slow_mail = next(m for m in mails if self.shas["slow"][:8] in m["subject"])
        self.assertIn("perf", slow_mail["subject"])
        self.assertIn("confirmed by", slow_mail["body"])
        self.assertIn("first bad commit " + self.shas["slow"][:12], slow_mail["body"])
        self.assertIn("instructions/instructions_per_request on t1", slow_mail["body"])
        self.assertIn("confirmed by counting against " + self.shas["speedup"][:12],
                      slow_mail["body"])
        leak_mail = next(m for m in mails if self.shas["leak"][:8] in m["subject"])
        self.assertIn("leak", leak_mail["subject"])
        self.assertIn("memory_leak/rss_slope_bytes_per_request on t1", leak_mail["body"])
        drift_mail = next(m for m in mails if self.shas["drift"][:8] in m["subject"])
        self.assertIn("top1_agreement", drift_mail["body"])
        for i in self.get("/api/v1/incidents?project=demo"):
            self.assertEqual(i["mail_state"], "sent" if i["state"] != "invalid" else "none",
                             i["commit"])

    def test_4_acknowledge_and_resolve_send_no_mail(self):
        before = len(self.smtp.messages())
        alert = self.alerts("perf")[0]
        url = f"{self.server.url}/api/v1/alerts/{alert['id']}"
        status, _, body = harness.http("PATCH", url, {"state": "acknowledged"},
                                       token=self.cat.admin)
        self.assertEqual((status, body["state"]), (200, "acknowledged"))
        self.assertEqual(self.sql_value("SELECT state FROM alerts WHERE id = :'p1'",
                                        alert["id"]), "acknowledged")
        status, _, body = harness.http("PATCH", url, {"state": "gone"}, token=self.cat.admin)
        self.assertEqual(status, 400)
        self.assertIn("$.state", body["error"]["message"])
        status, _, _ = harness.http("PATCH", url, {"state": "resolved"})
        self.assertEqual(status, 401)
        status, _, body = harness.http("PATCH", url, {"state": "resolved"}, token=self.cat.admin)
        self.assertEqual((status, body["state"], body["resolved_by"]), (200, "resolved", "user"))
        time.sleep(3)        # longer than mail_delay_s
        self.assertEqual(len(self.smtp.messages()), before)

    def test_5_the_fix_resolves_and_opens_nothing(self):
        push3 = self.push(self.shas["drift"], self.shas["fix"])
        self.assertEqual(len(push3["jobs"]), 1)
        self.settle(timeout=600)
        for kind in ("leak", "accuracy"):
            for a in self.alerts(kind):
                self.assertEqual((a["state"], a["resolved_by"]), ("resolved", "recovered"), kind)
        # Not the speed-up, not the fix, no neutral commit: only the three.
        blamed = {r[0] for r in self.sql("SELECT c.sha FROM alerts a JOIN commits c ON "
                                         "c.id = a.bad_commit_id WHERE a.state <> 'invalid'")}
        self.assertEqual(blamed, {self.shas[r] for r in ("slow", "leak", "drift")})
        self.assertEqual(self.sql_value("SELECT count(*) FROM alerts WHERE kind = 'leak' AND "
                                        "state <> 'invalid'"), "1")
        self.assertEqual(len(self.smtp.messages()), self.mails_before + 3)
