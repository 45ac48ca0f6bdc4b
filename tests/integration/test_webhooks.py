"""Forge webhooks: signed GitHub and GitLab pushes become commits and jobs, once;
every refused delivery changes nothing."""

import copy
import hashlib
import hmac
import http.client
import json
import os
import socket
import uuid

import harness
from fixtures import Catalog

FIXTURES = os.path.join(harness.REPO, "tests", "fixtures", "webhooks")
ZEROS = "0" * 40
GH_SECRET = "gh-secret-7f3a"
GL_TOKEN = "gl-token-91c2"
MAX_BODY = 1 << 20


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def shas(tag, n):
    return [hashlib.sha1(f"{tag} {i}".encode()).hexdigest() for i in range(n)]


def with_commits(body, tag, n=3, branch=None, before=None):
    """A copy of a push fixture whose n commits have fresh shas (tag names them)."""
    body = copy.deepcopy(body)
    template = body["commits"][0]
    ids = shas(tag, n)
    body["commits"] = []
    for i, s in enumerate(ids):
        c = copy.deepcopy(template)
        c["id"] = s
        c["message"] = f"{tag}: change {i}"
        body["commits"].append(c)
    body["before"] = before or hashlib.sha1(f"{tag} before".encode()).hexdigest()
    body["after"] = ids[-1]
    if "head_commit" in body:
        body["head_commit"] = copy.deepcopy(body["commits"][-1])
    if "checkout_sha" in body:
        body["checkout_sha"] = ids[-1]
    if "total_commits_count" in body:
        body["total_commits_count"] = n
    if branch:
        body["ref"] = "refs/heads/" + branch
    return body, ids


def raw(body):
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def gh_sign(data, secret=GH_SECRET):
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


