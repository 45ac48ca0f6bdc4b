"""End to end: the `make run` path on a clean checkout.

The committed files are copied into a temporary directory and its
deploy/run-local.sh (what `make run` runs once the dependencies are
installed and the binaries built; the binaries of this build are used, so
the test does not rebuild) is started in its own session, with the short
demo (memory_leak and accuracy only) and free ports.  Every process starts:
a private PostgreSQL under the copy's var/, the SMTP catcher, the server,
the worker; the demo's pushes arrive through the webhook; its leak and
accuracy incidents appear through the API, bisected to their commits, and
their mails land in var/mail/new.  Then Ctrl-C (SIGINT to the session's
process group) stops every one of them, PostgreSQL included.  A second
start reuses what exists and sends no push again.
"""
# benchline-test-timeout: 900

import os
import signal
import subprocess

import harness


def copy_checkout(dest):
    files = subprocess.run(["git", "-C", harness.REPO, "ls-files", "-z"], check=True,
                           capture_output=True).stdout
    subprocess.run(["tar", "--null", "-T", "-", "-cf", "-"], input=files, cwd=harness.REPO,
                   check=True, stdout=open(os.path.join(dest, ".files.tar"), "wb"))
    subprocess.run(["tar", "-xf", ".files.tar"], cwd=dest, check=True)
    os.remove(os.path.join(dest, ".files.tar"))


def _stat(pid):
    """The fields of /proc/PID/stat after the command name, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def pids_alive(pids):
    return [p for p in pids if (_stat(p) or ["Z"])[0] != "Z"]


def session_of(pid):
    st = _stat(pid)
    return int(st[3]) if st else None


class TestMakeRunLoop(harness.DatabaseTestCase):
    def start(self, copy, ports):
        env = {"BUILD": os.path.join(harness.REPO, os.environ.get("BUILD", "build")),
               "BENCHLINE_PORT": ports[0], "BENCHLINE_PG_PORT": ports[1],
               "BENCHLINE_SMTP_PORT": ports[2], "BENCHLINE_DEMO": "short",
               "BENCHLINE_MAIL_DELAY_S": "1", "DATABASE_URL": None,
               "BENCHLINE_DATABASE_URL": None}
        proc = harness.Process(["setsid", "bash", "deploy/run-local.sh"], env=env,
                               cwd=copy, name="make-run")
        self.addCleanup(proc.stop)
        return proc.start()

    def api(self, url, path):
        status, _, body = harness.http("GET", url + path)
        self.assertEqual(status, 200, (path, body))
        return body

    def stop(self, proc):
        os.killpg(proc.pid, signal.SIGINT)        # what Ctrl-C sends
        proc.wait(60)

    def test_the_whole_loop_starts_finds_and_stops(self):
        copy = harness.tmpdir("checkout-")
        copy_checkout(copy)
        ports = [harness.free_port() for _ in range(3)]
        url = f"http://127.0.0.1:{ports[0]}"
        var = os.path.join(copy, "var")
        proc = self.start(copy, ports)
        def finished():
            if not proc.alive():
                raise AssertionError("make run ended early:\n" + proc.log_tail())
            log = os.path.join(var, "demo.log")
            return os.path.exists(log) and "finished" in open(log).read()
        harness.wait_for(finished, timeout=600, interval=2,
                         message="the demo to finish")
        out = proc.log_text()
        self.assertIn(f"dashboard:  {url}/", out)
        self.assertIn("var/mail/new", out)

        roles = dict(line.split() for line in open(os.path.join(var, "demo", "roles")))
        incidents = [i for i in self.api(url, "/api/v1/incidents?project=tinyllm")
                     if i["state"] != "invalid"]
        kinds = {i["commit"]: i["kinds"] for i in incidents}
        self.assertEqual(kinds, {roles["leak"]: ["leak"], roles["drift"]: ["accuracy"]})
        for i in incidents:
            self.assertEqual(i["mail_state"], "sent")
        harness.wait_for(lambda: len(os.listdir(os.path.join(var, "mail", "new"))) == 2,
                         timeout=30)
        # The fix resolved both.
        for a in self.api(url, "/api/v1/alerts?project=tinyllm"):
            if a["state"] != "invalid":
                self.assertEqual((a["state"], a["resolved_by"]), ("resolved", "recovered"))
        njobs = len(self.api(url, "/api/v1/jobs?project=tinyllm"))
        # Every process the run started is in its session; all of them stop.
        pg_pid = int(open(os.path.join(var, "pg", "data", "postmaster.pid")).readline())
        session = [int(p) for p in os.listdir("/proc") if p.isdigit() and
                   session_of(int(p)) == proc.pid]
        self.assertGreaterEqual(len(session), 4, session)   # bash, smtp, server, worker
        self.stop(proc)
        harness.wait_for(lambda: not pids_alive(session + [pg_pid]), timeout=30,
                         message="processes left after Ctrl-C")
        self.assertIn("stopped", proc.log_text())

        # Again: everything is reused, no push is sent twice, nothing new runs.
        jobs = len(self.api_jobs_after(copy, ports, url))
        self.assertEqual(jobs, njobs)

    def api_jobs_after(self, copy, ports, url):
        proc = self.start(copy, ports)
        log = os.path.join(copy, "var", "demo.log")
        harness.wait_for(lambda: open(log).read().count("finished") == 2, timeout=120,
                         interval=1)
        text = open(log).read()
        for push in ("push 1:", "push 2:", "push 3:"):
            self.assertEqual(text.count(push), 1, push)
        jobs = self.api(url, "/api/v1/jobs?project=tinyllm")
        self.stop(proc)
        return jobs
