"""Fixtures shared by the integration tests: a catalog made through the real CLI,
and result uploads shaped as the worker sends them."""

import hashlib

import harness


def cli_ok(db_url, *args):
    """Runs the benchline CLI and returns its stdout; fails loudly otherwise."""
    rc, out, err = harness.cli(*args, db_url=db_url)
    if rc != 0:
        raise AssertionError(f"benchline {' '.join(map(str, args))} exited {rc}: {err}")
    return out


class Catalog:
    """A project, two targets, workers and an admin token, created by the CLI.

    Attributes: admin (token), workers {name: token} with w1, w2 on target
    't1' and w3 on 't2'."""

    def __init__(self, db_url):
        self.db_url = db_url
        cli_ok(db_url, "migrate")
        cli_ok(db_url, "project", "create", "demo", "--repo", "file:///nonexistent/demo.git")
        cli_ok(db_url, "target", "create", "t1", "--arch", "x86_64", "--cpu", "test cpu")
        cli_ok(db_url, "target", "create", "t2", "--arch", "aarch64")
        self.admin = cli_ok(db_url, "admin-token", "create", "--name", "tests").strip()
        self.workers = {}
        for name, target in (("w1", "t1"), ("w2", "t1"), ("w3", "t2")):
            self.workers[name] = cli_ok(db_url, "worker", "create", "--target", target,
                                        "--name", name).strip()

    def job(self, sha, target="t1", scenarios="latency", priority=None, **extra):
        args = ["job", "create", "--project", "demo", "--commit", sha, "--target", target,
                "--scenarios", scenarios]
        if priority is not None:
            args += ["--priority", str(priority)]
        for k, v in extra.items():
            args += ["--" + k, str(v)]
        return int(cli_ok(self.db_url, *args).strip())


def sha(i):
    """A well-formed commit sha for index i, distinct from its first digits on."""
    return hashlib.sha1(f"commit {i}".encode()).hexdigest()


ENVIRONMENT = {
    "cpu_model": "Test CPU @ 2.0GHz", "cores": 2, "governor": "performance",
    "kernel": "6.1.0-test", "compiler": "gcc 12.2.0", "engine_commit": sha(1),
    "worker_version": "0.1.0",
}


def result(attempt, metrics=None, scenario="latency", timeseries=None):
    """A result upload: metrics is {name: (unit, direction, samples)}."""
    metrics = metrics or {
        "tokens_per_s": ("tok/s", "higher", [100.0, 102.5, 98.25, 101.0]),
        "ttft_ms": ("ms", "lower", [12.0, 13.5, 11.75]),
    }
    body = {
        "attempt": attempt,
        "environment": dict(ENVIRONMENT),
        "build": {"duration_s": 1.5, "log_tail": "cc -O2 ...\nok\n"},
        "duration_s": 3.25,
        "scenarios": {scenario: {"metrics": {
            name: {"unit": u, "direction": d, "samples": s}
            for name, (u, d, s) in metrics.items()}}},
    }
    if timeseries:
        body["scenarios"][scenario]["timeseries"] = timeseries
    return body


def claim(server, token, wait_s=0):
    status, _, body = harness.http("POST", server.url + "/api/v1/jobs/claim",
                                   {"wait_s": wait_s}, token=token)
    return status, body


def start_worker(test_class, server, token, work_dir, env=None, name="worker"):
    """Starts the real build/benchline-worker against server; stopped after the class."""
    import os
    base = {
        "BENCHLINE_WORKER_SERVER_URL": server.url,
        "BENCHLINE_WORKER_TOKEN": token,
        "BENCHLINE_WORKER_WORK_DIR": work_dir,
        "BENCHLINE_WORKER_CLAIM_WAIT_S": "2",
        "BENCHLINE_WORKER_HEARTBEAT_S": "1",
        "BENCHLINE_WORKER_RETRY_MAX_S": "2",
        "BENCHLINE_WORKER_LOG_LEVEL": "debug",
    }
    for k in os.environ:
        if k.startswith("BENCHLINE_WORKER_") and k not in base:
            base[k] = None
    base.update(env or {})
    proc = harness.Process([harness.bin_path("benchline-worker")], env=base, name=name)
    test_class.addClassCleanup(proc.stop)
    return proc.start()