class TestWebhooks(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.server = cls.start_server(env={"BENCHLINE_MAX_BODY_BYTES": str(MAX_BODY)})
        cls.project("engine", "https://github.com/octo-org/engine", GH_SECRET)
        cls.project("glengine", "https://GitLab.example.com/perf/engine.git/", GL_TOKEN)

    # -- helpers ---------------------------------------------------------------

    @classmethod
    def api(cls, method, path, body=None):
        return harness.http(method, cls.server.url + path, body, token=cls.cat.admin)

    @classmethod
    def project(cls, name, repo, secret=None, settings=None, branch="main"):
        body = {"name": name, "repo_url": repo, "default_branch": branch}
        if secret is not None:
            body["webhook_secret"] = secret
        if settings is not None:
            body["settings"] = settings
        status, _, answer = cls.api("POST", "/api/v1/projects", body)
        assert status == 201, answer
        return answer["id"]

    def github(self, body, event="push", delivery=None, project="engine", secret=GH_SECRET,
               sig=None, headers=None):
        """POSTs a GitHub delivery; sig=False sends no signature header."""
        data = raw(body)
        h = {"Content-Type": "application/json", "X-GitHub-Event": event,
             "User-Agent": "GitHub-Hookshot/044aadd",
             "X-GitHub-Delivery": delivery or str(uuid.uuid4())}
        if sig is None:
            sig = gh_sign(data, secret)
        if sig is not False:
            h["X-Hub-Signature-256"] = sig
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        path = "/hooks/github" + (f"?project={project}" if project else "")
        return harness.http("POST", self.server.url + path, data, headers=h)

    def gitlab(self, body, event="Push Hook", uuid_=None, project="glengine", token=GL_TOKEN,
               headers=None):
        """POSTs a GitLab delivery; token=None sends no X-Gitlab-Token."""
        h = {"Content-Type": "application/json", "X-Gitlab-Event": event,
             "User-Agent": "GitLab/17.2.0", "X-Gitlab-Instance": "https://gitlab.example.com",
             "X-Gitlab-Event-UUID": uuid_ or str(uuid.uuid4()), "X-Gitlab-Token": token}
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        path = "/hooks/gitlab" + (f"?project={project}" if project else "")
        return harness.http("POST", self.server.url + path, raw(body), headers=h)

    def snapshot(self):
        return self.sql(
            "SELECT (SELECT string_agg(project_id || ':' || sha || ':' || array_to_string(parents, '/') "
            "  || ':' || author_name || ':' || branch, ',' ORDER BY id) FROM commits), "
            "(SELECT string_agg(id || ':' || state || ':' || commit_id, ',' ORDER BY id) FROM jobs), "
            "(SELECT string_agg(forge || ':' || project_id || ':' || delivery_id, ',' "
            "  ORDER BY forge, project_id, delivery_id) FROM webhook_deliveries)")

    def assert_refused(self, status, send, text, code=None):
        before = self.snapshot()
        got, _, err = send()
        self.assertEqual(got, status, err)
        self.assertIsInstance(err, dict, "error bodies are JSON")
        self.assertIn(text, err["error"]["message"])
        if code:
            self.assertEqual(err["error"]["code"], code)
        self.assertEqual(self.snapshot(), before, "a refused delivery changed the database")
        return err

    def active_targets(self):
        return [r[0] for r in self.sql("SELECT name FROM targets WHERE active ORDER BY id")]

    def jobs_of(self, project):
        """The project's jobs, oldest first: (id, sha, target, branch, state, reason,
        priority, scenarios, params, fail_reason)."""
        rows = self.sql("SELECT j.id, c.sha, t.name, j.branch, j.state, j.reason, j.priority, "
                        "array_to_string(j.scenarios, ','), j.params::text, "
                        "coalesce(j.fail_reason, '') FROM jobs j "
                        "JOIN commits c ON c.id = j.commit_id JOIN targets t ON t.id = j.target_id "
                        "JOIN projects p ON p.id = j.project_id WHERE p.name = :'p1' ORDER BY j.id",
                        project)
        return [(int(r[0]),) + r[1:] for r in rows]

    # -- GitHub ----------------------------------------------------------------

    def test_github_push_records_commits_and_queues_the_head(self):
        body, ids = with_commits(fixture("github_push.json"), "gh-basic")
        # A commit benchmarked by hand before the push has no author yet: the push fills it in.
        status, _, _ = self.api("POST", "/api/v1/jobs", {"project": "engine", "commit": ids[1],
                                                         "target": "t1", "scenarios": ["latency"],
                                                         "branch": "main"})
        self.assertEqual(status, 201)
        status, _, answer = self.github(body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
        self.assertEqual(status, 201, answer)
        self.assertEqual(answer["delivery"], "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        self.assertEqual((answer["project"], answer["branch"], answer["commits"]),
                         ("engine", "main", 3))
        self.assertEqual(answer["superseded"], [])
        rows = self.sql("SELECT sha, array_to_string(parents, ','), author_name, author_email, "
                        "message, committed_at, branch FROM commits c JOIN projects p ON "
                        "p.id = c.project_id WHERE p.name = 'engine' AND sha IN "
                        "(:'p1', :'p2', :'p3') ORDER BY committed_at, sha", *ids)
        parents = {r[0]: r[1] for r in rows}
        # Parents come from the order: the first commit's is the push's before.
        self.assertEqual(parents, {ids[0]: body["before"], ids[1]: ids[0], ids[2]: ids[1]})
        by_sha = {r[0]: r for r in rows}
        self.assertEqual(by_sha[ids[1]][2:5], ("Ada Lovelace", "ada@example.org", "gh-basic: change 1"))
        self.assertEqual(by_sha[ids[0]][5], "2024-03-01 09:15:00+00")
        self.assertEqual({r[6] for r in rows}, {"main"})
        # The head is queued on every active target, with the default scenarios.
        jobs = [j for j in self.jobs_of("engine") if j[0] in answer["jobs"]]
        self.assertEqual([j[2] for j in jobs], self.active_targets())
        self.assertIn("t2", self.active_targets())
        for j in jobs:
            self.assertEqual(j[1:2] + j[3:9],
                             (ids[2], "main", "queued", "push", "0",
                              "latency,throughput,stress,endurance,memory_leak,accuracy", "{}"))
        self.assertEqual(self.sql("SELECT forge FROM webhook_deliveries WHERE delivery_id = "
                                  "'72d3162e-cc78-11e3-81ab-4c9367dc0958'"), [("github",)])

    def test_github_redelivery_creates_nothing(self):
        body, _ = with_commits(fixture("github_push.json"), "gh-redeliver")
        status, _, first = self.github(body, delivery="redeliver-1")
        self.assertEqual(status, 201, first)
        before = self.snapshot()
        for project in ("engine", None):       # by name, and found by repository URL
            status, _, again = self.github(body, delivery="redeliver-1", project=project)
            self.assertEqual(status, 200, again)
            self.assertEqual(again, {"duplicate": True, "delivery": "redeliver-1"})
        self.assertEqual(self.snapshot(), before)

    def test_github_signatures(self):
        body, _ = with_commits(fixture("github_push.json"), "gh-sig")
        data = raw(body)
        good = gh_sign(data)
        cases = [
            ("wrong secret", gh_sign(data, "not-the-secret"), "does not match"),
            ("other body", gh_sign(data + b" "), "does not match"),
            ("missing", False, "missing X-Hub-Signature-256"),
            ("empty", "", "must be 'sha256=' and 64 hex digits"),
            ("truncated by one", good[:-1], "must be 'sha256=' and 64 hex digits"),
            ("truncated to 20", good[:20], "must be 'sha256=' and 64 hex digits"),
            ("one digit more", good + "0", "must be 'sha256=' and 64 hex digits"),
            ("no prefix", good[7:], "must be 'sha256=' and 64 hex digits"),
            ("sha1 prefix", "sha1=" + good[7:47], "must be 'sha256=' and 64 hex digits"),
            ("one bit off", good[:-1] + ("0" if good[-1] != "0" else "1"), "does not match"),
        ]
        for project in ("engine", None):
            for name, sig, text in cases:
                with self.subTest(name, project=project):
                    self.assert_refused(401, lambda: self.github(data, sig=sig, project=project),
                                        text, code="unauthorized")
        # The right signature still works afterwards.
        status, _, answer = self.github(data, sig=good)
        self.assertEqual(status, 201, answer)

    def test_github_ping(self):
        ping = raw(fixture("github_ping.json"))
        before = self.snapshot()
        for project in ("engine", None):
            status, _, answer = self.github(ping, event="ping", project=project)
            self.assertEqual(status, 200, answer)
            self.assertEqual(answer, {"pong": True, "project": "engine"})
        self.assertEqual(self.snapshot(), before)
        self.assert_refused(401, lambda: self.github(ping, event="ping", secret="nope"),
                            "does not match")

    def test_github_unknown_event_and_bad_payloads(self):
        body, _ = with_commits(fixture("github_push.json"), "gh-bad")
        self.assert_refused(400, lambda: self.github(body, event="issues"),
                            "X-GitHub-Event 'issues' is not handled", code="invalid")
        self.assert_refused(400, lambda: self.github(body, headers={"X-GitHub-Event": None}),
                            "missing X-GitHub-Event")
        # Malformed JSON: with ?project= the signature is checked first, then the JSON.
        broken = raw(body)[:-40]
        self.assert_refused(400, lambda: self.github(broken), "malformed JSON",
                            code="malformed_json")
        self.assert_refused(401, lambda: self.github(broken, sig=gh_sign(raw(body))),
                            "does not match")
        # Without it the JSON is read first, to find the project.
        self.assert_refused(400, lambda: self.github(broken, sig="sha256=00", project=None),
                            "malformed JSON", code="malformed_json")
        self.assert_refused(400, lambda: self.github(b"[1, 2]"), "$: must be a JSON object")
        self.assert_refused(400, lambda: self.github(b""), "request body is empty")
        for field, value, text in (("ref", None, "$.ref: is required"),
                                   ("ref", "refs/pull/7/head", "names neither a branch"),
                                   ("after", "abc", "$.after: 'abc' is not a commit id"),
                                   ("commits", [{"id": "x"}], "$.commits[0].id:")):
            bad = copy.deepcopy(body)
            bad[field] = value
            with self.subTest(field):
                self.assert_refused(400, lambda: self.github(bad), text, code="invalid")
        self.assert_refused(400, lambda: self.github(body, delivery="has space"),
                            "X-GitHub-Delivery: must be 1 to 128")

    def test_unknown_project_and_missing_secret(self):
        body, _ = with_commits(fixture("github_push.json"), "gh-unknown")
        self.assert_refused(404, lambda: self.github(body, project="nope"), "no project 'nope'",
                            code="not_found")
        # Not UTF-8: quoted with '?' in place of the bad bytes, and never sent to SQL.
        self.assert_refused(404, lambda: self.github(body, project="%ff%c3"), "no project '??'",
                            code="not_found")
        self.assert_refused(400, lambda: self.github(body, event="\xffpush"),
                            "X-GitHub-Event '?push' is not handled")
        other = copy.deepcopy(body)
        for k in ("clone_url", "html_url", "ssh_url", "git_url", "url", "svn_url"):
            other["repository"][k] = other["repository"][k].replace("octo-org/engine",
                                                                    "octo-org/unknown")
        self.assert_refused(404, lambda: self.github(other, project=None),
                            "no project has the repository 'https://github.com/octo-org/unknown",
                            code="not_found")
        no_repo = copy.deepcopy(body)
        del no_repo["repository"]
        self.assert_refused(404, lambda: self.github(no_repo, project=None),
                            "names no repository URL")
        self.project("nosecret", "https://github.com/octo-org/nosecret")
        self.assert_refused(401, lambda: self.github(body, project="nosecret"),
                            "project 'nosecret' has no webhook secret", code="unauthorized")

    def test_two_projects_of_one_repository_need_a_name(self):
        self.project("twin-a", "https://github.com/octo-org/twins.git", "a-secret")
        self.project("twin-b", "git@github.com:octo-org/twins.git", "b-secret")
        body, _ = with_commits(fixture("github_push.json"), "gh-twins")
        for k in ("clone_url", "html_url", "ssh_url", "git_url", "url", "svn_url"):
            body["repository"][k] = body["repository"][k].replace("octo-org/engine", "octo-org/twins")
        self.assert_refused(409, lambda: self.github(body, project=None, secret="a-secret"),
                            "benchmarked by several projects ('twin-a', 'twin-b')", code="conflict")
        delivery = str(uuid.uuid4())
        status, _, answer = self.github(body, project="twin-b", secret="b-secret", delivery=delivery)
        self.assertEqual((status, answer.get("project")), (201, "twin-b"), answer)

    def test_body_over_the_limit_is_413(self):
        body, _ = with_commits(fixture("github_push.json"), "gh-big")
        body["padding"] = "x" * (MAX_BODY + 10)
        data = raw(body)
        before = self.snapshot()
        # Announced too big: refused before the body is read (a client that waits
        # on "Expect: 100-continue", as curl does, sends none of it).
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(b"POST /hooks/github?project=engine HTTP/1.1\r\nHost: x\r\n"
                      b"X-GitHub-Event: push\r\nContent-Type: application/json\r\n"
                      b"Expect: 100-continue\r\nX-Hub-Signature-256: " + gh_sign(data).encode() +
                      b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n")
            reply = b""
            while b"}}" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        self.assertTrue(reply.startswith(b"HTTP/1.1 413 "), reply)
        self.assertIn(b'"code":"too_large"', reply)
        # A client that sends it all anyway may see the connection closed under it.
        try:
            status, _, err = self.github(data)
            self.assertEqual(status, 413, err)
        except (ConnectionError, OSError):
            pass
        # Chunked, with no Content-Length: found too big on arrival, answered at its end.
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.request("POST", "/hooks/github?project=engine",
                         body=(data[i:i + 65536] for i in range(0, len(data), 65536)),
                         headers={"Content-Type": "application/json", "X-GitHub-Event": "push",
                                  "X-Hub-Signature-256": gh_sign(data)},
                         encode_chunked=True)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 413)
            self.assertEqual(json.loads(resp.read())["error"]["code"], "too_large")
        finally:
            conn.close()
        self.assertEqual(self.snapshot(), before)
        # Just under the limit is fine (a huge push is a legitimate push).
        body["padding"] = "x" * (MAX_BODY - len(data) + len(body["padding"]) - 100)
        self.assertLess(len(raw(body)), MAX_BODY)
        status, _, answer = self.github(body)
        self.assertEqual(status, 201, answer)

    def test_tag_push_and_branch_deletion_create_nothing(self):
        before = self.snapshot()
        for name, reason in (("github_tag.json", "tag push"),
                             ("github_delete.json", "branch deletion")):
            delivery = str(uuid.uuid4())
            status, _, answer = self.github(fixture(name), delivery=delivery)
            self.assertEqual(status, 202, answer)
            self.assertEqual(answer["ignored"], reason)
            status, _, again = self.github(fixture(name), delivery=delivery)
            self.assertEqual((status, again), (200, {"duplicate": True, "delivery": delivery}))
        after = self.snapshot()
        self.assertEqual(after[0][:2], before[0][:2], "commits or jobs were created")

    def test_branch_filter(self):
        self.project("filtered", "https://github.com/octo-org/filtered", GH_SECRET,
                     settings={"branches": ["main", "release/*"]})
        body, _ = with_commits(fixture("github_push.json"), "gh-filter", branch="feature/x")
        before = self.snapshot()
        status, _, answer = self.github(body, project="filtered")
        self.assertEqual(status, 202, answer)
        self.assertEqual(answer["ignored"], "branch 'feature/x' is not one the project benchmarks")
        self.assertEqual(self.snapshot()[0][:2], before[0][:2])
        body, _ = with_commits(fixture("github_push.json"), "gh-filter-rel", branch="release/2.0")
        status, _, answer = self.github(body, project="filtered")
        self.assertEqual((status, answer.get("branch")), (201, "release/2.0"), answer)
        # Without settings only the default branch is benchmarked.
        body, _ = with_commits(fixture("github_push.json"), "gh-filter-def", branch="dev")
        status, _, answer = self.github(body)
        self.assertEqual(status, 202, answer)

    def test_every_commit_scenarios_params_and_target_labels(self):
        for name, labels in (("gpu1", {"gpu": "a100", "cuda": "12"}), ("gpu2", {"gpu": "a100"}),
                             ("gpu-off", {"gpu": "a100"})):
            status, _, answer = self.api("POST", "/api/v1/targets", {"name": name, "labels": labels})
            self.assertEqual(status, 201, answer)
        self.sql("UPDATE targets SET active = false WHERE name = 'gpu-off'")
        # The other tests expect jobs on t1 and t2 alone.
        self.addCleanup(self.sql, "UPDATE targets SET active = false WHERE name LIKE 'gpu%'")
        params = {"latency": {"repetitions": 5}}
        self.project("every", "https://github.com/octo-org/every", GH_SECRET,
                     settings={"benchmark_every_commit": True, "scenarios": ["latency", "accuracy"],
                               "job_params": params, "target_labels": {"gpu": "a100"}})
        body, ids = with_commits(fixture("github_push.json"), "gh-every", n=4)
        status, _, answer = self.github(body, project="every")
        self.assertEqual(status, 201, answer)
        jobs = self.jobs_of("every")
        self.assertEqual([j[0] for j in jobs], sorted(answer["jobs"]))
        # Oldest commit first, each on the active targets whose labels contain {"gpu": "a100"}.
        self.assertEqual([(j[1], j[2]) for j in jobs],
                         [(s, t) for s in ids for t in ("gpu1", "gpu2")])
        self.assertEqual({j[7] for j in jobs}, {"latency,accuracy"})
        self.assertEqual({json.dumps(json.loads(j[8]), sort_keys=True) for j in jobs},
                         {json.dumps(params, sort_keys=True)})

    def test_newer_push_supersedes_queued_jobs(self):
        self.project("busy", "https://github.com/octo-org/busy", GH_SECRET,
                     settings={"supersede_queued": True})
        first, _ = with_commits(fixture("github_push.json"), "gh-busy-1")
        status, _, a = self.github(first, project="busy", delivery="busy-1")
        self.assertEqual(status, 201, a)
        # One job started (a worker claimed it), one manual job and one push job
        # on another branch wait: none of them is superseded.
        started, waiting = a["jobs"]
        self.sql("UPDATE jobs SET state = 'running', attempt = 1, started_at = now() "
                 "WHERE id = :'p1'", started)
        status, _, manual = self.api("POST", "/api/v1/jobs", {"project": "busy", "commit": ZEROS[:-1] + "1",
                                                              "target": "t1", "scenarios": ["latency"],
                                                              "branch": "main"})
        self.assertEqual(status, 201)
        self.sql("UPDATE projects SET settings = settings || '{\"branches\": [\"main\", \"dev\"]}' "
                 "WHERE name = 'busy'")
        dev, _ = with_commits(fixture("github_push.json"), "gh-busy-dev", branch="dev")
        status, _, d = self.github(dev, project="busy")
        self.assertEqual(status, 201, d)
        second, _ = with_commits(fixture("github_push.json"), "gh-busy-2", before=first["after"])
        status, _, b = self.github(second, project="busy", delivery="busy-2")
        self.assertEqual(status, 201, b)
        self.assertEqual(b["superseded"], [waiting])
        jobs = {j[0]: j for j in self.jobs_of("busy")}
        self.assertEqual(jobs[waiting][4], "cancelled")
        self.assertEqual(jobs[waiting][9], "superseded by push delivery 'busy-2'")
        self.assertEqual(jobs[started][4], "running")
        self.assertEqual(jobs[manual["id"]][4], "queued")
        self.assertEqual({jobs[j][4] for j in d["jobs"] + b["jobs"]}, {"queued"})
        # Jobs of a branch follow the order of its pushes.
        self.assertTrue(max(a["jobs"]) < min(b["jobs"]))

    def test_settings_and_secret_through_the_api(self):
        self.project("tuned", "https://github.com/octo-org/tuned")
        for settings, text in (({"branches": []}, "$.settings.branches: must not be empty"),
                               ({"scenarios": ["Bad Name"]}, "$.settings.scenarios[0]"),
                               ({"supersede_queued": "yes"}, "$.settings.supersede_queued"),
                               ({"target_labels": ["gpu"]}, "$.settings.target_labels: must be an object")):
            with self.subTest(settings=settings):
                status, _, err = self.api("PATCH", "/api/v1/projects/tuned", {"settings": settings})
                self.assertEqual(status, 400, err)
                self.assertIn(text, err["error"]["message"])
                status, _, err = self.api("POST", "/api/v1/projects",
                                          {"name": "tuned2", "repo_url": "x", "settings": settings})
                self.assertEqual(status, 400, err)
        status, _, err = self.api("PATCH", "/api/v1/projects/tuned", {"webhook_secret": ""})
        self.assertEqual(status, 400, err)
        body, _ = with_commits(fixture("github_push.json"), "gh-tuned")
        self.assert_refused(401, lambda: self.github(body, project="tuned", secret="s1"),
                            "has no webhook secret")
        status, _, answer = self.api("PATCH", "/api/v1/projects/tuned",
                                     {"webhook_secret": "s1", "settings": {"branches": ["main"]}})
        self.assertEqual(status, 200, answer)
        self.assertTrue(answer["webhook_secret_set"])
        self.assertNotIn("s1", json.dumps(answer))
        status, _, answer = self.github(body, project="tuned", secret="s1")
        self.assertEqual(status, 201, answer)
        status, _, answer = self.api("PATCH", "/api/v1/projects/tuned", {"webhook_secret": None})
        self.assertFalse(answer["webhook_secret_set"])
        self.assert_refused(401, lambda: self.github(body, project="tuned", secret="s1"),
                            "has no webhook secret")
        status, _, listed = self.api("GET", "/api/v1/projects")
        self.assertNotIn("webhook_secret", json.dumps(listed))

    # -- GitLab ----------------------------------------------------------------

    def test_gitlab_push(self):
        body, ids = with_commits(fixture("gitlab_push.json"), "gl-basic", n=2)
        event = str(uuid.uuid4())
        # Found by its repository URL: the project's has a trailing ".git/" and capitals.
        status, _, answer = self.gitlab(body, uuid_=event, project=None)
        self.assertEqual(status, 201, answer)
        self.assertEqual((answer["delivery"], answer["project"], answer["commits"]),
                         (event, "glengine", 2))
        rows = dict(self.sql("SELECT sha, array_to_string(parents, ',') FROM commits WHERE sha IN "
                             "(:'p1', :'p2')", *ids))
        self.assertEqual(rows, {ids[0]: body["before"], ids[1]: ids[0]})
        self.assertEqual([(j[1], j[2]) for j in self.jobs_of("glengine") if j[0] in answer["jobs"]],
                         [(ids[1], t) for t in self.active_targets()])
        before = self.snapshot()
        status, _, again = self.gitlab(body, uuid_=event)
        self.assertEqual((status, again), (200, {"duplicate": True, "delivery": event}))
        self.assertEqual(self.snapshot(), before)

    def test_gitlab_tokens(self):
        body, _ = with_commits(fixture("gitlab_push.json"), "gl-token", n=2)
        for name, token, text in (("wrong", "nope", "is not the project's webhook secret"),
                                  ("missing", None, "missing X-Gitlab-Token"),
                                  ("empty", "", "is not the project's"),
                                  ("truncated", GL_TOKEN[:-1], "is not the project's"),
                                  ("longer", GL_TOKEN + "x", "is not the project's"),
                                  ("a GitHub signature", gh_sign(raw(body), GL_TOKEN),
                                   "is not the project's")):
            for project in ("glengine", None):
                with self.subTest(name, project=project):
                    self.assert_refused(401, lambda: self.gitlab(body, token=token, project=project),
                                        text, code="unauthorized")

    def test_gitlab_replay_keys(self):
        # Idempotency-Key (GitLab 17.4+) is kept across retries, X-Gitlab-Event-UUID is not.
        body, _ = with_commits(fixture("gitlab_push.json"), "gl-idem", n=2)
        key = str(uuid.uuid4())
        status, _, a = self.gitlab(body, headers={"Idempotency-Key": key})
        self.assertEqual((status, a.get("delivery")), (201, key), a)
        status, _, b = self.gitlab(body, headers={"Idempotency-Key": key})
        self.assertEqual((status, b), (200, {"duplicate": True, "delivery": key}))
        # Neither header: the body's SHA-256 stands in.
        body, _ = with_commits(fixture("gitlab_push.json"), "gl-hash", n=2)
        data = raw(body)
        status, _, a = self.gitlab(data, headers={"X-Gitlab-Event-UUID": None})
        self.assertEqual(status, 201, a)
        self.assertEqual(a["delivery"], "sha256:" + hashlib.sha256(data).hexdigest())
        status, _, b = self.gitlab(data, headers={"X-Gitlab-Event-UUID": None})
        self.assertEqual((status, b.get("duplicate")), (200, True), b)
        status, _, c = self.gitlab(data + b"\n", headers={"X-Gitlab-Event-UUID": None})
        self.assertEqual(status, 201, c)

    def test_gitlab_one_event_for_two_projects(self):
        # Two projects of one repository, each with its own hook: the event's UUID is the same.
        self.project("gl-cpu", "https://gitlab.example.com/perf/shared.git", "cpu-token")
        self.project("gl-gpu", "https://gitlab.example.com/perf/shared.git", "gpu-token")
        body, _ = with_commits(fixture("gitlab_push.json"), "gl-shared", n=2)
        event = str(uuid.uuid4())
        for project, token in (("gl-cpu", "cpu-token"), ("gl-gpu", "gpu-token")):
            status, _, answer = self.gitlab(body, uuid_=event, project=project, token=token)
            self.assertEqual((status, answer.get("project")), (201, project), answer)
        self.assertEqual(self.sql_value("SELECT count(*) FROM webhook_deliveries WHERE "
                                        "delivery_id = :'p1'", event), "2")

    def test_gitlab_tag_deletion_and_unknown_events(self):
        before = self.snapshot()
        status, _, answer = self.gitlab(fixture("gitlab_tag.json"), event="Tag Push Hook")
        self.assertEqual((status, answer.get("ignored")), (202, "tag push"), answer)
        # A tag under "Push Hook" is a tag all the same.
        status, _, answer = self.gitlab(fixture("gitlab_tag.json"))
        self.assertEqual((status, answer.get("ignored")), (202, "tag push"), answer)
        event = str(uuid.uuid4())
        status, _, answer = self.gitlab(fixture("gitlab_delete.json"), uuid_=event)
        self.assertEqual((status, answer.get("ignored")), (202, "branch deletion"), answer)
        status, _, again = self.gitlab(fixture("gitlab_delete.json"), uuid_=event)
        self.assertEqual((status, again.get("duplicate")), (200, True))
        self.assertEqual(self.snapshot()[0][:2], before[0][:2], "commits or jobs were created")
        body, _ = with_commits(fixture("gitlab_push.json"), "gl-events", n=2)
        for event in ("Merge Request Hook", "System Hook"):
            self.assert_refused(400, lambda: self.gitlab(body, event=event),
                                f"X-Gitlab-Event '{event}' is not handled")
        self.assert_refused(400, lambda: self.gitlab(body, headers={"X-Gitlab-Event": None}),
                            "missing X-Gitlab-Event")
        self.assert_refused(400, lambda: self.gitlab(b'{"object_kind": "push", '),
                            "malformed JSON", code="malformed_json")

    def test_gitlab_truncated_list_leaves_the_first_parent_unknown(self):
        body, ids = with_commits(fixture("gitlab_push.json"), "gl-trunc", n=20)
        body["total_commits_count"] = 27
        status, _, answer = self.gitlab(body)
        self.assertEqual(status, 201, answer)
        rows = dict(self.sql("SELECT sha, array_to_string(parents, ',') FROM commits WHERE "
                             "sha IN (:'p1', :'p2')", ids[0], ids[1]))
        self.assertEqual(rows, {ids[0]: "", ids[1]: ids[0]})
