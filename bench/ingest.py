#!/usr/bin/env python3
"""Ingest benchmark: points/s through POST /api/v1/jobs/{id}/result against a raw COPY.

Starts a private PostgreSQL cluster (fsync and synchronous_commit on, as in
production) and the real server, then alternates two measurements on the
same database, --reps times each:

  API   --clients threads, each with its own keep-alive connection and its
        own worker token, claim a job and upload a result of --metrics
        points of --samples raw samples each, until --jobs results are in.
        The clock runs from the first claim to the last answer; every
        request body is encoded before it starts.
  COPY  the same rows (same text the server sends to PostgreSQL, same
        number of rows and samples) loaded with psql's \\copy into a fresh
        series/run id range, timed by psql's \\timing inside one session.
        Two forms: one COPY of all rows (one transaction: the ceiling), and
        one COPY per job (one transaction and one fsync per result, serial).

It prints points/s of each, the ratio API/COPY of each repetition and their
median, upload and claim round-trip percentiles, and where the CPU went
(server, PostgreSQL, this client, every other process on the machine) with
the WAL written per point.
Every figure is a ratio against a reference measured in the same run; the
script asserts nothing about speed.

    PYTHONPATH=tests/lib python3 bench/ingest.py [--clients 4] [--jobs 80]
        [--metrics 500] [--samples 20] [--reps 5] [--threads 4]

The helpers below the "shared" line are also used by bench/query.py.
"""

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))

import harness  # noqa: E402
import fixtures  # noqa: E402


# ---------------------------------------------------------------------------
# Shared with bench/query.py: percentiles, psql timing sessions, CPU accounting.

def percentile(values, q):
    """The q-th percentile (0..100) of values, linear between closest ranks."""
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def psql_timed(url, script, timeout=600):
    """Runs script in one psql session with \\timing on and query output to
    /dev/null; returns the time of every statement in seconds, in order.

    The times are psql's own (from sending a statement to having read its
    whole result), so process start and connection are not measured."""
    text = "\\timing on\n\\pset format unaligned\n\\pset tuples_only on\n\\o /dev/null\n" + script
    proc = subprocess.run([harness.PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
                          input=text.encode(), capture_output=True, timeout=timeout,
                          env=harness._client_env())
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    times = []
    for m in re.finditer(r"^Time: ([0-9.]+) ms", out, re.M):
        times.append(float(m.group(1)) / 1000.0)
    return times


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid):
    """(utime+stime, cutime+cstime, ppid) of pid in seconds, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is the state (field 3 of proc(5)); utime is field 14.
    return ((int(fields[11]) + int(fields[12])) / _TICK,
            (int(fields[13]) + int(fields[14])) / _TICK, int(fields[1]))


def postmaster_pid(pg):
    """The postmaster's pid of a harness.Postgres this process started."""
    with open(os.path.join(pg.dir, "data", "postmaster.pid")) as f:
        return int(f.readline())


class CpuMeter:
    """CPU seconds used by the server, by PostgreSQL (postmaster, live backends
    and the backends it reaped), by this Python process (all threads, and the
    psql children it waited for), and the machine's busy and iowait shares."""

    def __init__(self, server_pid, pm_pid):
        self.server_pid = server_pid
        self.pm_pid = pm_pid

    def _postgres(self):
        own = _proc_stat(self.pm_pid)
        total = own[0] + own[1] if own else 0.0
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = _proc_stat(int(name))
                if st and st[2] == self.pm_pid:
                    total += st[0]
        return total

    @staticmethod
    def _machine():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle, iowait = v[3], v[4]
        return sum(v[:8]), idle, iowait

    def snapshot(self):
        t = os.times()
        srv = _proc_stat(self.server_pid)
        return {"wall": time.perf_counter(), "server": srv[0] if srv else 0.0,
                "postgres": self._postgres(),
                "client": t.user + t.system + t.children_user + t.children_system,
                "machine": self._machine()}

    @staticmethod
    def diff(a, b):
        """Seconds of CPU per part between two snapshots, and machine shares."""
        tot = b["machine"][0] - a["machine"][0]
        idle = b["machine"][1] - a["machine"][1]
        iow = b["machine"][2] - a["machine"][2]
        return {"wall": b["wall"] - a["wall"],
                "server": b["server"] - a["server"],
                "postgres": b["postgres"] - a["postgres"],
                "client": b["client"] - a["client"],
                "busy": (tot - idle - iow) / tot if tot else 0.0,
                "iowait": iow / tot if tot else 0.0}


