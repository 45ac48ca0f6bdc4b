"""Shared harness for benchline's Python tests: real PostgreSQL, real server.

Python 3.11 standard library only. Everything a test starts through this
module (clusters, servers, other processes) is registered and stopped at
interpreter exit, on SIGTERM/SIGHUP, and by the class cleanups of
DatabaseTestCase, even when a test fails. Nothing talks to anything but
127.0.0.1.

Typical use (one scenario per file, see tests/integration/):

    import harness

    class TestClaim(harness.DatabaseTestCase):
        @classmethod
        def setUpClass(cls):
            super().setUpClass()            # fresh database: cls.db_url
            cls.server = cls.start_server(env={"BENCHLINE_ADMIN_TOKEN": "t"})

        def test_claim_empty(self):
            status, headers, body = harness.http(
                "POST", self.server.url + "/api/v1/jobs/claim", {}, token="w")
            self.assertEqual(status, 204)
            rows = self.sql("SELECT count(*) FROM jobs WHERE state = :'p1'", "queued")
            self.assertEqual(rows, [("0",)])

SQL parameters are psql variables: the i-th parameter is written :'pi' in
the query (:'p1', :'p2', ...). psql quotes it as a string literal with
PQescapeLiteral, so any text is injection-safe; PostgreSQL coerces the
literal to the type the context needs (int, timestamptz, jsonb, ...).
A None parameter makes :'pi' the keyword NULL. Values are str, int,
float, bool or None; each is at most ~128 KB (it travels in argv).
Results are lists of tuples of str (psql's text output), with None for NULL.

Environment:
    BUILD                     build directory (default "build", relative to the repo)
    BENCHLINE_TEST_PG_URL     use this running cluster as the shared one (tests/run.sh
                              starts one per run); its role must be a superuser
    BENCHLINE_TEST_TMPDIR     where temporary directories go (default: system temp)
    BENCHLINE_TEST_KEEP_TMP   "1": leave the temporary directories for the caller
"""

import atexit
import csv
import io
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(REPO, os.environ.get("BUILD", "build"))
PG_SH = os.path.join(REPO, "deploy", "pg.sh")

__all__ = [
    "REPO", "BUILD", "bin_path", "tmpdir", "free_port", "wait_for", "WaitTimeout",
    "sql", "sql_value", "SqlError", "Postgres", "shared_postgres", "fresh_database",
    "Process", "Server", "ServerStartError", "cli", "http", "Headers",
    "DatabaseTestCase", "cleanup_all",
]


# ---------------------------------------------------------------------------
# Cleanup registry: every started thing registers a stop function here.

_lock = threading.RLock()
_cleanups = {}                 # token -> (description, callable)
_tokens = itertools.count(1)
_cleaning = False


def _register(description, fn):
    """Registers fn to run at exit; returns a token for _unregister()."""
    with _lock:
        token = next(_tokens)
        _cleanups[token] = (description, fn)
        return token


def _unregister(token):
    with _lock:
        _cleanups.pop(token, None)


def cleanup_all():
    """Stops everything still registered, newest first. Safe to call twice."""
    global _cleaning
    with _lock:
        if _cleaning:
            return
        _cleaning = True
        items = sorted(_cleanups.items(), reverse=True)
        _cleanups.clear()
    try:
        for _, (description, fn) in items:
            try:
                fn()
            except Exception as e:  # keep going: the rest must stop too
                print(f"harness: cleanup of {description} failed: {e}", file=sys.stderr)
    finally:
        with _lock:
            _cleaning = False


def _on_signal(signum, frame):
    # Default SIGTERM handling would skip atexit and leave processes behind.
    # timeout(1) signals both us and our process group: the second signal
    # must not cut the first cleanup short.
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    print(f"harness: {signal.Signals(signum).name} received, stopping what the tests started",
          file=sys.stderr, flush=True)
    cleanup_all()
    _remove_tmp_root()
    os._exit(128 + signum)


