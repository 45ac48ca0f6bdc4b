"""Confirmation and bisection through the real server and PostgreSQL.

A scripted client takes the jobs through the worker API (claim, result)
and answers with the level the commit truly has, so every decision of the
server can be checked against a known truth: a real slowdown of a range of
seven commits is confirmed and bisected to its first bad commit within
ceil(log2 7) rounds, with its alert and incident moved there; a one-off
slow run is overturned and mails nobody; the investigation's jobs are
interleaved and pinned to one worker; they go ahead of routine jobs, which
still get their turn.
"""

import math
import random
import time

import harness
from fixtures import Catalog, claim, result, sha, ScriptedClient, record_history

SLOW = 0.80          # the bad commits' tokens/s against the good ones
RANGE = 7            # commits after the good one, up to the head
FIRST_BAD = 3        # 1-based in the range


class ScriptedWorker(ScriptedClient):
    """Takes jobs through the API and reports the level its commit truly has."""

    def __init__(self, server, token, level_of, rng, noise=0.01):
        super().__init__(server, token)
        self.level_of = level_of
        self.rng, self.noise = rng, noise
        self.taken = []              # (job id, sha, reason, investigation?)

    def run_one(self, job):
        level = self.level_of(job["commit"]) * self.rng.lognormvariate(0, self.noise)
        samples = [level * self.rng.lognormvariate(0, 0.01) for _ in range(15)]
        status, _, answer = harness.http(
            "POST", f"{self.server.url}/api/v1/jobs/{job['id']}/result",
            result(job["attempt"], metrics={"tokens_per_s": ("tok/s", "higher", samples)}),
            token=self.token)
        assert status == 200, answer
        self.taken.append((job["id"], job["commit"], job["reason"]))


