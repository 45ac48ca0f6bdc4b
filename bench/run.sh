#!/usr/bin/env bash
# run.sh: runs every benchmark of the service and ends with a summary block
# that can be pasted into bench/README.md.
#
#   BUILD=build bash bench/run.sh          (what `make bench` does)
#
# Runs, one process each and in this order: bench/ingest.py, bench/query.py,
# then any other bench/*.py (helpers whose name starts with "_" are skipped),
# then bench/collector/run.sh when it exists. Each benchmark starts and stops
# its own PostgreSQL cluster and server through tests/lib/harness.py.
# Every line a benchmark prints that starts with "SUMMARY " goes into the
# summary block. The exit status is 0 when every benchmark exited 0.
#
# Environment:
#   BUILD               build directory holding the binaries (default build);
#                       point it at another build to compare two revisions
#   BENCH_FILTER        extended regex: run only the benchmarks whose path matches
#   BENCH_TIMEOUT       seconds per benchmark (default 900); SIGTERM, then SIGKILL 30 s later
#   BENCH_ARGS_<NAME>   extra arguments of one benchmark, e.g. BENCH_ARGS_INGEST="--reps 7"
#                       or BENCH_ARGS_QUERY="--points 200000"
#   BENCH_LOG_DIR       where the full outputs are kept (default: a temporary directory,
#                       removed at the end unless a benchmark failed)
#   PYTHON              interpreter (default /usr/bin/python3)

set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
repo=$PWD
export BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3) || { echo "run.sh: python3 not found" >&2; exit 2; }
filter=${BENCH_FILTER:-}
bench_timeout=${BENCH_TIMEOUT:-900}

for b in benchline-server benchline; do
	if [ ! -x "$BUILD/$b" ]; then
		echo "run.sh: $BUILD/$b is missing: run 'make all' first (or make bench)" >&2
		exit 2
	fi
done

export PYTHONPATH="$repo/tests/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

keep_logs=0
if [ -n "${BENCH_LOG_DIR:-}" ]; then
	logdir=$BENCH_LOG_DIR
	mkdir -p "$logdir" || exit 2
	keep_logs=1
else
	logdir=$(mktemp -d /tmp/benchline-bench.XXXXXX) || exit 2
fi

# The benchmarks, in order: the two this file was written with first.
benches=()
for f in bench/ingest.py bench/query.py; do
	[ -f "$f" ] && benches+=("$f")
done
for f in bench/*.py; do
	case "$f" in
	bench/ingest.py | bench/query.py | bench/_*) continue ;;
	esac
	benches+=("$f")
done
[ -f bench/collector/run.sh ] && benches+=(bench/collector/run.sh)

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -n 1)" ]; then
	rev="$rev+changes"
fi
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

child=
on_signal() {
	trap '' TERM INT HUP
	echo "run.sh: interrupted, stopping the running benchmark" >&2
	[ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
	exit 130
}
trap on_signal TERM INT HUP

summary=()
failed=()
for b in "${benches[@]}"; do
	if [ -n "$filter" ] && ! [[ "$b" =~ $filter ]]; then
		continue
	fi
	name=$(basename "$b" .py)
	[ "$b" = bench/collector/run.sh ] && name=collector
	var="BENCH_ARGS_$(echo "$name" | tr '[:lower:]-' '[:upper:]_')"
	read -r -a extra <<<"${!var:-}"
	log="$logdir/$name.log"
	echo
	echo "### $b ${extra[*]:-}"
	t0=$(date +%s)
	case "$b" in
	*.py) cmd=("$PYTHON" "$b" "${extra[@]}") ;;
	*) cmd=(bash "$b" "${extra[@]}") ;;
	esac
	# timeout(1) sends SIGTERM; the harness then stops what the benchmark started.
	timeout -k 30 "$bench_timeout" "${cmd[@]}" >"$log" 2>&1 &
	child=$!
	tail -n +1 -f --pid="$child" "$log" &
	tailer=$!
	wait "$child"
	rc=$?
	child=
	wait "$tailer"
	secs=$(($(date +%s) - t0))
	if [ "$rc" -ne 0 ]; then
		failed+=("$name (exit $rc after ${secs} s, log $log)")
		keep_logs=1
	fi
	n=0
	while IFS= read -r line; do
		summary+=("${line#SUMMARY }")
		n=$((n + 1))
	done < <(grep '^SUMMARY ' "$log")
	[ "$n" -gt 0 ] || summary+=("$name: printed no 'SUMMARY ' line; see its output above")
	summary+=("  ($name: ${secs} s, exit $rc)")
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
echo
echo "== benchline benchmarks: $started, revision $rev, $(nproc 2>/dev/null || echo '?') cores," \
	"load average $load_before before, $load_after after"
for line in "${summary[@]}"; do
	echo "$line"
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}"
else
	echo "all benchmarks exited 0"
fi
echo "(figures are ratios against a reference measured in the same run; absolute rates move with the machine's load)"

if [ "$keep_logs" -eq 0 ]; then
	rm -rf "$logdir"
else
	echo "full outputs: $logdir"
fi
[ ${#failed[@]} -eq 0 ]
