"""Counted metrics lead investigations: through the real server and PostgreSQL.

A scripted client takes the jobs through the worker API and answers each of
their scenarios with the level its commit truly has: an instruction count
(exact, marked counted) and a timed tokens/s (1% noise).  A slowdown of a
range of seven commits is confirmed on one pair of the count and bisected
on one run per commit; the timed alert of the same range follows it and
only checks the commit the count named against its parent, on its own
alternating pairs.  Without confirmation, the counted bisection measures the
good commit once itself.  Nothing is mailed before the timed verdict is in.
"""

import math
import random

import harness
from fixtures import ENVIRONMENT, Catalog, claim, sha, ScriptedClient, record_history

RANGE = 7
FIRST_BAD = 3
WORK = 2.0e8          # instructions per request of the good commits
SLOWER = 1.15         # the bad commits: 15% more work, 15% fewer tokens/s


class CountingWorker(ScriptedClient):
    """Answers every scenario of a job: instructions (counted) and latency (timed)."""

    def __init__(self, server, token, bad, rng):
        super().__init__(server, token)
        self.bad, self.rng = bad, rng
        self.taken = []              # (sha, scenarios, reason)

    def body(self, job):
        slow = job["commit"] in self.bad
        scen = {}
        for name in job["scenarios"]:
            if name == "instructions":
                # A count: the same every run, to a few parts in ten million.
                count = WORK * (SLOWER if slow else 1) * (1 + self.rng.uniform(-2e-7, 2e-7))
                scen[name] = {"metrics": {"instructions_per_request": {
                    "unit": "instructions", "direction": "lower", "samples": [count],
                    "counted": True}}}
            else:
                level = 1000 / (SLOWER if slow else 1) * self.rng.lognormvariate(0, 0.01)
                scen[name] = {"metrics": {"tokens_per_s": {
                    "unit": "tok/s", "direction": "higher",
                    "samples": [level * self.rng.lognormvariate(0, 0.01) for _ in range(15)]}}}
        return {"attempt": job["attempt"], "environment": dict(ENVIRONMENT),
                "build": {"duration_s": 1.0, "log_tail": "ok\n"}, "duration_s": 2.0,
                "scenarios": scen}

    def run_one(self, job):
        status, _, answer = harness.http(
            "POST", f"{self.server.url}/api/v1/jobs/{job['id']}/result", self.body(job),
            token=self.token)
        assert status == 200, answer
        self.taken.append((job["commit"], tuple(job["scenarios"]), job["reason"]))