class TestInvestigation(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        harness.sql(cls.db_url, "UPDATE projects SET settings = :'p1'::jsonb",
                    '{"subscribers": ["perf@example.org"]}')
        cls.server = cls.start_server(env={"BENCHLINE_BACKGROUND_INTERVAL_MS": "20",
                                           "BENCHLINE_MAIL_DELAY_S": "0"})

    def routine(self, i, worker, times=1):
        for _ in range(times):
            job = self.cat.job(sha(i))
            status, body = claim(self.server, self.cat.workers["w1"])
            self.assertEqual((status, body["id"]), (200, job))
            worker.run_one(body)
        harness.wait_for(lambda: self.sql_value(
            "SELECT (SELECT count(*) FROM runs WHERE detected_at IS NULL) + "
            "(SELECT count(*) FROM alerts WHERE investigation_wanted)") == "0", timeout=20)

    def investigation(self, alert_id):
        status, _, body = harness.http(
            "GET", f"{self.server.url}/api/v1/alerts?project=demo")
        self.assertEqual(status, 200)
        alert = next(a for a in body if a["id"] == alert_id)
        status, _, inv = harness.http(
            "GET", f"{self.server.url}/api/v1/investigations/{alert['investigation_id']}")
        self.assertEqual(status, 200, inv)
        return alert, inv

    def test_1_slowdown_is_confirmed_and_bisected(self):
        base = 100
        record_history(self.db_url, base, RANGE)
        bad = {sha(base + i) for i in range(FIRST_BAD, RANGE + 1)}
        w = ScriptedWorker(self.server, self.cat.workers["w1"],
                           lambda c: 100 * SLOW if c in bad else 100.0, random.Random(1))
        self.routine(base, w, times=4)                  # the good commit's baseline
        self.routine(base + RANGE, w)                   # the push's head: 20% slower
        alerts = self.sql("SELECT id, investigating FROM alerts")
        self.assertEqual(len(alerts), 1, alerts)
        alert_id = int(alerts[0][0])
        self.assertEqual(alerts[0][1], "t")
        # Nothing is mailed while it is under investigation.
        self.assertEqual(self.sql_value("SELECT mail_state FROM incidents"), "pending")

        queued = self.sql("SELECT c.sha, j.reason, j.priority FROM jobs j JOIN commits c ON "
                          "c.id = j.commit_id WHERE j.state = 'queued' ORDER BY j.id")
        good, head = sha(base), sha(base + RANGE)
        self.assertEqual([q[0] for q in queued], [good, head, head, good] * 2 + [good, head],
                         "confirmation interleaves good and bad, five pairs, alternating "
                         "which goes first")
        self.assertTrue(all(q[1] == "confirm" and q[2] == "10" for q in queued))

        w.drain(lambda: self.sql_value(
            f"SELECT state FROM investigations WHERE id = (SELECT investigation_id FROM "
            f"alerts WHERE id = {alert_id})") in ("done", "overturned", "failed"))
        alert, inv = self.investigation(alert_id)
        self.assertEqual(inv["state"], "done", inv)
        self.assertEqual(alert["bad_commit"], sha(base + FIRST_BAD))
        self.assertEqual(alert["good_commit"], sha(base + FIRST_BAD - 1))
        self.assertFalse(alert["investigating"])
        conf = alert["details"]["confirmation"]
        self.assertEqual(conf["state"], "confirmed")
        self.assertGreater(conf["change_pct"], 20)      # 1/0.8 - 1 = 25% for tokens/s
        bis = alert["details"]["bisection"]
        self.assertEqual(bis["state"], "done")
        self.assertEqual(bis["first_bad"], sha(base + FIRST_BAD))
        self.assertLessEqual(bis["rounds"], math.ceil(math.log2(RANGE)))
        self.assertEqual(len(bis["steps"]), bis["rounds"])
        for step in bis["steps"]:
            idx = step["index"]
            self.assertEqual(step["verdict"], "bad" if idx >= FIRST_BAD else "good", step)
        # Every job of the investigation ran on the worker that took the first.
        self.assertEqual(self.sql_value(
            "SELECT count(DISTINCT worker_id) FROM jobs WHERE investigation_id IS NOT NULL"), "1")
        # The incident moved to the first bad commit; the head's points there,
        # so a link to it taken while the bisection ran still leads to the alert.
        incidents = self.sql("SELECT c.sha, i.state, i.moved_to IS NULL, i.id FROM "
                             "incidents i JOIN commits c ON c.id = i.commit_id ORDER BY i.id")
        self.assertEqual([r[:3] for r in incidents], [(sha(base + RANGE), "invalid", "f"),
                                                      (sha(base + FIRST_BAD), "open", "t")])
        old_id, new_id = incidents[0][3], incidents[1][3]
        status, _, body = harness.http("GET", f"{self.server.url}/api/v1/incidents/{old_id}")
        self.assertEqual((status, body["id"], body["moved_here"]), (200, int(new_id), [int(old_id)]))
        status, _, body = harness.http("GET", f"{self.server.url}/api/v1/incidents?project=demo")
        self.assertEqual([i["id"] for i in body], [int(new_id)])
        harness.wait_for(lambda: self.sql_value("SELECT mail_state FROM incidents WHERE "
                                                "moved_to IS NULL") == "none",
                         timeout=10)   # no SMTP server here: nobody to tell, but it was let go
        # The routine history was not polluted: investigation runs are not judged.
        self.assertEqual(self.sql_value(
            "SELECT count(*) FROM detections d JOIN runs r ON r.id = d.run_id JOIN jobs j ON "
            "j.id = r.job_id WHERE j.investigation_id IS NOT NULL"), "0")

    def test_2_one_slow_run_is_overturned(self):
        base = 200
        record_history(self.db_url, base, 1)
        slow_once = {"left": 1}

        def level(c):
            if c == sha(base + 1) and slow_once["left"]:
                slow_once["left"] -= 1
                return 100 * SLOW            # the host was slow for that one run
            return 100.0
        w = ScriptedWorker(self.server, self.cat.workers["w1"], level, random.Random(2))
        before = int(self.sql_value("SELECT count(*) FROM alerts"))
        self.routine(base, w, times=4)
        self.routine(base + 1, w)
        alert_id = int(self.sql_value("SELECT max(id) FROM alerts"))
        self.assertEqual(int(self.sql_value("SELECT count(*) FROM alerts")), before + 1)
        w.drain(lambda: self.sql_value(
            f"SELECT investigating FROM alerts WHERE id = {alert_id}") == "f")
        alert, inv = self.investigation(alert_id)
        self.assertEqual(inv["state"], "overturned")
        self.assertEqual(alert["state"], "invalid")
        self.assertEqual(alert["resolved_by"], "overturned")
        self.assertEqual(alert["details"]["confirmation"]["state"], "overturned")
        self.assertEqual(self.sql("SELECT state, mail_state FROM incidents WHERE commit_id = "
                                  f"(SELECT bad_commit_id FROM alerts WHERE id = {alert_id})"),
                         [("invalid", "none")])

    def test_3_pinned_and_ahead_but_no_starvation(self):
        base = 300
        record_history(self.db_url, base, 1)
        harness.sql(self.db_url, "UPDATE projects SET settings = settings || :'p1'::jsonb",
                    '{"bisect": false, "investigation_priority": 3}')
        w = ScriptedWorker(self.server, self.cat.workers["w1"],
                           lambda c: 100 * SLOW if c == sha(base + 1) else 100.0,
                           random.Random(3))
        self.routine(base, w, times=4)
        self.routine(base + 1, w)
        inv_jobs = int(self.sql_value("SELECT count(*) FROM jobs WHERE state = 'queued' AND "
                                      "investigation_id IS NOT NULL"))
        self.assertEqual(inv_jobs, 10)
        routine_job = self.cat.job(sha(base))          # a push arrives meanwhile
        status, first = claim(self.server, self.cat.workers["w1"])
        self.assertEqual(first["reason"], "confirm", "investigation jobs go first")
        w.run_one(first)
        # The rest is pinned to w1: another worker of the target gets the routine job only.
        status, other = claim(self.server, self.cat.workers["w2"])
        self.assertEqual((status, other["id"]), (200, routine_job))
        # No starvation: a routine job that has waited gains a level per
        # second of waiting (queue_aging_s = 1 on this server), so a step
        # of priority 3 queued 4.5 s after it comes after it.
        server2 = self.start_server(env={"BENCHLINE_QUEUE_AGING_S": "1"})
        routine2 = self.cat.job(sha(base))
        time.sleep(4.5)
        newer_step = self.cat.job(sha(base + 1), priority=3)
        status, job = claim(server2, self.cat.workers["w2"])
        self.assertEqual((status, job["id"]), (200, routine2))
        status, job = claim(server2, self.cat.workers["w2"])
        self.assertEqual((status, job["id"]), (200, newer_step))
        server2.stop()
