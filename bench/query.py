#!/usr/bin/env python3
"""Query benchmark: GET /api/v1/series/{id}/points against a plain index range scan.

Starts a private PostgreSQL cluster and the real server, loads one series of
--points points (default 1,000,000) spread over ~2 months (January and
February 2024: two monthly partitions) with SQL generate_series, runs
VACUUM ANALYZE so the covering index (series_id, ts) INCLUDE (value, run_id)
serves index-only scans, then for two ranges -- the whole series and a 10%
sub-range across the month boundary -- measures, interleaved in --blocks
blocks so drift hits every column alike:

  API    GET /api/v1/series/{id}/points?from&to&max_points=1000 over one
         keep-alive connection: round trip until the last byte of the body
         (the server reads every row of the range, downsamples with LTTB,
         then fetches the details of the chosen points);
  SCAN   the reference: SELECT ts, value FROM points WHERE series_id = X AND
         ts BETWEEN .. ORDER BY ts, timed by \\timing in one psql session
         with \\o /dev/null (psql's time stops once the rows are received,
         before they are printed);
  SQL1   the server's own range query (server/api_query.c) in psql;
  SQL2   the server's details query for the points the API returned.

Prints p50/p99 of each, the ratio API/SCAN, the response size and points
returned, and EXPLAIN (ANALYZE, BUFFERS) of the server's range query. Every
figure is a ratio against a reference measured in the same run; nothing
about speed is asserted.

    PYTHONPATH=tests/lib python3 bench/query.py [--points 1000000]
        [--requests 30] [--blocks 3] [--max-points 1000] [--threads 4]
"""

import argparse
import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest  # noqa: E402  (shared helpers; also puts tests/lib on the path)
import harness  # noqa: E402
import fixtures  # noqa: E402

from ingest import percentile, psql_timed, CpuMeter, postmaster_pid  # noqa: E402

T0 = "2024-01-01T00:00:00Z"
STEP_S = 5                  # 1,000,000 points x 5 s = 57.9 days: Jan 1 .. Feb 27
NCOMMITS = 10000

# The server's queries, as in server/api_query.c api_series_points().
SERVER_RANGE = ("SELECT extract(epoch FROM ts), value, run_id FROM points WHERE series_id = $1 "
                "AND ts >= coalesce(bl_time($2), '-infinity') AND ts <= "
                "coalesce(bl_time($3), 'infinity') ORDER BY ts")
SERVER_DETAILS = ("SELECT coalesce(json_agg(json_build_object('ts', pt.ts, 'value', pt.value, "
                  "'lo', pt.lo, 'hi', pt.hi, 'n', pt.n, 'run_id', pt.run_id, 'commit', c.sha, "
                  "'author', c.author_name, 'message', c.message, 'commit_id', c.id) ORDER BY "
                  "c.id, pt.ts), '[]') FROM points pt JOIN commits c ON c.id = pt.commit_id "
                  "WHERE pt.series_id = $1 AND pt.run_id = ANY($2::bigint[])")


