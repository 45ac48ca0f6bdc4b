"""Worker faults: a worker killed mid-job, a server gone during upload, engines that crash, builds that fail."""
# benchline-test-timeout: 600

import json
import os
import subprocess
import time

import harness
from fixtures import Catalog, job_state, queue_job, start_worker

# A jsonl engine in sh that answers every request; "CRASH" in the repo makes it die.
ENGINE = r"""#!/bin/sh
echo '{"ready":true}'
n=0
while read -r l; do
  n=$((n + 1))
  if [ -f CRASH ] && [ $n -ge 3 ]; then echo "engine: fatal: bad tensor" >&2; kill -SEGV $$; fi
  id=$(echo "$l" | sed 's/.*"id":\([0-9]*\).*/\1/')
  sleep 0.05
  echo "{\"id\":$id,\"ttft_ms\":5,\"tokens\":4,\"total_ms\":50,\"token_ms\":[5,15,15,15]}"
done
"""


def make_repo(path):
    """A git repository whose commits are: good, crashing engine, failing build, good again."""
    os.makedirs(path)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")

    def git(*args):
        return subprocess.run(["git", "-C", path, *args], check=True, env=env,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    with open(os.path.join(path, "engine.sh"), "w") as f:
        f.write(ENGINE)
    os.chmod(os.path.join(path, "engine.sh"), 0o755)
    manifest = {"build": "test ! -f BREAK || { echo 'engine.c:12: error: expected ;' >&2; exit 2; }",
                "adapter": "jsonl", "command": ["./engine.sh"],
                "scenarios": {"latency": {}, "memory_leak": {}}}
    with open(os.path.join(path, "benchline.json"), "w") as f:
        json.dump(manifest, f)
    shas = {}
    git("add", "-A")
    git("commit", "-qm", "good")
    shas["good"] = git("rev-parse", "HEAD")
    open(os.path.join(path, "CRASH"), "w").close()
    git("add", "-A")
    git("commit", "-qm", "crash")
    shas["crash"] = git("rev-parse", "HEAD")
    os.remove(os.path.join(path, "CRASH"))
    open(os.path.join(path, "BREAK"), "w").close()
    git("add", "-A")
    git("commit", "-qm", "break the build")
    shas["break"] = git("rev-parse", "HEAD")
    os.remove(os.path.join(path, "BREAK"))
    git("add", "-A")
    git("commit", "-qm", "good again")
    shas["good2"] = git("rev-parse", "HEAD")
    return shas


LONG = {"latency": {"repetitions": 120, "warmup": 0, "prompt_tokens": [8], "max_tokens": [4]}}
SHORT = {"latency": {"repetitions": 5, "warmup": 0, "prompt_tokens": [8], "max_tokens": [4]},
         "memory_leak": {"requests": 10}}


class FaultCase(harness.DatabaseTestCase):
    server_env = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.repo = os.path.join(harness.tmpdir("repo-"), "engine")
        cls.shas = make_repo(cls.repo)
        harness.sql(cls.db_url, "UPDATE projects SET repo_url = :'p1'", cls.repo)
        cls.server = cls.start_server(env=cls.server_env)

    def wait_state(self, job, states, timeout=60):
        harness.wait_for(lambda: job_state(self.db_url, job)[0] in states, timeout=timeout,
                         interval=0.2, message=f"job {job} never reached {states}: "
                         f"{job_state(self.db_url, job)}")
        return job_state(self.db_url, job)


class TestWorkerKilled(FaultCase):
    server_env = {"BENCHLINE_LEASE_SECONDS": "3", "BENCHLINE_REAP_INTERVAL_MS": "200"}

    def test_kill_9_mid_job_another_worker_finishes_once(self):
        a = start_worker(self.__class__, self.server, self.cat.workers["w1"],
                         harness.tmpdir("wa-"), name="worker-a")
        job = queue_job(self.server, self.cat.admin, "demo", self.shas["good"], "t1",
                        ["latency"], params=LONG)
        harness.wait_for(lambda: "scenario latency: started" in a.log_text(), timeout=60)
        a.kill()
        self.assertEqual(job_state(self.db_url, job)[0], "running")
        b = start_worker(self.__class__, self.server, self.cat.workers["w2"],
                         harness.tmpdir("wb-"), name="worker-b")
        state = self.wait_state(job, ("done", "failed"), timeout=120)
        self.assertEqual(state, ("done", "2", ""))
        self.assertEqual(self.sql("SELECT attempt, w.name FROM runs r JOIN workers w ON "
                                  "w.id = r.worker_id WHERE r.job_id = :'p1'", job),
                         [("2", "w2")])
        self.assertIn("job %d attempt 2: result stored" % job, b.log_text())
        # The killed worker's engine did not outlive it.
        harness.wait_for(lambda: subprocess.run(["pgrep", "-f", "engine.sh"],
                                                capture_output=True).returncode == 1,
                         timeout=10, message="an engine.sh outlived its worker")


class TestServerDownDuringUpload(FaultCase):
    server_env = {"BENCHLINE_LEASE_SECONDS": "300"}

    def test_spooled_result_arrives_after_restarts(self):
        work = harness.tmpdir("wspool-")
        w = start_worker(self.__class__, self.server, self.cat.workers["w1"], work)
        job = queue_job(self.server, self.cat.admin, "demo", self.shas["good"], "t1",
                        ["latency"], params={"latency": {"repetitions": 30, "warmup": 0,
                                                         "prompt_tokens": [8],
                                                         "max_tokens": [4]}})
        harness.wait_for(lambda: "scenario latency: started" in w.log_text(), timeout=60)
        self.server.stop()          # gone while the worker measures and uploads
        harness.wait_for(lambda: "kept in the spool" in w.log_text(), timeout=60)
        spooled = os.listdir(os.path.join(work, "spool"))
        self.assertIn(f"{job}-1.json", spooled)
        # The worker itself restarts while the result waits.
        w.stop()
        self.assertIn("in the spool; they are sent at the next start", w.log_text())
        self.server.start()
        w2 = start_worker(self.__class__, self.server, self.cat.workers["w1"], work,
                          name="worker-restarted")
        self.assertEqual(self.wait_state(job, ("done",), timeout=60), ("done", "1", ""))
        self.assertEqual(self.sql_value("SELECT count(*) FROM runs WHERE job_id = :'p1'", job),
                         "1")
        self.assertIn(f"job {job} attempt 1: result stored", w2.log_text())
        self.assertEqual([f for f in os.listdir(os.path.join(work, "spool")) if f.endswith(".json")],
                         [])


class TestBadCommits(FaultCase):
    def test_crash_and_build_failure_fail_with_reasons_and_the_worker_goes_on(self):
        w = start_worker(self.__class__, self.server, self.cat.workers["w1"],
                         harness.tmpdir("wbad-"))
        crash = queue_job(self.server, self.cat.admin, "demo", self.shas["crash"], "t1",
                          ["latency"], params=SHORT)
        broken = queue_job(self.server, self.cat.admin, "demo", self.shas["break"], "t1",
                           ["latency"], params=SHORT)
        good = queue_job(self.server, self.cat.admin, "demo", self.shas["good2"], "t1",
                         ["latency", "memory_leak"], params=SHORT)
        state, attempt, reason = self.wait_state(crash, ("done", "failed"))
        self.assertEqual(state, "failed")
        self.assertIn("scenario 'latency' failed", reason)
        self.assertIn("killed by signal 11", reason)
        self.assertIn("engine: fatal: bad tensor", reason)
        state, attempt, reason = self.wait_state(broken, ("done", "failed"))
        self.assertEqual(state, "failed")
        self.assertIn("build failed", reason)
        self.assertIn("exit status 2", reason)
        tail = self.sql_value("SELECT log_tail FROM jobs WHERE id = :'p1'", broken)
        self.assertIn("engine.c:12: error: expected ;", tail)
        self.assertEqual(self.wait_state(good, ("done", "failed")), ("done", "1", ""))
        self.assertTrue(w.alive())
        # Nothing of the failed jobs was stored.
        self.assertEqual(self.sql_value("SELECT count(*) FROM runs WHERE job_id IN "
                                        "(:'p1', :'p2')", crash, broken), "0")

    def test_unknown_commit_is_handed_back_and_fails_after_the_attempts(self):
        start_worker(self.__class__, self.server, self.cat.workers["w3"], harness.tmpdir("wu-"))
        job = queue_job(self.server, self.cat.admin, "demo", "ab" * 20, "t2", ["latency"],
                        params=SHORT, max_attempts=2)
        state, attempt, reason = self.wait_state(job, ("done", "failed"), timeout=90)
        self.assertEqual((state, attempt), ("failed", "2"))
        self.assertIn("checkout failed", reason)
        self.assertIn("abababab", reason)