class TestCountedLead(harness.DatabaseTestCase):
    settings = '{"subscribers": ["perf@example.org"]}'
    head_runs = 1         # a suspicion is investigated at once

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        harness.sql(cls.db_url, "UPDATE projects SET settings = :'p1'::jsonb", cls.settings)
        cls.server = cls.start_server(env={"BENCHLINE_BACKGROUND_INTERVAL_MS": "20",
                                           "BENCHLINE_MAIL_DELAY_S": "0"})
        cls.base = 100
        record_history(cls.db_url, cls.base, RANGE)
        bad = {sha(cls.base + i) for i in range(FIRST_BAD, RANGE + 1)}
        cls.w = CountingWorker(cls.server, cls.cat.workers["w1"], bad, random.Random(7))
        for i in [0] * 4 + [RANGE] * cls.head_runs:   # the good commit's baseline, the head
            job = cls.cat.job(sha(cls.base + i), scenarios="instructions,latency")
            status, body = claim(cls.server, cls.cat.workers["w1"])
            assert (status, body["id"]) == (200, job), (status, body)
            cls.w.run_one(body)
            harness.wait_for(lambda: cls.sql_value(
                "SELECT (SELECT count(*) FROM runs WHERE detected_at IS NULL) + "
                "(SELECT count(*) FROM alerts WHERE investigation_wanted)") == "0", timeout=20)
        cls.mail_before_verdict = cls.sql_value(
            "SELECT count(*) FROM incidents WHERE mail_state <> 'pending'")
        cls.w.drain(lambda: cls.sql_value(
            "SELECT count(*) FROM investigations WHERE state IN "
            "('confirming', 'bisecting', 'following')") == "0")
        status, _, cls.alerts = harness.http("GET", f"{cls.server.url}/api/v1/alerts?project=demo")
        assert status == 200

    def alert(self, metric):
        return next(a for a in self.alerts if a["metric"] == metric)

    def investigation_jobs(self, scenario):
        return [t for t in self.w.taken if t[2] != "manual" and t[1] == (scenario,)]

    def test_counted_alert_is_bisected_exactly_on_one_run_per_commit(self):
        a = self.alert("instructions_per_request")
        self.assertEqual((a["bad_commit"], a["good_commit"]),
                         (sha(self.base + FIRST_BAD), sha(self.base + FIRST_BAD - 1)))
        conf, bis = a["details"]["confirmation"], a["details"]["bisection"]
        self.assertEqual((conf["state"], conf["pairs"], conf["counted"]), ("confirmed", 1, True))
        self.assertEqual(bis["state"], "done")
        self.assertEqual(bis["rounds"], math.ceil(math.log2(RANGE)))
        self.assertTrue(all(s["runs"] == 1 and s["counted"] for s in bis["steps"]), bis)
        # One pair to confirm, one run per round: nothing else was measured.
        self.assertEqual(len(self.investigation_jobs("instructions")), 2 + bis["rounds"])
        # The headline is the blamed commit against its parent, exactly.
        self.assertAlmostEqual(a["change_pct"], (SLOWER - 1) * 100, places=3)
        self.assertAlmostEqual(a["before"], WORK, delta=WORK * 1e-6)

    def test_timed_alert_follows_and_checks_the_boundary_on_its_own_pairs(self):
        a = self.alert("tokens_per_s")
        conf, bis = a["details"]["confirmation"], a["details"]["bisection"]
        self.assertEqual(bis["led_by"], "instructions/instructions_per_request")
        self.assertTrue(conf["boundary"])
        self.assertEqual((conf["commit"], conf["reference"]),
                         (sha(self.base + FIRST_BAD), sha(self.base + FIRST_BAD - 1)))
        # At 1% noise a 15% step stands at the boundary.
        self.assertEqual((conf["state"], bis["state"]), ("confirmed", "done"))
        self.assertEqual(a["bad_commit"], sha(self.base + FIRST_BAD))
        self.assertAlmostEqual(a["change_pct"], conf["change_pct"], places=6)
        # It measured nothing but the boundary, in alternating order.
        jobs = [t[0] for t in self.investigation_jobs("latency")]
        self.assertGreaterEqual(len(jobs), 18)
        c, parent = sha(self.base + FIRST_BAD), sha(self.base + FIRST_BAD - 1)
        self.assertEqual(jobs[:4], [parent, c, c, parent])
        self.assertEqual(set(jobs), {parent, c})

    def test_one_incident_mailed_once_the_timed_verdict_was_in(self):
        self.assertEqual(self.mail_before_verdict, "0")
        rows = self.sql("SELECT c.sha, i.moved_to IS NULL FROM incidents i JOIN commits c ON "
                        "c.id = i.commit_id ORDER BY i.id")
        self.assertIn((sha(self.base + FIRST_BAD), "t"), rows)
        self.assertEqual(self.alert("tokens_per_s")["incident_id"],
                         self.alert("instructions_per_request")["incident_id"])


class TestCountedWithoutConfirmation(TestCountedLead):
    """The routine detector confirms it over two runs of the head (a count's
    one sample a run needs no raw-sample test), then bisection alone."""
    settings = '{"subscribers": ["perf@example.org"], "confirm": false}'
    head_runs = 2

    def test_counted_alert_is_bisected_exactly_on_one_run_per_commit(self):
        a = self.alert("instructions_per_request")
        bis = a["details"]["bisection"]
        self.assertEqual((bis["state"], a["bad_commit"]), ("done", sha(self.base + FIRST_BAD)))
        # The good commit is counted once by the bisection itself, then one run a round.
        jobs = [t[0] for t in self.investigation_jobs("instructions")]
        self.assertEqual(jobs.count(sha(self.base)), 1)
        self.assertEqual(len(jobs), 1 + bis["rounds"])

    def test_timed_alert_follows_and_checks_the_boundary_on_its_own_pairs(self):
        a = self.alert("tokens_per_s")
        self.assertEqual(a["details"]["bisection"]["state"], "done")
        self.assertEqual(a["bad_commit"], sha(self.base + FIRST_BAD))
