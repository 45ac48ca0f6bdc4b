"""A webhook burst: hundreds of GitHub deliveries in a few seconds, a fifth of
them repeated, some twins racing each other.  Every distinct push is recorded
once, jobs of a branch follow its pushes, and /healthz stays responsive."""

import concurrent.futures
import copy
import hashlib
import hmac
import json
import os
import random
import statistics
import threading
import time
import uuid

import harness
from fixtures import Catalog

SECRET = "burst-secret"
BRANCHES = ("main", "dev", "release/1.x")
PUSHES_PER_BRANCH = 80          # 240 distinct pushes
TWIN_EVERY = 10                 # every 10th push is sent twice at once: 24 twins
RESENDS = 36                    # redeliveries of pushes already answered
HEALTHZ_LIMIT_S = 1.0


def push_payload(template, branch, before, tag, ncommits):
    body = copy.deepcopy(template)
    commit = body["commits"][0]
    body["commits"] = []
    for i in range(ncommits):
        c = copy.deepcopy(commit)
        c["id"] = hashlib.sha1(f"{tag} {i}".encode()).hexdigest()
        c["message"] = f"{tag}: commit {i}"
        body["commits"].append(c)
    body["ref"] = "refs/heads/" + branch
    body["before"] = before
    body["after"] = body["commits"][-1]["id"]
    body["head_commit"] = copy.deepcopy(body["commits"][-1])
    body["compare"] = f"https://github.com/octo-org/engine/compare/{before[:12]}...{body['after'][:12]}"
    return body


