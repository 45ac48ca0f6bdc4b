#!/usr/bin/env python3
"""Dashboard benchmark: time to first chart in headless Chromium.

Starts a private PostgreSQL cluster and the real server (serving web/), loads
three projects with SQL generate_series, and has bench/dashboard.mjs open the
Trends page of each in a fresh browser context, interleaved, --reps times
after one warm-up round:

  EMPTY  the trend chart of a series with no points (the reference: the
         page, its scripts, the API calls and an empty chart);
  LONG   the trend chart of one series of --points points (default
         100,000, one commit each, a few alerts): the server downsamples
         to what the chart's width needs (LTTB) before anything is drawn;
  WIDE   a project of --series series (default 200: 100 metrics on 2
         targets, 200 commits each), its small multiples drawn as they
         scroll into view: the first of them, and all of those in view.

Time to first chart is the chart's first frame (Chart.js afterRender, as
performance.now() from the navigation's start). Prints the median and p90 of
each, the ratio of each median to EMPTY's, and the points request's own
time from the browser's resource timing. Nothing about speed is asserted.

    PYTHONPATH=tests/lib python3 bench/dashboard.py [--points 100000]
        [--series 200] [--reps 7]
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "lib"))
import harness  # noqa: E402
import fixtures  # noqa: E402

T0 = "2024-01-01T00:00:00Z"
CHROMIUM = "/usr/bin/chromium"


def new_series(url, project, target, scenario, metric, unit="ms"):
    return int(harness.sql_value(
        url, "INSERT INTO series (project_id, target_id, branch, scenario, metric, unit, direction) "
             "SELECT p.id, t.id, 'main', :'p3', :'p4', :'p5', 'lower' FROM projects p, targets t "
             "WHERE p.name = :'p1' AND t.name = :'p2' RETURNING id",
        project, target, scenario, metric, unit))


def new_commits(url, project, n, step):
    """n commits of project, step apart from T0; returns the first id (ids are consecutive)."""
    return int(harness.sql_value(
        url, "WITH c AS (INSERT INTO commits (project_id, sha, branch, author_name, author_email, "
             "message, committed_at) SELECT p.id, md5(p.name || ' commit ' || i), 'main', 'Bench Author', "
             "'bench@example.org', 'bench: commit number ' || i, :'p2'::timestamptz + i * "
             ":'p3'::interval FROM projects p, generate_series(0, :'p4'::int - 1) AS i WHERE p.name = "
             ":'p1' ORDER BY i RETURNING id) SELECT min(id) FROM c", project, T0, step, n))


def load_points(url, sid, c0, n, step_s, run0, seed):
    """n points on series sid, one per commit from c0, a noisy line with steps and rare spikes."""
    harness.sql(
        url, "SELECT setseed(:'p7'); INSERT INTO points (series_id, ts, commit_id, run_id, value, lo, "
             "hi, n, samples) SELECT :'p1', :'p2'::timestamptz + i * make_interval(secs => :'p3'), "
             ":'p4'::bigint + i, :'p5'::bigint + i, v, v * 0.97, v * 1.03, 5, ARRAY[v, v * 0.99, v * 1.01, "
             "v * 0.98, v * 1.02] FROM (SELECT i, 100 + 5 * sin(i / 2000.0) + (i * 4 / :'p6'::int) * 8 "
             "+ random() * 3 + CASE WHEN i % 9973 = 500 THEN 60 ELSE 0 END AS v FROM generate_series(0, "
             ":'p6'::int - 1) AS i) x", sid, T0, step_s, c0, run0, n, seed)


def load(url, npoints, nseries):
    fixtures.Catalog(url)
    for name in ("long", "wide", "hollow"):
        fixtures.cli_ok(url, "project", "create", name, "--repo", f"file:///nonexistent/{name}.git")
    harness.sql(url, "SELECT points_partition_for('2024-01-15T00:00:00Z')")
    # LONG: one series of npoints points, one commit each, within January 2024.
    step = 20 * 86400 / npoints
    c0 = new_commits(url, "long", npoints, f"{step} seconds")
    sid = new_series(url, "long", "t1", "latency", "ttft_ms")
    load_points(url, sid, c0, npoints, step, 100_000_000, 0.42)
    # Its alerts: the steps of the line, as the detector would mark them.
    for k in range(1, 4):
        harness.sql(url, "INSERT INTO alerts (series_id, kind, bad_commit_id, before_value, after_value, "
                         "change_pct, p_value, state) VALUES (:'p1', 'perf', :'p2', 100, 108, 8, 0.0001, "
                         "'resolved')", sid, c0 + k * npoints // 4)
    # WIDE: nseries series, half on each target, 200 commits.
    wc0 = new_commits(url, "wide", 200, "1 hour")
    for i in range(nseries):
        s = new_series(url, "wide", ("t1", "t2")[i % 2], f"scenario{i // 2 // 25:02d}", f"metric{i // 2:03d}")
        load_points(url, s, wc0, 200, 3600, 200_000_000 + i * 1000, (i % 100) / 100)
    # EMPTY: a series with no points.
    new_series(url, "hollow", "t1", "latency", "ttft_ms")
    harness.sql(url, "VACUUM ANALYZE")
    harness.sql(url, "CHECKPOINT")
    return sid


def stats(xs):
    xs = sorted(xs)
    med = xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return med, p90


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=100_000, help="points of the long series")
    ap.add_argument("--series", type=int, default=200, help="series of the wide project (even)")
    ap.add_argument("--reps", type=int, default=7, help="measured rounds after one warm-up")
    args = ap.parse_args()
    if not os.access(CHROMIUM, os.X_OK) or not os.path.isdir(
            os.path.join(harness.REPO, "web", "node_modules", "playwright-core")):
        print("dashboard.py: needs /usr/bin/chromium and web/node_modules (make bench installs them)",
              file=sys.stderr)
        return 2
    print(f"== dashboard: time to first chart, {args.reps} rounds after a warm-up; long series "
          f"{args.points:,} points, wide project {args.series} series", flush=True)
    t_load = time.perf_counter()
    pg = harness.Postgres().start()
    url = pg.url
    load(url, args.points, args.series)
    print(f"   loaded in {time.perf_counter() - t_load:.1f} s", flush=True)
    server = harness.Server(url, env={"BENCHLINE_WEB_ROOT": os.path.join(harness.REPO, "web"),
                                      "BENCHLINE_LOG_LEVEL": "info"}).start()
    d = harness.tmpdir("bench-dashboard-")
    cfg = os.path.join(d, "cfg.json")
    out = os.path.join(d, "out.json")
    pages = {
        "EMPTY": "#/trends?project=hollow&scenario=latency&metric=ttft_ms",
        "LONG": "#/trends?project=long&scenario=latency&metric=ttft_ms",
        "WIDE": "#/trends?project=wide",
    }
    with open(cfg, "w") as f:
        json.dump({"base": server.url, "chromium": CHROMIUM, "pages": pages, "reps": args.reps,
                   "out": out}, f)
    proc = subprocess.run(["node", os.path.join(harness.REPO, "bench", "dashboard.mjs"), cfg],
                          capture_output=True, text=True, timeout=900)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return 1
    with open(out) as f:
        res = json.load(f)
    first = {k: [r["first"] for r in res[k]] for k in pages}
    empty_med = stats(first["EMPTY"])[0]
    print(f"\n   {'page':<6} {'first chart p50':>16} {'p90':>8} {'x EMPTY':>8}  more")
    for k in pages:
        med, p90 = stats(first[k])
        more = ""
        if k == "LONG":
            pts = stats([r["points_ms"] for r in res[k]])[0]
            more = (f"points request p50 {pts:.0f} ms, {res[k][0]['returned']:,} of "
                    f"{res[k][0]['total']:,} points drawn")
        if k == "WIDE":
            allv = stats([r["all_in_view"] for r in res[k]])[0]
            more = f"all {res[k][0]['charts_in_view']} charts in view p50 {allv:.0f} ms ({allv / empty_med:.2f}x EMPTY)"
        print(f"   {k:<6} {med:>13.0f} ms {p90:>5.0f} ms {med / empty_med:>7.2f}x  {more}")
    long_med = stats(first["LONG"])[0]
    wide_med = stats(first["WIDE"])[0]
    print(f"SUMMARY dashboard: time to first chart, {args.points:,}-point series {long_med:.0f} ms "
          f"({long_med / empty_med:.2f}x the empty series' {empty_med:.0f} ms); "
          f"{args.series}-series project {wide_med:.0f} ms ({wide_med / empty_med:.2f}x)")
    server.stop()
    pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