def _at_exit():
    cleanup_all()
    _remove_tmp_root()


atexit.register(_at_exit)
if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) in (signal.SIG_DFL, None):
            signal.signal(_sig, _on_signal)


# ---------------------------------------------------------------------------
# Paths, temporary directories, ports, waiting.

def bin_path(name):
    """The path of a built binary, e.g. bin_path("benchline-server")."""
    return os.path.join(BUILD, name)


_tmp_root = None


def _remove_tmp_root():
    if _tmp_root and os.environ.get("BENCHLINE_TEST_KEEP_TMP") != "1":
        shutil.rmtree(_tmp_root, ignore_errors=True)


def tmpdir(prefix="tmp-"):
    """A new directory under this process's temporary root (removed at exit).

    Directories are mode 0711 so the "postgres" user can reach a cluster
    directory inside when the tests run as root."""
    global _tmp_root
    with _lock:
        if _tmp_root is None:
            base = os.environ.get("BENCHLINE_TEST_TMPDIR") or None
            _tmp_root = tempfile.mkdtemp(prefix="benchline-test-", dir=base)
            os.chmod(_tmp_root, 0o711)
    d = tempfile.mkdtemp(prefix=prefix, dir=_tmp_root)
    os.chmod(d, 0o711)
    return d


_ports_given = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (not handed out twice)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise RuntimeError("no free port on 127.0.0.1")


class WaitTimeout(AssertionError):
    pass


