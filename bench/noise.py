"""Measurement noise: tinyllm tokens/s through the real worker, the same commit N times.

Prints the coefficient of variation of single requests (within runs) and of
the worker's per-run summary (the median of a run's requests), and their
ratio, once with the engine pinned to one CPU and once unpinned, in the same
run. The summary is what detection compares, so the ratio is the figure.

    PYTHONPATH=tests/lib python3 bench/noise.py [--runs 10] [--reps 30]
"""

import argparse
import statistics
import sys
import os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))

import harness  # noqa: E402
from fixtures import Catalog, demo_history, job_state, queue_job, start_worker  # noqa: E402


def cv(values):
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else float("nan")


class Bench(harness.DatabaseTestCase):
    """A test case is only used for its set-up helpers (database, server, cleanup)."""

    def runTest(self):
        pass


def measure(bench, cat, server, repo_sha, runs, reps, pinned):
    work = harness.tmpdir("noise-")
    env = {"BENCHLINE_WORKER_ENGINE_CPUS": "1" if pinned else "",
           "BENCHLINE_WORKER_LOG_LEVEL": "info"}
    worker = start_worker(Bench, server, cat.workers["w1"], work, env=env,
                          name="worker-pinned" if pinned else "worker")
    params = {"latency": {"repetitions": reps, "prompt_tokens": [16], "max_tokens": [32]}}
    jobs = [queue_job(server, cat.admin, "demo", repo_sha, "t1", ["latency"], params=params)
            for _ in range(runs)]
    harness.wait_for(lambda: all(job_state(bench.db_url, j)[0] in ("done", "failed")
                                 for j in jobs), timeout=60 * runs, interval=1)
    worker.stop()
    singles_cv, summaries, pooled = [], [], []
    for j in jobs:
        row = harness.sql(bench.db_url,
                          "SELECT p.samples FROM points p JOIN series s ON s.id = p.series_id "
                          "JOIN runs r ON r.id = p.run_id WHERE r.job_id = :'p1' AND "
                          "s.metric = 'tokens_per_s' AND s.scenario = 'latency'", j)
        samples = [float(x) for x in row[0][0].strip("{}").split(",")]
        singles_cv.append(cv(samples))
        summaries.append(statistics.median(samples))
        pooled.extend(samples)
    return statistics.mean(singles_cv), cv(pooled), cv(summaries), summaries


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()

    Bench.setUpClass()
    try:
        bench = Bench()
        repo, shas = demo_history()
        cat = Catalog(bench.db_url)
        harness.sql(bench.db_url, "UPDATE projects SET repo_url = :'p1'", repo)
        server = Bench.start_server(env={"BENCHLINE_LOG_LEVEL": "warn"})
        print(f"noise: tinyllm baseline, {args.runs} runs x {args.reps} requests "
              f"(16 prompt + 32 generated tokens), {os.cpu_count()} CPUs")
        results = {}
        for pinned in (True, False):
            within, single, summary, meds = measure(bench, cat, server, shas["baseline"],
                                                    args.runs, args.reps, pinned)
            label = "pinned to CPU 1" if pinned else "unpinned"
            results[label] = (single, summary)
            print(f"  {label:16s} CV single requests {single * 100:5.1f}% "
                  f"(within a run {within * 100:4.1f}%)  "
                  f"CV run summaries {summary * 100:5.1f}%  "
                  f"ratio {single / summary:4.1f}x  "
                  f"(run medians {min(meds):.1f}..{max(meds):.1f} tok/s)")
        print("noise: the summary should be at least 3x steadier than single requests")
    finally:
        Bench.doClassCleanups()
        harness.cleanup_all()


if __name__ == "__main__":
    main()
