"""Leases: heartbeats extend them; an expired one returns the job to the queue, up to max_attempts."""

import time

import harness
from fixtures import Catalog, claim, result, sha


class TestLease(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.server = cls.start_server(env={
            "BENCHLINE_LEASE_SECONDS": "2", "BENCHLINE_REAP_INTERVAL_MS": "200"})

    def setUp(self):
        # Dependents first: the detector may have judged the runs already.
        self.sql("DELETE FROM detections; DELETE FROM alerts; DELETE FROM incidents; "
                 "DELETE FROM run_series; DELETE FROM points; DELETE FROM runs; DELETE FROM jobs")

    def hb(self, job, worker, attempt):
        return harness.http("POST", f"{self.server.url}/api/v1/jobs/{job}/heartbeat",
                            {"attempt": attempt}, token=self.cat.workers[worker])

    def test_expired_lease_requeues_and_another_worker_finishes(self):
        job = self.cat.job(sha(1))
        status, body = claim(self.server, self.cat.workers["w1"])
        self.assertEqual((status, body["id"], body["attempt"]), (200, job, 1))
        # w1 goes silent; the lease expires and the job is queued again.
        harness.wait_for(lambda: self.sql_value(
            "SELECT state FROM jobs WHERE id = :'p1'", job) == "queued", timeout=10)
        self.assertIn("lease of attempt 1 expired",
                      self.sql_value("SELECT fail_reason FROM jobs WHERE id = :'p1'", job))
        status, body = claim(self.server, self.cat.workers["w2"])
        self.assertEqual((status, body["id"], body["attempt"]), (200, job, 2))
        # The old lease is gone: w1's heartbeat and result are refused.
        status, _, err = self.hb(job, "w1", 1)
        self.assertEqual(status, 409)
        self.assertIn("not leased", err["error"]["message"])
        status, _, err = harness.http("POST", f"{self.server.url}/api/v1/jobs/{job}/result",
                                      result(1), token=self.cat.workers["w1"])
        self.assertEqual(status, 409)
        status, _, ok = harness.http("POST", f"{self.server.url}/api/v1/jobs/{job}/result",
                                     result(2), token=self.cat.workers["w2"])
        self.assertEqual(status, 200, ok)
        self.assertEqual(self.sql("SELECT attempt, worker_id IS NOT NULL FROM runs "
                                  "WHERE job_id = :'p1'", job), [("2", "t")])
        self.assertEqual(self.sql_value("SELECT state FROM jobs WHERE id = :'p1'", job), "done")

    def test_heartbeat_keeps_the_lease(self):
        job = self.cat.job(sha(2))
        claim(self.server, self.cat.workers["w1"])
        for _ in range(5):           # 5 s of work with a 2 s lease
            time.sleep(1)
            status, _, body = self.hb(job, "w1", 1)
            self.assertEqual(status, 200, body)
        self.assertEqual(self.sql("SELECT state, attempt FROM jobs WHERE id = :'p1'", job),
                         [("running", "1")])

    def test_last_attempt_fails_the_job_with_the_reason(self):
        # max_attempts through the API, so it can be 2.
        status, _, body = harness.http("POST", self.server.url + "/api/v1/jobs", {
            "project": "demo", "commit": sha(3), "target": "t1",
            "scenarios": ["latency"], "max_attempts": 2}, token=self.cat.admin)
        self.assertEqual(status, 201, body)
        job = body["id"]
        for attempt in (1, 2):
            status, body = claim(self.server, self.cat.workers["w1"], wait_s=10)
            self.assertEqual((status, body["id"], body["attempt"]), (200, job, attempt))
        harness.wait_for(lambda: self.sql_value(
            "SELECT state FROM jobs WHERE id = :'p1'", job) == "failed", timeout=10)
        self.assertIn("last of 2 attempts",
                      self.sql_value("SELECT fail_reason FROM jobs WHERE id = :'p1'", job))
        self.assertEqual(claim(self.server, self.cat.workers["w1"])[0], 204)

    def test_fail_records_reason_and_log_tail(self):
        job = self.cat.job(sha(4))
        claim(self.server, self.cat.workers["w1"])
        status, _, body = harness.http("POST", f"{self.server.url}/api/v1/jobs/{job}/fail", {
            "attempt": 1, "reason": "build failed: exit status 2",
            "log_tail": "main.c:1: error: oops\n"}, token=self.cat.workers["w1"])
        self.assertEqual(status, 200, body)
        self.assertEqual(self.sql("SELECT state, fail_reason, log_tail FROM jobs WHERE id = :'p1'",
                                  job),
                         [("failed", "build failed: exit status 2", "main.c:1: error: oops\n")])

    def test_handed_back_job_is_queued_again(self):
        job = self.cat.job(sha(5))
        claim(self.server, self.cat.workers["w1"])
        status, _, body = harness.http("POST", f"{self.server.url}/api/v1/jobs/{job}/fail", {
            "attempt": 1, "reason": "worker stopping", "retry": True},
            token=self.cat.workers["w1"])
        self.assertEqual(status, 200, body)
        status, body = claim(self.server, self.cat.workers["w2"])
        self.assertEqual((status, body["id"], body["attempt"]), (200, job, 2))

    def test_heartbeat_of_unknown_or_foreign_job(self):
        job = self.cat.job(sha(6))
        claim(self.server, self.cat.workers["w1"])
        status, _, body = self.hb(job, "w2", 1)
        self.assertEqual(status, 409)
        status, _, body = self.hb(999999, "w1", 1)
        self.assertEqual(status, 404)
        self.assertEqual(body["error"]["code"], "not_found")