def wait_for(predicate, timeout=10.0, interval=0.05, message=None):
    """Calls predicate() until it returns a true value, and returns that value.

    Raises WaitTimeout (an AssertionError, so the test fails) after timeout
    seconds; exceptions from predicate propagate."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# SQL through psql.

class SqlError(Exception):
    """psql failed: .stderr holds its message, .query the query."""

    def __init__(self, message, query, stderr):
        super().__init__(message)
        self.query = query
        self.stderr = stderr


def _pg_bindir():
    dirs = []
    base = "/usr/lib/postgresql"
    if os.path.isdir(base):
        for v in os.listdir(base):
            if re.fullmatch(r"\d+(\.\d+)?", v) and os.access(os.path.join(base, v, "bin", "psql"), os.X_OK):
                dirs.append((tuple(int(x) for x in v.split(".")), os.path.join(base, v, "bin")))
    return max(dirs)[1] if dirs else None


_PG_BIN = _pg_bindir()
PSQL = os.path.join(_PG_BIN, "psql") if _PG_BIN else (shutil.which("psql") or "psql")


def _client_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCLIENTENCODING"] = "UTF8"
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _param_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise TypeError(f"sql parameter of type {type(value).__name__} is not supported "
                    "(use str, int, float, bool or None)")


def sql(url, query, *params, timeout=60):
    """Runs query (one or more statements) on the database at url.

    The i-th parameter is referenced as :'pi' (see the module doc). Returns the
    rows of every statement that returns rows, as tuples of str with None for
    NULL. Raises SqlError when psql fails; the statements are run one by one
    in autocommit mode and stop at the first error."""
    null = f"\x1fNULL{os.getpid()}\x1f"
    argv = [PSQL, "-X", "-q", "-t", "--csv", "-v", "ON_ERROR_STOP=1",
            "-P", f"null={null}", "-d", url, "-f", "-"]
    for i, value in enumerate(params, 1):
        if value is None:
            # Only a placeholder is replaced, by a keyword: no data enters the text.
            query = query.replace(f":'p{i}'", "NULL")
        else:
            argv += ["-v", f"p{i}={_param_text(value)}"]
    proc = subprocess.run(argv, input=query.encode("utf-8"), capture_output=True,
                          env=_client_env(), timeout=timeout)
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        first = err.strip().splitlines()[0] if err.strip() else f"exit status {proc.returncode}"
        raise SqlError(f"sql failed: {first}\n--- query ---\n{query}\n--- psql ---\n{err}", query, err)
    out = proc.stdout.decode("utf-8")
    # psql writes a one-column row holding '' as an empty line, which csv reads
    # as []; zero-column rows (SELECT FROM t) are not worth the ambiguity.
    return [tuple(None if f == null else f for f in row) if row else ("",)
            for row in csv.reader(io.StringIO(out, newline=""))]


def sql_value(url, query, *params):
    """The first column of the first row of sql(...), or None when there is no row."""
    rows = sql(url, query, *params)
    return rows[0][0] if rows else None


def _db_url(url, dbname):
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))


# ---------------------------------------------------------------------------
# PostgreSQL clusters.

_DBNAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_db_counter = itertools.count(1)


class Postgres:
    """A private PostgreSQL cluster in a temporary directory (deploy/pg.sh).

        pg = Postgres().start()      # pg.url: postgresql://benchline@127.0.0.1:PORT/benchline
        url = pg.create_database("t_mine")
        pg.sql("SELECT 1")           # on the "benchline" database; db="t_mine" for another
        pg.stop()                    # stops it and removes its directory

    Starting one costs about a second (initdb); most tests use the shared
    cluster (shared_postgres(), DatabaseTestCase) with a database of their own.
    Use a private one only to stop or break PostgreSQL on purpose."""

    def __init__(self, fast=True):
        self.fast = fast
        self.dir = None
        self.port = None
        self.url = None
        self._owned = False
        self._token = None

    @classmethod
    def attach(cls, url):
        """A handle on a running cluster that this process does not own."""
        pg = cls()
        pg.url = url
        pg.port = urllib.parse.urlsplit(url).port
        return pg

    def start(self):
        if self.url:
            return self
        self.dir = os.path.join(tmpdir("pg-"), "cluster")
        self._owned = True
        self._token = _register(f"PostgreSQL in {self.dir}", self.stop)
        last = ""
        for _ in range(3):      # the free port may be taken before postgres binds it
            self.port = free_port()
            argv = ["bash", PG_SH] + (["--fast"] if self.fast else []) + ["start", self.dir, str(self.port)]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            if proc.returncode == 0:
                self.url = proc.stdout.strip().splitlines()[-1]
                return self
            last = proc.stderr
            if "already in use" not in last and "could not bind" not in last:
                break
        self.stop()
        raise RuntimeError(f"cannot start PostgreSQL:\n{last}")

    def url_for(self, dbname):
        """The URL of database dbname on this cluster."""
        return _db_url(self.url, dbname)

    def sql(self, query, *params, db=None):
        """sql() on this cluster's "benchline" database, or on database db."""
        return sql(self.url_for(db) if db else self.url, query, *params)

    def create_database(self, name=None):
        """Creates an empty database (a unique name when name is None); returns its URL."""
        if name is None:
            name = f"t_{os.getpid()}_{next(_db_counter)}"
        if not _DBNAME_RE.fullmatch(name):
            raise ValueError(f"bad database name '{name}': use [a-z_][a-z0-9_]*, at most 63 characters")
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name):
        """Drops database name, disconnecting whoever is still connected."""
        if not _DBNAME_RE.fullmatch(name):
            raise ValueError(f"bad database name '{name}'")
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self):
        """Stops the cluster and removes its directory (only a cluster this object started)."""
        if not self._owned:
            return
        self._owned = False
        _unregister(self._token)
        try:
            subprocess.run(["bash", PG_SH, "stop", self.dir], capture_output=True, timeout=90)
        finally:
            shutil.rmtree(os.path.dirname(self.dir), ignore_errors=True)
            self.url = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


_shared = None


def shared_postgres():
    """The cluster shared by every test of this run, started on first use.

    When BENCHLINE_TEST_PG_URL is set (tests/run.sh starts one cluster for
    the whole run) that cluster is used and left running; otherwise one is
    started here and stopped at exit. Do not stop or break it in a test."""
    global _shared
    with _lock:
        if _shared is None:
            url = os.environ.get("BENCHLINE_TEST_PG_URL")
            _shared = Postgres.attach(url) if url else Postgres().start()
        return _shared


