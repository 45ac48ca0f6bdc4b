"""Two servers on one database: concurrent claimers spread over both never get a job twice,
and a claim waiting on one server is woken (LISTEN/NOTIFY) by a job queued through the other."""

import collections
import re
import statistics
import threading
import time

import harness
from fixtures import Catalog, cli_ok, claim, result, sha

N_JOBS = 60
CLAIMERS = 6


class TestTwoServers(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.tokens = [cls.cat.workers["w1"], cls.cat.workers["w2"]]
        for i in range(len(cls.tokens), CLAIMERS):
            cls.tokens.append(cli_ok(cls.db_url, "worker", "create", "--target", "t1",
                                     "--name", f"c{i}").strip())
        env = {"BENCHLINE_THREADS": "4", "BENCHLINE_LOG_LEVEL": "info"}
        cls.a = cls.start_server(env=env, name="server-a")
        cls.b = cls.start_server(env=env, name="server-b")
        cls.servers = [cls.a, cls.b]

    def queue(self, server, commit):
        status, _, body = harness.http(
            "POST", server.url + "/api/v1/jobs",
            {"project": "demo", "commit": commit, "target": "t1", "scenarios": ["latency"]},
            token=self.cat.admin)
        self.assertEqual(status, 201, body)
        return body["id"]

    def test_1_many_claimers_two_servers_each_job_once(self):
        claims = []             # (job, attempt, server name, claimer)
        uploaded = []
        errors = []
        stop = threading.Event()

        def claimer(i):
            k = 0
            while not stop.is_set():
                # Alternate servers, and upload through the other one.
                srv, other = self.servers[(i + k) % 2], self.servers[(i + k + 1) % 2]
                k += 1
                try:
                    status, body = claim(srv, self.tokens[i], wait_s=3)
                except OSError as e:
                    errors.append(f"claimer {i}: claim on {srv.name}: {e}")
                    return
                if status == 204:
                    continue
                if status != 200:
                    errors.append(f"claimer {i}: claim on {srv.name}: {status} {body}")
                    return
                claims.append((body["id"], body["attempt"], srv.name, i))
                status, _, answer = harness.http(
                    "POST", f"{other.url}/api/v1/jobs/{body['id']}/result",
                    result(body["attempt"]), token=self.tokens[i])
                if status != 200:
                    errors.append(f"claimer {i}: result of job {body['id']}: {status} {answer}")
                    return
                uploaded.append(body["id"])

        threads = [threading.Thread(target=claimer, args=(i,), daemon=True)
                   for i in range(CLAIMERS)]
        for t in threads:
            t.start()
        time.sleep(0.5)         # every claimer is now in a long poll on an empty queue
        half = N_JOBS // 2
        try:
            # One at a time while they wait, alternately through each server's API...
            t0 = time.monotonic()
            queued = [self.queue(self.servers[n % 2], sha(1000 + n)) for n in range(half)]
            harness.wait_for(lambda: len(uploaded) >= half or errors, timeout=60,
                             message=f"{half} jobs to be claimed and uploaded")
            trickle = time.monotonic() - t0
            # ...then the rest in one transaction: they appear at once, every
            # waiting claim on both servers wakes, and all race for them.
            t0 = time.monotonic()
            queued += [int(row[0]) for row in self.sql("""
                WITH c AS (
                    INSERT INTO commits (project_id, sha)
                    SELECT p.id, md5('bulk ' || g) FROM projects p, generate_series(1, :'p1'::int) g
                     WHERE p.name = 'demo' RETURNING id)
                INSERT INTO jobs (project_id, commit_id, target_id, branch, scenarios)
                SELECT (SELECT id FROM projects WHERE name = 'demo'), c.id,
                       (SELECT id FROM targets WHERE name = 't1'), 'main', '{latency}'
                  FROM c RETURNING id""", N_JOBS - half)]
            harness.wait_for(lambda: len(uploaded) >= N_JOBS or errors, timeout=60,
                             message=f"{N_JOBS} jobs to be claimed and uploaded")
            burst = time.monotonic() - t0
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        self.assertEqual(errors, [])

        # From the replies: every job exactly once, at its first attempt.
        per_job = collections.Counter(job for job, _, _, _ in claims)
        self.assertEqual(sorted(per_job), sorted(queued))
        self.assertEqual([j for j, n in per_job.items() if n != 1], [], "a job was handed out twice")
        self.assertEqual({attempt for _, attempt, _, _ in claims}, {1})
        per_server = collections.Counter(name for _, _, name, _ in claims)
        per_claimer = collections.Counter(i for _, _, _, i in claims)
        self.assertGreater(per_server["server-a"], 0)
        self.assertGreater(per_server["server-b"], 0)
        self.assertGreaterEqual(len(per_claimer), 2)

        # From the database: one claim each (attempt counts claims), one run each.
        self.assertEqual(self.sql("SELECT state, attempt, count(*) FROM jobs GROUP BY 1, 2"),
                         [("done", "1", str(N_JOBS))])
        self.assertEqual(self.sql("SELECT job_id FROM runs GROUP BY job_id HAVING count(*) <> 1"), [])
        self.assertEqual(self.sql_value("SELECT count(DISTINCT job_id) FROM runs"), str(N_JOBS))
        # From the servers' logs: each job claimed on exactly one of them, once.
        logged = collections.Counter()
        for srv in self.servers:
            for m in re.finditer(r"job (\d+) claimed by worker", srv.log_text()):
                logged[int(m.group(1))] += 1
        self.assertEqual(logged, collections.Counter({j: 1 for j in queued}))
        print(f"{N_JOBS} jobs, {CLAIMERS} claimers: {half} queued one by one through the APIs "
              f"drained in {trickle:.2f} s, {N_JOBS - half} queued at once in {burst:.2f} s; "
              f"claims per server {dict(per_server)}; per claimer {sorted(per_claimer.values())}")

    def test_2_claim_waiting_on_b_wakes_for_a_job_queued_through_a(self):
        rounds, parked = 10, 3
        lock = threading.Lock()
        got = []                # (job, time answered, claimer)
        errors = []

        def waiter(i):
            try:
                status, body = claim(self.b, self.tokens[i], wait_s=20)
            except OSError as e:
                errors.append(f"waiter {i}: {e}")
                return
            with lock:
                if status == 200:
                    got.append((body["id"], time.monotonic(), i))
                else:
                    errors.append(f"waiter {i}: {status} {body}")

        waiters = []

        def park(n):
            for _ in range(n):
                t = threading.Thread(target=waiter, args=(len(waiters) % CLAIMERS,), daemon=True)
                waiters.append(t)
                t.start()

        park(parked)
        latencies, post_ms, after_post = [], [], []
        for r in range(rounds):
            time.sleep(0.3)     # let the waiters reach their long poll on B
            self.assertEqual(sum(t.is_alive() for t in waiters), min(parked, rounds - r))
            before = len(got)
            t0 = time.monotonic()
            job = self.queue(self.a, sha(2000 + r))
            t1 = time.monotonic()
            post_ms.append((t1 - t0) * 1000)
            harness.wait_for(lambda: len(got) > before or errors, timeout=10,
                             message=f"round {r}: a waiter on B to get job {job}")
            self.assertEqual(errors, [])
            self.assertEqual(len(got), before + 1, "one job woke more than one claim")
            claimed, answered, _ = got[-1]
            self.assertEqual(claimed, job)
            latencies.append((answered - t0) * 1000)
            after_post.append((answered - t1) * 1000)
            if rounds - r > parked:
                park(1)         # keep three waiting, until the last rounds use them up
        for t in waiters:
            t.join(25)
        self.assertEqual(errors, [])
        self.assertEqual(len(got), rounds)
        # Woken by NOTIFY, not by the end of a 20 s wait, nor by a 1 s poll.
        self.assertLess(max(latencies), 1000, latencies)
        print("wake latency, job queued through server A's API -> claim answered on server B "
              f"({rounds} rounds, {parked} claims waiting): min {min(latencies):.1f} ms, "
              f"median {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms "
              f"(the POST to A itself: median {statistics.median(post_ms):.1f} ms; the claim "
              f"answered {statistics.median(after_post):+.1f} ms after A answered, median)")
