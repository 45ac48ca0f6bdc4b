"""End to end: the tinyllm demo history benchmarked by a real worker through a real server.

A job for each interesting commit runs; the leaking commit's RSS slope stands
far above the baseline's, the slower commit's tokens/s is below its
neighbours', and the drifting commit's accuracy is worse.
"""
# benchline-test-timeout: 900

import statistics

import harness
from fixtures import QUICK_PARAMS, Catalog, demo_history, job_state, queue_job, start_worker


ROLES = ("baseline", "speedup", "slow", "leak", "drift", "fix")
# Speed is compared over interleaved rounds (A B C A B C ...), so a burst of
# load on this noisy machine hits every commit alike instead of one of them.
SPEED_ROLES = ("speedup", "slow", "fix")
SPEED_ROUNDS = 2


class TestWorkerHistory(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.repo, cls.shas = demo_history()
        cls.cat = Catalog(cls.db_url)
        harness.sql(cls.db_url, "UPDATE projects SET repo_url = :'p1' WHERE name = 'demo'",
                    cls.repo)
        cls.server = cls.start_server()
        cls.worker = start_worker(cls, cls.server, cls.cat.workers["w1"],
                                  harness.tmpdir("worker-"),
                                  env={"BENCHLINE_WORKER_ENGINE_CPUS": "1"})
        cls.jobs = {}
        for role in ROLES:
            cls.jobs[role] = queue_job(cls.server, cls.cat.admin, "demo", cls.shas[role], "t1",
                                       ["latency", "memory_leak", "accuracy"])
        cls.speed_jobs = {role: [cls.jobs[role]] for role in SPEED_ROLES}
        for _ in range(SPEED_ROUNDS):
            for role in SPEED_ROLES:
                cls.speed_jobs[role].append(queue_job(
                    cls.server, cls.cat.admin, "demo", cls.shas[role], "t1", ["latency"],
                    params={"latency": QUICK_PARAMS["latency"]}))
        every = list(cls.jobs.values()) + [j for js in cls.speed_jobs.values() for j in js]
        harness.wait_for(lambda: all(job_state(cls.db_url, j)[0] in ("done", "failed")
                                     for j in every), timeout=600, interval=1,
                         message="the worker did not finish the history's jobs")

    def value(self, role, scenario, metric, job=None):
        v = self.sql_value(
            "SELECT p.value FROM points p JOIN series s ON s.id = p.series_id "
            "JOIN runs r ON r.id = p.run_id WHERE r.job_id = :'p1' AND s.scenario = :'p2' "
            "AND s.metric = :'p3'", job or self.jobs[role], scenario, metric)
        self.assertIsNotNone(v, f"no {scenario}/{metric} for {role}")
        return float(v)

    def speed(self, role):
        """The median over the interleaved rounds of each run's median tokens/s."""
        return statistics.median(self.value(role, "latency", "tokens_per_s", job)
                                 for job in self.speed_jobs[role])

    def test_every_job_is_done_once(self):
        for role, job in self.jobs.items():
            self.assertEqual(job_state(self.db_url, job), ("done", "1", ""), role)
            self.assertEqual(self.sql_value("SELECT count(*) FROM runs WHERE job_id = :'p1'", job),
                             "1")
        env = self.sql_value("SELECT environment->>'engine_commit' FROM runs r "
                             "WHERE r.job_id = :'p1'", self.jobs["slow"])
        self.assertEqual(env, self.shas["slow"])

    def test_leaking_commit_has_a_clear_slope(self):
        leak = self.value("leak", "memory_leak", "rss_slope_bytes_per_request")
        base = self.value("baseline", "memory_leak", "rss_slope_bytes_per_request")
        fix = self.value("fix", "memory_leak", "rss_slope_bytes_per_request")
        self.assertGreater(leak, 16 * 1024, "the leak commit leaks at least 16 KiB a request")
        self.assertGreater(leak, 10 * max(base, 1024.0))
        self.assertLess(fix, leak / 10)
        # The RSS per request is kept as a series inside the run.
        n = self.sql_value("SELECT array_length(v, 1) FROM run_series rs JOIN runs r ON "
                           "r.id = rs.run_id WHERE r.job_id = :'p1' AND rs.name = "
                           "'rss_per_request'", self.jobs["leak"])
        self.assertEqual(n, "60")

    def test_slower_commit_has_lower_tokens_per_s(self):
        slow = self.speed("slow")
        for other in ("speedup", "fix"):
            self.assertLess(slow, self.speed(other), other)

    def test_drifting_commit_is_less_accurate(self):
        drift = self.value("drift", "accuracy", "top1_agreement")
        base = self.value("baseline", "accuracy", "top1_agreement")
        self.assertLess(drift, base - 0.01)
        self.assertGreater(self.value("drift", "accuracy", "kl_divergence"),
                           self.value("baseline", "accuracy", "kl_divergence"))

    def test_run_carries_time_series_and_params(self):
        names = {r[0] for r in self.sql(
            "SELECT rs.scenario || '/' || rs.name FROM run_series rs JOIN runs r "
            "ON r.id = rs.run_id WHERE r.job_id = :'p1'", self.jobs["baseline"])}
        self.assertIn("memory_leak/rss_bytes", names)
        self.assertIn("latency/cpu_pct", names)
        reps = self.sql_value("SELECT info->'latency'->'params'->>'repetitions' FROM runs "
                              "WHERE job_id = :'p1'", self.jobs["baseline"])
        self.assertEqual(reps, "15")