def load_series(url, npoints):
    """Creates one series of npoints points (and NCOMMITS commits); returns
    (series id, first ts, last ts) with the times as ISO 8601 text."""
    sid = harness.sql_value(
        url, "INSERT INTO series (project_id, target_id, branch, scenario, metric, unit, "
             "direction) SELECT p.id, t.id, 'main', 'latency', 'bench_ttft_ms', 'ms', 'lower' "
             "FROM projects p, targets t WHERE p.name = 'demo' AND t.name = 't1' RETURNING id")
    c0 = harness.sql_value(
        url, "WITH c AS (INSERT INTO commits (project_id, sha, branch, author_name, "
             "author_email, message, committed_at) SELECT p.id, md5('bench commit ' || i), "
             "'main', 'Bench Author', 'bench@example.org', 'bench: commit number ' || i, "
             ":'p1'::timestamptz + i * interval '10 minutes' FROM projects p, "
             "generate_series(0, :'p2'::int - 1) AS i WHERE p.name = 'demo' RETURNING id) "
             "SELECT min(id) FROM c", T0, NCOMMITS)
    # One statement per partition, before the rows arrive.
    harness.sql(url, "SELECT points_partition_for('2024-01-15T00:00:00Z')")
    harness.sql(url, "SELECT points_partition_for('2024-02-15T00:00:00Z')")
    # A noisy line with slow drift, steps every 250k points and rare spikes;
    # one run per point, commits increasing with time (100 points per commit).
    harness.sql(
        url, "SELECT setseed(0.42); "
             "INSERT INTO points (series_id, ts, commit_id, run_id, value, lo, hi, n, samples) "
             "SELECT :'p1', :'p2'::timestamptz + i * make_interval(secs => :'p3'), "
             ":'p4'::bigint + i * :'p5'::bigint / :'p6', 100000000 + i, v, v * 0.97, v * 1.03, 5, "
             "ARRAY[v, v * 0.99, v * 1.01, v * 0.98, v * 1.02] FROM (SELECT i, 10 + sin(i / 20000.0) "
             "+ (i / 250000) * 0.5 + random() * 0.3 + CASE WHEN i % 99991 = 0 THEN 20 ELSE 0 END "
             "AS v FROM generate_series(0, :'p6'::int - 1) AS i) x",
        sid, T0, STEP_S, c0, NCOMMITS, npoints)
    harness.sql(url, "VACUUM ANALYZE points")
    # The rest too, and a checkpoint, so that neither autovacuum (10,000 new
    # commits) nor the checkpointer works during the measurements.
    harness.sql(url, "VACUUM ANALYZE")
    harness.sql(url, "CHECKPOINT")
    first, last, n = harness.sql(
        url, "SELECT to_char(min(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
             "to_char(max(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), count(*) "
             "FROM points WHERE series_id = :'p1'", sid)[0]
    return int(sid), first, last, int(n)