class TestWebhookBurst(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.server = cls.start_server(env={"BENCHLINE_LOG_LEVEL": "info"})
        status, _, answer = harness.http(
            "POST", cls.server.url + "/api/v1/projects",
            {"name": "engine", "repo_url": "https://github.com/octo-org/engine.git",
             "webhook_secret": SECRET, "settings": {"branches": ["main", "dev", "release/*"]}},
            token=cls.cat.admin)
        assert status == 201, answer

    def deliver(self, data, delivery):
        sig = "sha256=" + hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
        t0 = time.monotonic()
        status, _, answer = harness.http(
            "POST", self.server.url + "/hooks/github", data,
            headers={"Content-Type": "application/json", "X-GitHub-Event": "push",
                     "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig,
                     "User-Agent": "GitHub-Hookshot/044aadd"})
        return status, answer, time.monotonic() - t0

    def test_burst(self):
        with open(os.path.join(harness.REPO, "tests", "fixtures", "webhooks",
                               "github_push.json")) as f:
            template = json.load(f)
        rng = random.Random(20240301)
        targets = int(self.sql_value("SELECT count(*) FROM targets WHERE active"))

        # The pushes of each branch, in order: each continues where the last ended.
        pushes = {}             # branch -> [(delivery, bytes, head, ncommits)]
        for b, branch in enumerate(BRANCHES):
            before = hashlib.sha1(f"{branch} base".encode()).hexdigest()
            pushes[branch] = []
            for k in range(PUSHES_PER_BRANCH):
                n = rng.randint(1, 3)
                body = push_payload(template, branch, before, f"{branch} push {k}", n)
                delivery = str(uuid.UUID(int=rng.getrandbits(128)))
                pushes[branch].append((delivery, json.dumps(body).encode(), body["after"], n))
                before = body["after"]

        lock = threading.Lock()
        answered = []           # (delivery, data) of pushes already answered
        results = []            # (delivery, status, answer, seconds)
        done = threading.Event()

        def record(delivery, status, answer, secs):
            with lock:
                results.append((delivery, status, answer, secs))

        def branch_sender(branch):
            # One thread per branch: its pushes go one after the other, in order.
            with concurrent.futures.ThreadPoolExecutor(2) as twins:
                for k, (delivery, data, _, _) in enumerate(pushes[branch]):
                    copies = 2 if k % TWIN_EVERY == TWIN_EVERY - 1 else 1
                    futures = [twins.submit(self.deliver, data, delivery) for _ in range(copies)]
                    for fut in futures:
                        record(delivery, *fut.result())
                    with lock:
                        answered.append((delivery, data))

        def resender(count, seed):
            r = random.Random(seed)
            sent = 0
            while sent < count:
                with lock:
                    pick = r.choice(answered) if answered else None
                if pick is None:
                    time.sleep(0.005)
                    continue
                record(pick[0], *self.deliver(pick[1], pick[0]))
                sent += 1
                time.sleep(r.uniform(0, 0.02))

        probes = []

        def prober():
            while not done.is_set():
                t0 = time.monotonic()
                status, _, _ = harness.http("GET", self.server.url + "/healthz", timeout=10)
                probes.append((status, time.monotonic() - t0))
                time.sleep(0.02)

        probe = threading.Thread(target=prober)
        probe.start()
        t0 = time.monotonic()
        try:
            with concurrent.futures.ThreadPoolExecutor(len(BRANCHES) + 2) as pool:
                futures = [pool.submit(branch_sender, b) for b in BRANCHES]
                futures += [pool.submit(resender, RESENDS // 2, s) for s in (1, 2)]
                for fut in futures:
                    fut.result()
        finally:
            elapsed = time.monotonic() - t0
            done.set()
            probe.join()

        distinct = sum(len(p) for p in pushes.values())
        total = len(results)
        latencies = sorted(s for _, _, _, s in results)
        probe_lat = [s for _, s in probes]
        print(f"\n    burst: {total} deliveries ({distinct} distinct, {total - distinct} repeated) "
              f"in {elapsed:.2f} s = {total / elapsed:.0f} deliveries/s; delivery latency "
              f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
              f"p99 {latencies[int(0.99 * (total - 1))] * 1000:.1f} ms, "
              f"max {latencies[-1] * 1000:.1f} ms")
        print(f"    /healthz during the burst: {len(probes)} probes, "
              f"p50 {statistics.median(probe_lat) * 1000:.1f} ms, "
              f"max {max(probe_lat) * 1000:.1f} ms", flush=True)

        self.assertEqual(total, distinct + (distinct // TWIN_EVERY) + RESENDS)
        self.assertGreaterEqual((total - distinct) / total, 0.15)
        # Every delivery answered: exactly one 201 per distinct push, 200 duplicates for the rest.
        created = {}
        for delivery, status, answer, _ in results:
            self.assertIn(status, (200, 201), answer)
            if status == 201:
                self.assertNotIn(delivery, created, "a delivery created jobs twice")
                created[delivery] = answer
            else:
                self.assertEqual(answer, {"duplicate": True, "delivery": delivery})
        self.assertEqual(len(created), distinct)
        # The database agrees: each delivery once, each commit once, the jobs exactly.
        self.assertEqual(self.sql_value("SELECT count(*) FROM webhook_deliveries"), str(distinct))
        commits = sum(p[3] for ps in pushes.values() for p in ps)
        self.assertEqual(self.sql_value("SELECT count(*) FROM commits c JOIN projects p ON "
                                        "p.id = c.project_id WHERE p.name = 'engine'"),
                         str(commits))
        self.assertEqual(self.sql_value("SELECT count(*) FROM jobs"), str(distinct * targets))
        # Jobs of a branch are queued in the order of its pushes.
        for branch in BRANCHES:
            heads = [p[2] for p in pushes[branch]]
            rows = self.sql("SELECT c.sha FROM jobs j JOIN commits c ON c.id = j.commit_id "
                            "WHERE j.branch = :'p1' ORDER BY j.id", branch)
            self.assertEqual([r[0] for r in rows], [h for h in heads for _ in range(targets)],
                             f"jobs of {branch} out of push order")
            ids = [created[p[0]]["jobs"] for p in pushes[branch]]
            for older, newer in zip(ids, ids[1:]):
                self.assertLess(max(older), min(newer))
        # The server stayed responsive throughout.
        self.assertGreater(len(probes), 5)
        self.assertTrue(all(status == 200 for status, _ in probes))
        self.assertLess(max(probe_lat), HEALTHZ_LIMIT_S)