def fresh_database(label="t"):
    """Creates a new database on the shared cluster; returns (url, name)."""
    label = re.sub(r"[^a-z0-9_]", "_", label.lower())[:30]
    name = f"{label}_{os.getpid()}_{next(_db_counter)}"
    if not re.match(r"[a-z_]", name):
        name = "t_" + name
    return shared_postgres().create_database(name[:63]), name[:63]


# ---------------------------------------------------------------------------
# Processes.

class Process:
    """A child process with its output in a log file, stopped at exit at the latest.

        p = Process(["build/benchline-worker", "-c", cfg], env={...}, name="worker").start()
        p.stop()            # SIGTERM, up to 10 s, then SIGKILL; returns the exit status

    env is added to (and None values removed from) this process's environment."""

    def __init__(self, argv, env=None, name=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.extra_env = dict(env or {})
        self.name = name or os.path.basename(self.argv[0])
        self.cwd = cwd
        self.proc = None
        self.log_path = os.path.join(tmpdir(self.name + "-"), self.name + ".log")
        self._log = None
        self._token = None

    def _env(self):
        env = dict(os.environ)
        for k, v in self.extra_env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def start(self):
        if self.alive():
            return self
        self._log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, env=self._env(), cwd=self.cwd)
        except OSError:
            self._log.close()
            raise
        self._token = _register(f"{self.name} (pid {self.proc.pid})", self.stop)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=None):
        """Waits for the process to exit; returns its exit status (negative: signal)."""
        return self.proc.wait(timeout)

    def signal(self, signum):
        if self.alive():
            self.proc.send_signal(signum)

    def stop(self, timeout=10):
        """SIGTERM, wait up to timeout seconds, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"harness: {self.name} (pid {self.proc.pid}) ignored SIGTERM for {timeout} s, "
                      "killing it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        self._finish()
        return self.proc.returncode

    def kill(self):
        """SIGKILL, and reap. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._finish()
        return self.proc.returncode

    def _finish(self):
        _unregister(self._token)
        if self._log:
            self._log.close()
            self._log = None

    def log_text(self):
        """Everything the process wrote to stdout and stderr so far."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ServerStartError(AssertionError):
    pass


class Server(Process):
    """The real build/benchline-server on a free loopback port.

        srv = Server(db_url, env={"BENCHLINE_ADMIN_TOKEN": "secret"}).start()
        status, headers, body = http("GET", srv.url + "/healthz")
        srv.stop()

    start() waits until GET /healthz answers 200; if the server exits first
    or takes longer than timeout seconds, it is killed and ServerStartError
    carries the tail of its log. start() after stop() restarts it on the same
    port with the same database, appending to the same log."""

    def __init__(self, db_url, env=None, port=None, args=(), binary=None, name="server"):
        self.port = port or free_port()
        self.db_url = db_url
        base = {
            "BENCHLINE_DATABASE_URL": db_url,
            "BENCHLINE_LISTEN_ADDR": "127.0.0.1",
            "BENCHLINE_LISTEN_PORT": str(self.port),
            "BENCHLINE_MIGRATIONS_DIR": os.path.join(REPO, "sql"),
            "BENCHLINE_LOG_LEVEL": "debug",
        }
        # Settings from the developer's shell must not leak into a test.
        for k in os.environ:
            if k.startswith("BENCHLINE_") and not k.startswith("BENCHLINE_TEST_") and k not in base:
                base[k] = None
        base.update(env or {})
        super().__init__([binary or bin_path("benchline-server"), *args], env=base, name=name)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        if self.alive():
            return self
        if not os.access(self.argv[0], os.X_OK):
            raise ServerStartError(f"server binary '{self.argv[0]}' is missing: run make")
        super().start()
        deadline = time.monotonic() + timeout
        why = None
        while why is None:
            if self.proc.poll() is not None:
                why = f"exited with status {self.proc.returncode}"
                break
            try:
                status, _, _ = http("GET", self.url + "/healthz", timeout=1)
                if status == 200:
                    return self
            except (OSError, HTTPException):
                pass
            if time.monotonic() >= deadline:
                why = f"did not answer GET /healthz with 200 within {timeout:g} s"
            else:
                time.sleep(0.05)
        self.kill()
        raise ServerStartError(f"{self.name} on {self.url} {why}; last lines of {self.log_path}:\n"
                               f"{self.log_tail()}")


def cli(*args, env=None, db_url=None, timeout=60, input=None):
    """Runs build/benchline with args; returns (exit status, stdout, stderr) as str.

    db_url sets BENCHLINE_DATABASE_URL; env is added to the environment
    (None values remove a variable)."""
    full = dict(os.environ)
    if db_url is not None:
        full["BENCHLINE_DATABASE_URL"] = db_url
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = str(v)
    proc = subprocess.run([bin_path("benchline"), *map(str, args)], capture_output=True,
                          env=full, timeout=timeout, stdin=subprocess.DEVNULL if input is None else None,
                          input=input.encode() if isinstance(input, str) else input)
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"))


# ---------------------------------------------------------------------------
# HTTP.

class Headers(dict):
    """Response headers: a dict whose lookups ignore case (keys stored lowercase)."""

    def __init__(self, items=()):
        super().__init__()
        for k, v in items:
            k = k.lower()
            self[k] = f"{self[k]}, {v}" if k in self else v

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def __contains__(self, k):
        return super().__contains__(k.lower())

    def get(self, k, default=None):
        return super().get(k.lower(), default)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None         # hand 3xx back to the caller as it is


# No proxies (traffic stays on loopback) and no redirects followed.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http(method, url, body=None, headers=None, token=None, timeout=35):
    """One HTTP request; returns (status, Headers, body).

    body: dict or list is sent as JSON, str as UTF-8, bytes as they are.
    token adds "Authorization: Bearer <token>". The reply's body is parsed
    JSON when its Content-Type is application/json (and non-empty), else
    bytes. 4xx/5xx are returned, not raised; connection errors raise OSError."""
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            data = body.encode()
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            raise TypeError(f"http body of type {type(body).__name__} is not supported")
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method.upper())
    try:
        resp = _opener.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        resp = e
    with resp:
        status = resp.status if hasattr(resp, "status") else resp.code
        raw = resp.read()
        rh = Headers(resp.headers.items())
    ctype = rh.get("content-type", "").split(";")[0].strip().lower()
    if raw and (ctype == "application/json" or ctype.endswith("+json")):
        try:
            return status, rh, json.loads(raw)
        except ValueError as e:
            raise AssertionError(f"{method} {url}: {status} with invalid JSON ({e}): {raw[:500]!r}")
    return status, rh, raw


# ---------------------------------------------------------------------------
# unittest base class.

class DatabaseTestCase(unittest.TestCase):
    """A test class with a fresh database of its own on the shared cluster.

    setUpClass sets cls.db_url and cls.db_name; the database is dropped after
    the class, and servers started with start_server() are stopped before
    that. Subclasses that define setUpClass must call super().setUpClass()."""

    db_url = None
    db_name = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db_url, cls.db_name = fresh_database(cls.__name__)
        cls.addClassCleanup(shared_postgres().drop_database, cls.db_name)

    @classmethod
    def sql(cls, query, *params):
        """sql() on this class's database."""
        return sql(cls.db_url, query, *params)

    @classmethod
    def sql_value(cls, query, *params):
        return sql_value(cls.db_url, query, *params)

    @classmethod
    def start_server(cls, env=None, **kwargs):
        """Starts a Server on this class's database, stopped after the class."""
        srv = Server(cls.db_url, env=env, **kwargs)
        cls.addClassCleanup(srv.stop)
        return srv.start()