_history_cache = {}


def demo_history():
    """The tinyllm demo repository (examples/tinyllm/make-history.sh), built once
    per test process: returns (path, {role: sha})."""
    import os
    import subprocess
    if "repo" not in _history_cache:
        path = os.path.join(harness.tmpdir("history-"), "tinyllm")
        out = subprocess.run(["bash", os.path.join(harness.REPO, "examples", "tinyllm",
                                                   "make-history.sh"), path],
                             capture_output=True, text=True, timeout=300, check=True).stdout
        roles = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and len(parts[1]) == 40:
                roles[parts[0]] = parts[1]
        _history_cache["repo"] = (path, roles)
    return _history_cache["repo"]


# Scenario settings short enough for tests; production defaults live in the manifest.
QUICK_PARAMS = {
    "latency": {"repetitions": 15, "warmup": 2, "prompt_tokens": [32], "max_tokens": [16]},
    "memory_leak": {"requests": 60, "prompt_tokens": 16, "max_tokens": 4},
    "throughput": {"concurrency": [1, 2], "requests": 4},
    "stress": {"duration_s": 2, "spike_s": 1},
    "endurance": {"duration_s": 3},
    "instructions": {"requests": 2, "warmup": 1},
}


def queue_job(server, admin, project, sha_, target, scenarios, params=None, **extra):
    body = {"project": project, "commit": sha_, "target": target,
            "scenarios": scenarios, "params": params or QUICK_PARAMS}
    body.update(extra)
    status, _, resp = harness.http("POST", server.url + "/api/v1/jobs", body, token=admin)
    if status != 201:
        raise AssertionError(f"cannot queue a job: {status} {resp}")
    return resp["id"]


def record_history(db_url, base, n):
    """Commits sha(base) (good) .. sha(base + n) of project 1 with their
    parents, as a push records them."""
    for i in range(n + 1):
        parents = "{" + sha(base + i - 1) + "}" if i > 0 else "{}"
        harness.sql(db_url, "INSERT INTO commits (project_id, sha, parents, branch, message, "
                    "author_name) VALUES (1, :'p1', :'p2'::text[], 'main', :'p3', 'Ada') "
                    "ON CONFLICT DO NOTHING", sha(base + i), parents, f"commit {i}")


class ScriptedClient:
    """Takes jobs through the worker API; subclasses answer them in run_one."""

    def __init__(self, server, token):
        self.server, self.token = server, token

    def run_one(self, job):
        raise NotImplementedError

    def drain(self, until, timeout=90):
        """Claims and answers jobs until until() is true."""
        def step():
            if until():
                return True
            status, job = claim(self.server, self.token)
            if status == 200:
                self.run_one(job)
            return False
        harness.wait_for(step, timeout=timeout, interval=0.05)


def job_state(db_url, job):
    return harness.sql(db_url, "SELECT state, attempt, coalesce(fail_reason, '') FROM jobs "
                       "WHERE id = :'p1'", job)[0]


def upload_synthetic(db_url, server, cat, index, level, rng, run_noise=0.01,
                     metric=("ttft_ms", "ms", "lower"), wait_judged=True):
    """Queues, claims and uploads one run of a synthetic commit whose metric
    sits around level: run-to-run noise run_noise, 20 samples with 2% noise
    inside the run.  With wait_judged, returns once the detector judged it."""
    job = cat.job(sha(5000 + index))
    status, body = claim(server, cat.workers["w1"])
    assert status == 200 and body["id"] == job, (status, body)
    run = level * rng.lognormvariate(0, run_noise)
    samples = [run * rng.lognormvariate(0, 0.02) for _ in range(20)]
    name, unit, direction = metric
    status, _, answer = harness.http(
        "POST", f"{server.url}/api/v1/jobs/{job}/result",
        result(1, metrics={name: (unit, direction, samples)}), token=cat.workers["w1"])
    assert status == 200, answer
    if wait_judged:
        harness.wait_for(lambda: harness.sql_value(
            db_url, "SELECT (SELECT count(*) FROM runs WHERE detected_at IS NULL) + "
            "(SELECT count(*) FROM alerts WHERE investigation_wanted)") == "0", timeout=20)
