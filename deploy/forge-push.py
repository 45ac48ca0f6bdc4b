#!/usr/bin/env python3
"""forge-push.py: deliver a git push to benchline's webhook the way GitHub does.

    forge-push.py --repo DIR --before SHA|0 --after SHA --url URL --secret S
                  [--branch main] [--project NAME] [--delivery ID]

Builds a GitHub "push" event (the documented payload: ref, before, after,
commits oldest first with id, message, timestamp and author, head_commit,
repository) for the commits before..after of the repository, signs it with
X-Hub-Signature-256 (HMAC-SHA256 of the body with the secret) and POSTs it
to URL (for example http://127.0.0.1:8080/hooks/github).  --before 0 means
a new branch: every commit up to --after.  Prints the server's answer and
exits 0 on a 2xx.  The demo (make run) and the tests use it; pointing a real
GitHub repository's webhook at the server does the same.
"""

import argparse
import hashlib
import hmac
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

ZEROS = "0" * 40


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                          check=True).stdout


def commits(repo, before, after):
    """The commits of before..after, oldest first, in GitHub's shape."""
    span = after if before == ZEROS else f"{before}..{after}"
    out = git(repo, "log", "--reverse", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B%x1e", span)
    result = []
    for rec in out.split("\x1e"):
        rec = rec.strip("\n")
        if not rec:
            continue
        sha, name, email, when, message = rec.split("\x1f", 4)
        result.append({"id": sha, "tree_id": "", "distinct": True,
                       "message": message.strip(), "timestamp": when,
                       "author": {"name": name, "email": email},
                       "committer": {"name": name, "email": email},
                       "added": [], "removed": [], "modified": []})
    return result


def payload(repo, repo_url, branch, before, after):
    cs = commits(repo, before, after)
    return {
        "ref": "refs/heads/" + branch, "before": before, "after": after,
        "created": before == ZEROS, "deleted": False, "forced": False,
        "commits": cs, "head_commit": cs[-1] if cs else None,
        "repository": {"name": repo_url.rstrip("/").split("/")[-1],
                       "clone_url": repo_url, "html_url": repo_url},
        "pusher": {"name": "benchline-demo"},
    }


def deliver(url, body, secret, delivery=None):
    """POSTs a signed push event; returns (status, answer as JSON or text)."""
    data = json.dumps(body).encode()
    sig = "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sig, "User-Agent": "benchline-forge-push"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--branch", default="main")
    ap.add_argument("--project")
    ap.add_argument("--repo-url", help="the repository URL the project has (default: --repo)")
    ap.add_argument("--delivery")
    a = ap.parse_args()
    before = ZEROS if a.before == "0" else a.before
    url = a.url
    if a.project:
        url += ("&" if "?" in url else "?") + "project=" + urllib.parse.quote(a.project)
    body = payload(a.repo, a.repo_url or a.repo, a.branch, before, a.after)
    status, answer = deliver(url, body, a.secret, a.delivery)
    print(json.dumps(answer) if not isinstance(answer, str) else answer)
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
