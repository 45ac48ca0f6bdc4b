"""The job queue: concurrent claims never share a job; long polls wake on NOTIFY; targets stay apart."""

import threading
import time

import harness
from fixtures import Catalog, claim, sha


class TestClaim(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.server = cls.start_server(env={"BENCHLINE_THREADS": "4"})

    def setUp(self):
        self.sql("DELETE FROM jobs")

    def test_two_workers_never_get_the_same_job(self):
        jobs = {self.cat.job(sha(100 + i)) for i in range(40)}
        got = {"w1": [], "w2": []}
        errors = []

        def drain(name):
            while True:
                status, body = claim(self.server, self.cat.workers[name])
                if status == 204:
                    return
                if status != 200:
                    errors.append((status, body))
                    return
                got[name].append(body["id"])

        threads = [threading.Thread(target=drain, args=(n,)) for n in got]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        claimed = got["w1"] + got["w2"]
        self.assertEqual(len(claimed), len(set(claimed)), "a job was handed out twice")
        self.assertEqual(set(claimed), jobs)
        self.assertGreater(len(got["w1"]), 0)
        self.assertGreater(len(got["w2"]), 0)
        rows = self.sql("SELECT state, attempt, count(*) FROM jobs GROUP BY 1, 2")
        self.assertEqual(rows, [("running", "1", "40")])

    def test_claim_order_priority_then_age(self):
        low = self.cat.job(sha(201))
        high = self.cat.job(sha(202), priority=10)
        low2 = self.cat.job(sha(203))
        order = [claim(self.server, self.cat.workers["w1"])[1]["id"] for _ in range(3)]
        self.assertEqual(order, [high, low, low2])

    def test_claim_body_describes_the_job(self):
        job = self.cat.job(sha(300), scenarios="latency,memory_leak")
        status, body = claim(self.server, self.cat.workers["w1"])
        self.assertEqual(status, 200)
        self.assertEqual(body["id"], job)
        self.assertEqual(body["attempt"], 1)
        self.assertEqual(body["commit"], sha(300))
        self.assertEqual(body["project"], "demo")
        self.assertEqual(body["branch"], "main")
        self.assertEqual(body["target"], "t1")
        self.assertEqual(body["scenarios"], ["latency", "memory_leak"])
        self.assertEqual(body["repo_url"], "file:///nonexistent/demo.git")

    def test_worker_only_gets_its_targets_jobs(self):
        self.cat.job(sha(400), target="t2")
        status, _ = claim(self.server, self.cat.workers["w1"])
        self.assertEqual(status, 204)
        status, body = claim(self.server, self.cat.workers["w3"])
        self.assertEqual(status, 200)
        self.assertEqual(body["target"], "t2")

    def test_long_poll_wakes_when_a_job_is_queued(self):
        result = {}

        def waiter():
            t0 = time.monotonic()
            result["status"], result["body"] = claim(self.server, self.cat.workers["w2"],
                                                     wait_s=20)
            result["elapsed"] = time.monotonic() - t0

        th = threading.Thread(target=waiter)
        th.start()
        time.sleep(1.0)
        self.assertTrue(th.is_alive(), "the claim did not wait")
        job = self.cat.job(sha(500))
        th.join(15)
        self.assertFalse(th.is_alive())
        self.assertEqual(result["status"], 200)
        self.assertEqual(result["body"]["id"], job)
        # Woken by NOTIFY, not by the end of the 20 s wait.
        self.assertLess(result["elapsed"], 5)

    def test_long_poll_ends_with_204(self):
        t0 = time.monotonic()
        status, _ = claim(self.server, self.cat.workers["w1"], wait_s=2)
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 204)
        self.assertGreaterEqual(elapsed, 1.9)
        self.assertLess(elapsed, 6)

    def test_many_waiting_claims_do_not_block_other_requests(self):
        # More waiting claims than HTTP threads: they are suspended, not parked.
        threads = [threading.Thread(target=claim, args=(self.server, self.cat.workers["w1"], 4))
                   for _ in range(12)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        status, _, _ = harness.http("GET", self.server.url + "/healthz", timeout=5)
        self.assertEqual(status, 200)
        self.assertLess(time.monotonic() - t0, 1.0)
        for t in threads:
            t.join(15)

    def test_claim_needs_a_worker_token(self):
        for token in (None, "nonsense", self.cat.admin,
                      self.cat.workers["w1"][:-1] + ("0" if self.cat.workers["w1"][-1] != "0" else "1")):
            status, headers, body = harness.http("POST", self.server.url + "/api/v1/jobs/claim",
                                                 {}, token=token)
            self.assertEqual(status, 401, token)
            self.assertEqual(body["error"]["code"], "unauthorized")
            self.assertIn("worker token", body["error"]["message"])