def iso_at(url, first, last, frac):
    """The ISO 8601 time at fraction frac of [first, last]."""
    return harness.sql_value(
        url, "SELECT to_char((:'p1'::timestamptz + (:'p2'::timestamptz - :'p1'::timestamptz) "
             "* :'p3'::float8) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        first, last, frac)


def lit(s):
    """A SQL string literal (our own ISO times and digits only)."""
    assert "'" not in s
    return f"'{s}'"


def api_get(conn, path):
    t0 = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    dt = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
    return dt, body, resp.will_close


def psql_block(url, sid, lo, hi, run_ids, runs, diag):
    """One psql session: a discarded warm-up of each statement, then runs
    times SCAN, with SQL1 and SQL2 after the first diag of them.
    Returns the times of each as three lists."""
    scan = (f"SELECT ts, value FROM points WHERE series_id = {sid} AND ts BETWEEN "
            f"{lit(lo)} AND {lit(hi)} ORDER BY ts;\n")
    arr = "{" + ",".join(str(r) for r in run_ids) + "}"
    sql1 = f"EXECUTE sql1({sid}, {lit(lo)}, {lit(hi)});\n"
    sql2 = f"EXECUTE sql2({sid}, {lit(arr)});\n"
    script = (f"PREPARE sql1(bigint, text, text) AS {SERVER_RANGE};\n"
              f"PREPARE sql2(bigint, text) AS {SERVER_DETAILS};\n")
    labels = ["prepare", "prepare", "warm", "warm", "warm"]
    script += scan + sql1 + sql2
    for i in range(runs):
        script += scan
        labels.append("scan")
        if i < diag:
            script += sql1 + sql2
            labels += ["sql1", "sql2"]
    times = psql_timed(url, script)
    if len(times) != len(labels):
        raise RuntimeError(f"psql printed {len(times)} timings, expected {len(labels)}")
    return [[t for t, l in zip(times, labels) if l == k] for k in ("scan", "sql1", "sql2")]


def ms(x):
    return f"{x * 1e3:8.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000, help="points in the series")
    ap.add_argument("--requests", type=int, default=30, help="measured requests per range (>= 30)")
    ap.add_argument("--blocks", type=int, default=3, help="interleaved API/psql blocks")
    ap.add_argument("--max-points", type=int, default=1000, help="max_points of the API")
    ap.add_argument("--threads", type=int, default=4, help="server HTTP threads")
    ap.add_argument("--diag", type=int, default=4,
                    help="runs per block of the server's own two queries in psql (SQL1, SQL2)")
    args = ap.parse_args()
    per_block = max(1, -(-args.requests // args.blocks))

    print(f"== query: one series of {args.points:,} points, max_points={args.max_points}, "
          f"{per_block * args.blocks} measured requests per range after 3 warm-ups", flush=True)
    t_setup = time.perf_counter()
    pg = harness.Postgres(fast=False).start()
    url = pg.url
    settings = dict(harness.sql(url, "SELECT name, setting FROM pg_settings WHERE name IN "
                                     "('synchronous_commit', 'shared_buffers', 'server_version', "
                                     "'work_mem', 'jit')"))
    print(f"   PostgreSQL {settings['server_version'].split()[0]} private cluster "
          f"(harness.Postgres(fast=False)): synchronous_commit={settings['synchronous_commit']} "
          f"shared_buffers={int(settings['shared_buffers']) * 8 // 1024}MB "
          f"work_mem={settings['work_mem']}kB jit={settings['jit']}", flush=True)
    fixtures.Catalog(url)
    t_load = time.perf_counter()
    sid, first, last, n = load_series(url, args.points)
    print(f"   series {sid}: {n:,} points from {first} to {last} loaded and vacuumed in "
          f"{time.perf_counter() - t_load:.1f} s", flush=True)
    parts = harness.sql(url, "SELECT tableoid::regclass, count(*) FROM points WHERE series_id = "
                             ":'p1' GROUP BY 1 ORDER BY 1", sid)
    print("   partitions: " + ", ".join(f"{p} {int(c):,}" for p, c in parts))
    pool = 8
    server = harness.Server(url, env={"BENCHLINE_THREADS": args.threads,
                                      "BENCHLINE_DB_POOL_SIZE": pool,
                                      "BENCHLINE_LOG_LEVEL": "info"}, name="server").start()
    print(f"   server: threads={args.threads} db_pool_size={pool} log_level=info", flush=True)
    meter = CpuMeter(server.pid, postmaster_pid(pg))

    ranges = [("whole", first, last),
              ("10%", iso_at(url, first, last, 0.45), iso_at(url, first, last, 0.55))]
    summary = []
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    for name, lo, hi in ranges:
        in_range = int(harness.sql_value(url, "SELECT count(*) FROM points WHERE series_id = "
                                              ":'p1' AND ts BETWEEN :'p2' AND :'p3'", sid, lo, hi))
        path = f"/api/v1/series/{sid}/points?from={lo}&to={hi}&max_points={args.max_points}"
        # Warm-ups; the last answer tells what the server sends.
        for _ in range(3):
            _, body, _ = api_get(conn, path)
        doc = json.loads(body)
        if doc["total"] != in_range or doc["returned"] != len(doc["points"]):
            raise RuntimeError(f"{name}: total {doc['total']} returned {doc['returned']} "
                               f"for {in_range} points in range")
        run_ids = [p["run_id"] for p in doc["points"]]
        api, scan, sql1, sql2, closes = [], [], [], [], 0
        cpu_api = []
        for _ in range(args.blocks):
            c0 = meter.snapshot()
            for _ in range(per_block):
                dt, body, will_close = api_get(conn, path)
                api.append(dt)
                closes += will_close
            cpu_api.append(CpuMeter.diff(c0, meter.snapshot()))
            a, b, c = psql_block(url, sid, lo, hi, run_ids, per_block, args.diag)
            scan += a
            sql1 += b
            sql2 += c
        p50 = {k: percentile(v, 50) for k, v in (("api", api), ("scan", scan), ("sql1", sql1),
                                                  ("sql2", sql2))}
        p99 = {k: percentile(v, 99) for k, v in (("api", api), ("scan", scan), ("sql1", sql1),
                                                  ("sql2", sql2))}
        nreq = len(api)
        srv_ms = sum(c["server"] for c in cpu_api) / nreq * 1e3
        pg_ms = sum(c["postgres"] for c in cpu_api) / nreq * 1e3
        busy = sorted(c["busy"] for c in cpu_api)[len(cpu_api) // 2]
        ncpu = os.cpu_count() or 1
        others_ms = max(0.0, sum(c["busy"] * c["wall"] * ncpu - c["server"] - c["postgres"]
                                 - c["client"] for c in cpu_api)) / nreq * 1e3
        print(f"\n   range {name}: {lo} .. {hi}, {in_range:,} points; answer {len(body):,} bytes, "
              f"{doc['returned']} points returned (total {doc['total']:,})")
        print(f"   {'':<44} {'p50 ms':>8} {'p99 ms':>8}   runs")
        print(f"   {'API  GET .../points (round trip)':<44} {ms(p50['api'])} {ms(p99['api'])}   {len(api)}")
        print(f"   {'SCAN SELECT ts, value .. ORDER BY ts (psql)':<44} {ms(p50['scan'])} {ms(p99['scan'])}   {len(scan)}")
        print(f"   {'SQL1 server range query (psql)':<44} {ms(p50['sql1'])} {ms(p99['sql1'])}   {len(sql1)}")
        print(f"   {'SQL2 server details query (psql)':<44} {ms(p50['sql2'])} {ms(p99['sql2'])}   {len(sql2)}")
        print(f"   ratio API/SCAN: p50 {p50['api'] / p50['scan']:.2f}, p99 {p99['api'] / p99['scan']:.2f}; "
              f"SQL1/SCAN {p50['sql1'] / p50['scan']:.2f}; (SQL1+SQL2)/API {(p50['sql1'] + p50['sql2']) / p50['api']:.2f}; "
              f"CPU per request: server {srv_ms:.1f} ms, postgres (all processes) {pg_ms:.1f} ms, "
              f"other processes {others_ms:.1f} ms (machine busy {busy * 100:.0f}%); reconnects {closes}")
        summary.append(f"{name} ({in_range:,} pts -> {doc['returned']}, {len(body) / 1024:.0f} KiB): "
                       f"API p50 {p50['api'] * 1e3:.0f} ms p99 {p99['api'] * 1e3:.0f} ms, SCAN p50 "
                       f"{p50['scan'] * 1e3:.0f} ms p99 {p99['scan'] * 1e3:.0f} ms, API/SCAN p50 "
                       f"{p50['api'] / p50['scan']:.2f} p99 {p99['api'] / p99['scan']:.2f}, "
                       f"server's range SQL/SCAN {p50['sql1'] / p50['scan']:.2f}")
    conn.close()

    lo, hi = ranges[0][1], ranges[0][2]
    plan = harness.sql(url, f"PREPARE q(bigint, text, text) AS {SERVER_RANGE}; "
                            f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE q({sid}, {lit(lo)}, "
                            f"{lit(hi)})")
    text = "\n".join(r[0] for r in plan)
    print("\n   EXPLAIN (ANALYZE, BUFFERS) of the server's range query over the whole range:")
    for line in text.splitlines():
        print("     " + line)
    ios = "Index Only Scan" in text
    fetches = [int(x) for x in re.findall(r"Heap Fetches: (\d+)", text)]
    print(f"   index-only scan: {'yes' if ios else 'NO'}; heap fetches {sum(fetches)}")
    arr = "{" + ",".join(str(r) for r in run_ids) + "}"
    plan = harness.sql(url, f"PREPARE d(bigint, text) AS {SERVER_DETAILS}; "
                            f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE d({sid}, {lit(arr)})")
    print(f"\n   EXPLAIN (ANALYZE, BUFFERS) of the server's details query ({len(run_ids)} run ids, "
          f"array elided):")
    for (line,) in plan:
        print("     " + re.sub(r"\{[0-9,]{60,}\}", "{...}", line))
    print(f"   wall time of the whole benchmark: {time.perf_counter() - t_setup:.1f} s")
    for s in summary:
        print(f"SUMMARY query {s}")
    server.stop()
    pg.stop()


if __name__ == "__main__":
    main()