def other_cpu(d, ncpu):
    """CPU seconds used by every process not counted in a CpuMeter.diff()."""
    return max(0.0, d["busy"] * d["wall"] * ncpu - d["server"] - d["postgres"] - d["client"])


def wal_lsn(url):
    """The cluster's current WAL insert position, in bytes (exact, unlike the
    delayed counters of pg_stat_wal)."""
    return int(harness.sql_value(url, "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))


def fmt_rate(x):
    return f"{x:,.0f}"


# ---------------------------------------------------------------------------
# The ingest benchmark.

def make_bodies(jobs, metrics, samples, seed=1):
    """The result bodies, encoded, and the samples of each (for COPY).

    Samples are random doubles printed with full precision, as the worker's
    JSON encoder prints them."""
    rnd = random.Random(seed)
    bodies, values = [], []
    for _ in range(jobs):
        m = {}
        vals = []
        for k in range(metrics):
            base = 1.0 + k % 97
            s = [base * (1.0 + 0.05 * rnd.random()) for _ in range(samples)]
            m[f"metric_{k:05d}"] = ("ms", "lower", s)
            vals.append(s)
        bodies.append(json.dumps(fixtures.result(1, metrics=m)).encode())
        values.append(vals)
    return bodies, values


def _quantile(sorted_s, q):
    # common/stats.c quantile_sorted(): linear between closest ranks.
    pos = (len(sorted_s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_s) - 1)
    return sorted_s[lo] + (sorted_s[hi] - sorted_s[lo]) * (pos - lo)


def copy_tails(vals):
    """The part of each COPY row of one result after its run id, formatted as
    server/ingest.c copy_points() formats it (%.17g, a float8[] literal)."""
    out = []
    for s in vals:
        ss = sorted(s)
        arr = "{" + ",".join("%.17g" % x for x in s) + "}"
        out.append("\t%.17g\t%.17g\t%.17g\t%d\t%s\n" % (
            _quantile(ss, 0.5), _quantile(ss, 0.05), _quantile(ss, 0.95), len(s), arr))
    return out


class Api:
    """Keep-alive HTTP/1.1 to the server, one per client thread."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.reconnects = 0

    def post(self, path, body, token):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn.request("POST", path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.will_close:
            self.reconnects += 1
        return resp.status, data

    def close(self):
        self.conn.close()


def queue_jobs(server, admin, n, first):
    """Queues n jobs on target t1 through POST /api/v1/jobs (not measured)."""
    api = Api(server.port)
    try:
        for i in range(first, first + n):
            body = json.dumps({"project": "demo", "commit": fixtures.sha(i), "target": "t1",
                               "scenarios": ["latency"]}).encode()
            status, data = api.post("/api/v1/jobs", body, admin)
            if status != 201:
                raise RuntimeError(f"POST /api/v1/jobs: {status} {data[:300]!r}")
    finally:
        api.close()


def run_api(server, tokens, bodies, npoints_per_job):
    """Runs one API round: len(bodies) claim+upload pairs over len(tokens) clients.

    Returns wall seconds, per-request timings, mean per-client busy times and
    the number of connections the server closed."""
    nclients = len(tokens)
    lock = threading.Lock()
    next_slot = [0]
    claims, uploads, per_client_upload, per_client_claim = [], [], [0.0] * nclients, [0.0] * nclients
    errors, reconnects = [], [0]
    start = threading.Barrier(nclients + 1)
    claim_body = b'{"wait_s":0}'
    conns = [Api(server.port) for _ in range(nclients)]
    # Open every connection before the clock.
    for c in conns:
        c.conn.connect()

    def client(ci):
        api, token = conns[ci], tokens[ci]
        my_claims, my_uploads = [], []
        start.wait()
        try:
            while True:
                with lock:
                    slot = next_slot[0]
                    if slot >= len(bodies):
                        break
                    next_slot[0] += 1
                t0 = time.perf_counter()
                status, data = api.post("/api/v1/jobs/claim", claim_body, token)
                t1 = time.perf_counter()
                if status != 200:
                    raise RuntimeError(f"claim: {status} {data[:300]!r}")
                job = json.loads(data)
                if job["attempt"] != 1:
                    raise RuntimeError(f"job {job['id']} has attempt {job['attempt']}")
                status, data = api.post(f"/api/v1/jobs/{job['id']}/result", bodies[slot], token)
                t2 = time.perf_counter()
                if status != 200:
                    raise RuntimeError(f"upload of job {job['id']}: {status} {data[:300]!r}")
                if json.loads(data)["points"] != npoints_per_job:
                    raise RuntimeError(f"job {job['id']}: wrong point count {data[:300]!r}")
                my_claims.append(t1 - t0)
                my_uploads.append(t2 - t1)
        except Exception as e:  # reported by the main thread
            errors.append(e)
        with lock:
            claims.extend(my_claims)
            uploads.extend(my_uploads)
            per_client_claim[ci] = sum(my_claims)
            per_client_upload[ci] = sum(my_uploads)
            reconnects[0] += api.reconnects

    threads = [threading.Thread(target=client, args=(i,)) for i in range(nclients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    return {"wall": wall, "claims": claims, "uploads": uploads,
            "client_upload_s": statistics.mean(per_client_upload),
            "client_claim_s": statistics.mean(per_client_claim),
            "reconnects": reconnects[0]}


def write_copy_files(tmp, tails, rep, commit_id, ts):
    """One file of all rows, and one file per job; fresh series and run ids."""
    series_base = 2_000_000_000            # far above any id the server hands out
    run_base = 2_000_000_000 + rep * 1_000_000
    parts, texts = [], []
    for j, job_tails in enumerate(tails):
        head = f"\t{ts}\t{commit_id}\t{run_base + j}"
        text = "".join(f"{series_base + k}{head}{t}" for k, t in enumerate(job_tails))
        path = os.path.join(tmp, f"rep{rep}-job{j}.tsv")
        with open(path, "w") as f:
            f.write(text)
        parts.append(path)
        texts.append(text)
    whole = os.path.join(tmp, f"rep{rep}-all.tsv")
    with open(whole, "w") as f:
        f.write("".join(texts))
    return whole, parts


COPY_COLS = "points (series_id, ts, commit_id, run_id, value, lo, hi, n, samples)"


def run_copy(url, whole, parts):
    """Times one COPY of every row, then one COPY per job, in one psql session."""
    script = f"\\copy {COPY_COLS} FROM '{whole}'\n"
    for p in parts:
        script += f"\\copy {COPY_COLS} FROM '{p}'\n"
    times = psql_timed(url, script)
    if len(times) != 1 + len(parts):
        raise RuntimeError(f"psql printed {len(times)} timings, expected {1 + len(parts)}")
    return times[0], sum(times[1:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8, help="concurrent uploading clients")
    ap.add_argument("--jobs", type=int, default=80, help="results uploaded per repetition")
    ap.add_argument("--metrics", type=int, default=500, help="points per result")
    ap.add_argument("--samples", type=int, default=20, help="raw samples per point")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of API and COPY (>= 3)")
    ap.add_argument("--threads", type=int, default=4, help="server HTTP threads (2..4)")
    ap.add_argument("--fast-pg", action="store_true",
                    help="synchronous_commit off (NOT production-like; for comparison)")
    args = ap.parse_args()
    if args.reps < 1 or args.clients < 1 or args.jobs < args.clients:
        ap.error("need reps >= 1 and jobs >= clients >= 1")

    npoints = args.jobs * args.metrics
    print(f"== ingest: {args.clients} clients, {args.jobs} jobs x {args.metrics} points x "
          f"{args.samples} samples = {npoints:,} points per repetition, {args.reps} repetitions",
          flush=True)
    t_setup = time.perf_counter()
    pg = harness.Postgres(fast=args.fast_pg).start()
    url = pg.url
    settings = dict(harness.sql(url, "SELECT name, setting FROM pg_settings WHERE name IN "
                                     "('fsync', 'synchronous_commit', 'shared_buffers', "
                                     "'server_version')"))
    print(f"   PostgreSQL {settings['server_version']} private cluster "
          f"(harness.Postgres(fast={args.fast_pg})): fsync={settings['fsync']} "
          f"synchronous_commit={settings['synchronous_commit']} "
          f"shared_buffers={int(settings['shared_buffers']) * 8 // 1024}MB", flush=True)
    cat = fixtures.Catalog(url)
    tokens = [fixtures.cli_ok(url, "worker", "create", "--target", "t1", "--name",
                              f"bench{i}").strip() for i in range(args.clients)]
    pool = max(8, args.clients + 2)
    server = harness.Server(url, env={"BENCHLINE_THREADS": args.threads,
                                      "BENCHLINE_DB_POOL_SIZE": pool,
                                      "BENCHLINE_LOG_LEVEL": "info"}, name="server").start()
    print(f"   server: threads={args.threads} db_pool_size={pool} log_level=info", flush=True)
    meter = CpuMeter(server.pid, postmaster_pid(pg))

    bodies, values = make_bodies(args.jobs, args.metrics, args.samples)
    tails = [copy_tails(v) for v in values]
    body_mb = sum(map(len, bodies)) / len(bodies) / 1e6
    print(f"   request body: {body_mb:.2f} MB per result (encoded before the clock)", flush=True)
    tmp = harness.tmpdir("ingest-")
    harness.sql(url, "SELECT points_partition_for(now())")

    # Warm-up, not measured: creates the series, fills caches, starts the backends.
    seq = 0
    warm = bodies[:min(args.jobs, 4 * args.clients)]
    queue_jobs(server, cat.admin, len(warm), seq)
    seq += len(warm)
    run_api(server, tokens, warm, args.metrics)
    commit_id = int(harness.sql_value(url, "SELECT min(id) FROM commits"))
    ts = harness.sql_value(url, "SELECT now()::text")
    whole, parts = write_copy_files(tmp, tails[:len(warm)], 999, commit_id, ts)
    run_copy(url, whole, parts)
    print(f"   setup and warm-up: {time.perf_counter() - t_setup:.1f} s", flush=True)

    api_rates, upload_rates, copy_rates, copyjob_rates = [], [], [], []
    all_claims, all_uploads = [], []
    cpu_api, cpu_copy = [], []
    wal_api, wal_copy = [], []
    reconnects = 0
    ncpu = os.cpu_count() or 1
    print(f"\n   {'':>3} {'':>11} {'':>11} {'':>11} {'':>6} {'':>14} {'':>6}  "
          f"CPU ms per 1000 API points")
    print(f"   {'rep':>3} {'API pts/s':>11} {'upload-only':>11} {'COPY pts/s':>11} "
          f"{'ratio':>6} {'COPY/job pts/s':>14} {'ratio':>6}  {'server':>6} {'pg':>5} "
          f"{'others':>6}", flush=True)
    for rep in range(args.reps):
        # API, then COPY of the same rows: drift hits both.
        queue_jobs(server, cat.admin, args.jobs, seq)
        seq += args.jobs
        w0 = wal_lsn(url)
        c0 = meter.snapshot()
        res = run_api(server, tokens, bodies, args.metrics)
        c1 = meter.snapshot()
        w1 = wal_lsn(url)
        cpu_api.append(CpuMeter.diff(c0, c1))
        wal_api.append(w1 - w0)
        reconnects += res["reconnects"]
        api_rate = npoints / res["wall"]
        upload_rate = npoints / res["client_upload_s"]
        all_claims += res["claims"]
        all_uploads += res["uploads"]

        ts = harness.sql_value(url, "SELECT now()::text")
        whole, parts = write_copy_files(tmp, tails, rep, commit_id, ts)
        w0 = wal_lsn(url)
        c0 = meter.snapshot()
        t_all, t_jobs = run_copy(url, whole, parts)
        c1 = meter.snapshot()
        w1 = wal_lsn(url)
        cpu_copy.append(CpuMeter.diff(c0, c1))
        wal_copy.append(w1 - w0)
        for p in [whole] + parts:
            os.unlink(p)
        copy_rate = npoints / t_all
        copyjob_rate = npoints / t_jobs
        api_rates.append(api_rate)
        upload_rates.append(upload_rate)
        copy_rates.append(copy_rate)
        copyjob_rates.append(copyjob_rate)
        print(f"   {rep + 1:>3} {fmt_rate(api_rate):>11} {fmt_rate(upload_rate):>11} "
              f"{fmt_rate(copy_rate):>11} {api_rate / copy_rate:>6.3f} "
              f"{fmt_rate(copyjob_rate):>14} {api_rate / copyjob_rate:>6.3f}  "
              f"{cpu_api[-1]['server'] / npoints * 1e6:>6.1f} "
              f"{cpu_api[-1]['postgres'] / npoints * 1e6:>5.1f} "
              f"{other_cpu(cpu_api[-1], ncpu) / npoints * 1e6:>6.1f}", flush=True)

    rows = int(harness.sql_value(url, "SELECT count(*) FROM points"))
    # Each round stores its rows three times: API, one COPY, COPY per job.
    expect = 3 * (args.reps * npoints + len(warm) * args.metrics)
    med = statistics.median
    api_m, up_m, copy_m, cj_m = med(api_rates), med(upload_rates), med(copy_rates), med(copyjob_rates)
    print(f"\n   medians of {args.reps}: API {fmt_rate(api_m)} points/s "
          f"(upload-only {fmt_rate(up_m)}), COPY {fmt_rate(copy_m)} points/s, "
          f"COPY per job {fmt_rate(cj_m)} points/s")
    print(f"   ratio API/COPY: median of the per-repetition ratios "
          f"{med([a / c for a, c in zip(api_rates, copy_rates)]):.3f}, of the medians "
          f"{api_m / copy_m:.3f} (goal >= 0.5); API/COPY-per-job "
          f"{med([a / c for a, c in zip(api_rates, copyjob_rates)]):.3f}")
    print(f"   upload round trip ({len(all_uploads)} requests, {args.clients} concurrent): "
          f"p50 {percentile(all_uploads, 50) * 1e3:.1f} ms, p99 {percentile(all_uploads, 99) * 1e3:.1f} ms; "
          f"claim p50 {percentile(all_claims, 50) * 1e3:.2f} ms, "
          f"p99 {percentile(all_claims, 99) * 1e3:.2f} ms; "
          f"claims are {100 * sum(all_claims) / (sum(all_claims) + sum(all_uploads)):.1f}% "
          f"of client time; reconnects {reconnects}")

    def cpu_line(name, cpus, wals, rows_per_rep):
        # Per 1000 points stored; the COPY phase stores every row twice.
        pts = rows_per_rep * len(cpus) / 1000.0
        wall = sum(c["wall"] for c in cpus)
        srv = sum(c["server"] for c in cpus)
        pgc = sum(c["postgres"] for c in cpus)
        cli = sum(c["client"] for c in cpus)
        busy = sum(c["busy"] * c["wall"] * ncpu for c in cpus)
        others = max(0.0, busy - srv - pgc - cli)
        return (f"   {name:<8} wall {wall / pts * 1e3:5.1f} ms | CPU: server {srv / pts * 1e3:5.1f} ms, "
                f"postgres (all processes) {pgc / pts * 1e3:5.1f} ms, this client {cli / pts * 1e3:4.1f} ms, "
                f"other processes {others / pts * 1e3:4.1f} ms | machine busy "
                f"{med([c['busy'] for c in cpus]) * 100:3.0f}%, iowait "
                f"{med([c['iowait'] for c in cpus]) * 100:2.0f}% | WAL "
                f"{sum(wals) / pts / 1000:,.0f} B/point")
    print(f"   per 1000 points stored ({ncpu} cores: {ncpu} ms of CPU per ms of wall):")
    print(cpu_line("API", cpu_api, wal_api, npoints))
    print(cpu_line("COPY x2", cpu_copy, wal_copy, 2 * npoints))
    # CPU seconds per point are far less disturbed by other load than wall time.
    api_cpu = sum(c["server"] + c["postgres"] for c in cpu_api) / (npoints * len(cpu_api))
    copy_cpu = sum(c["postgres"] for c in cpu_copy) / (2 * npoints * len(cpu_copy))
    # /proc counts CPU in clock ticks (10 ms): too short a COPY phase says nothing.
    enough = sum(c["postgres"] for c in cpu_copy) >= 0.2
    cpu_ratio = copy_cpu / api_cpu if api_cpu and enough else float("nan")
    # One COPY keeps one backend busy; the API spreads over every core.
    ceiling = min(1.0, ncpu * cpu_ratio) if cpu_ratio == cpu_ratio else cpu_ratio
    print(f"   CPU cost ratio COPY/API (server + postgres CPU per point): {cpu_ratio:.2f}; "
          f"x {ncpu} cores = {ceiling:.2f}, the API/COPY to expect on this machine with no "
          f"other load (the API uses every core, one COPY one)")
    if rows != expect:
        print(f"   WARNING: points holds {rows} rows, expected {expect}")
    r_copy = med([a / c for a, c in zip(api_rates, copy_rates)])
    r_job = med([a / c for a, c in zip(api_rates, copyjob_rates)])
    print(f"SUMMARY ingest: API {fmt_rate(api_m)} points/s, COPY {fmt_rate(copy_m)} points/s, "
          f"API/COPY {r_copy:.2f} (goal >= 0.5), API/COPY-per-job {r_job:.2f}, "
          f"CPU cost ratio {cpu_ratio:.2f} (idle-machine API/COPY {ceiling:.2f}); "
          f"upload p50 {percentile(all_uploads, 50) * 1e3:.0f} ms p99 "
          f"{percentile(all_uploads, 99) * 1e3:.0f} ms ({args.clients} clients, "
          f"{args.metrics}x{args.samples} per result, median of {args.reps}, "
          f"synchronous_commit={settings['synchronous_commit']})")
    server.stop()
    pg.stop()


if __name__ == "__main__":
    main()
