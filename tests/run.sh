#!/usr/bin/env bash
# run.sh: runs every benchline test and ends with "N passed, N failed[, N skipped]".
#
#   BUILD=build bash tests/run.sh          (what `make test` does)
#
# 1. every unit test binary under $BUILD/tests/unit/ (cmocka): its tests are
#    counted from cmocka's "[  PASSED  ] n test(s)" lines; a binary that exits
#    non-zero without reporting a failed test counts as one failure (a crash);
# 2. every tests/integration/test_*.py, tests/e2e/test_*.py and
#    tests/browser/test_*.py, one Python process per file (tests/lib/runner.py),
#    against one PostgreSQL cluster started here for the whole run (each test
#    class makes its own database in it).
#
# Environment:
#   BUILD                       build directory (default build)
#   BENCHLINE_TEST_FILTER       extended regex: run only the files whose path
#                               (tests/unit/common/buf, tests/integration/test_x.py) matches
#   BENCHLINE_TEST_K            run only Python tests whose Class.test_name contains this
#   BENCHLINE_TEST_TIMEOUT      seconds per Python file (default 300); a file may ask
#                               for more with a line "# benchline-test-timeout: 900"
#   BENCHLINE_UNIT_TIMEOUT      seconds per unit binary (default 120)
#   PYTHON                      interpreter (default /usr/bin/python3)
#
# A file that times out is stopped with SIGTERM (the harness then stops what it
# started), SIGKILL 15 s later. After every file, any cluster it left running
# is stopped and any process it left behind is killed and reported as a failure.
# When something failed, the logs (servers, PostgreSQL) are copied to
# tests/artifacts/<time>/.

set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
repo=$PWD
export BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3) || { echo "run.sh: python3 not found" >&2; exit 2; }
filter=${BENCHLINE_TEST_FILTER:-}
py_timeout=${BENCHLINE_TEST_TIMEOUT:-300}
unit_timeout=${BENCHLINE_UNIT_TIMEOUT:-120}

passed=0
failed=0
skipped=0
failures=()
child=
shared_pg=

tmproot=$(mktemp -d /tmp/benchline-test.XXXXXX) || exit 2
chmod 711 "$tmproot"   # the postgres user must reach clusters inside when we are root
run_id="$$-$(date +%s)"

export BENCHLINE_TEST_TMPDIR=$tmproot
export BENCHLINE_TEST_KEEP_TMP=1   # this script collects and removes $tmproot
export PYTHONPATH="$repo/tests/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export CMOCKA_MESSAGE_OUTPUT=STDOUT
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# ---------------------------------------------------------------------------

# matches PATH: true when no filter is set or PATH matches it.
matches() {
	[ -z "$filter" ] || grep -qE -- "$filter" <<<"$1"
}

fail() {
	failed=$((failed + 1))
	failures+=("$1")
}

# leftovers ID: pids of live processes whose environment carries our run id.
leftovers() {
	grep -lszxF "BENCHLINE_TEST_RUN_ID=$1" /proc/[0-9]*/environ |
		sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
}

# sanitizer_reports NAME DIR: a server or worker built with sanitizers
# reports into its log, not to the test: any report there fails the file.
sanitizer_reports() {
	local name=$1 dir=$2 logs log
	logs=$(grep -rlE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
	    --include='*.log' "$dir" 2>/dev/null) || return 0
	for log in $logs; do
		echo "run.sh: sanitizer report in $log:" >&2
		grep -m 1 -A 20 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
		    "$log" >&2
	done
	fail "$name (sanitizer report in a process log)"
}

# sweep NAME ID: stop clusters and kill processes a test file left behind.
sweep() {
	local name=$1 id=$2 pidfile dir pids pid
	while IFS= read -r pidfile; do
		dir=$(dirname "$(dirname "$pidfile")")
		[ "$dir" = "$shared_pg" ] && continue
		echo "run.sh: $name left the PostgreSQL cluster in $dir running; stopping it" >&2
		bash deploy/pg.sh stop "$dir" >/dev/null 2>&1
		fail "$name (left PostgreSQL running)"
	done < <(find "$tmproot" -path '*/data/postmaster.pid' 2>/dev/null)

	pids=$(leftovers "$id")
	[ -n "$pids" ] || return 0
	echo "run.sh: $name left processes behind:" >&2
	for pid in $pids; do
		echo "  $pid $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)" >&2
		kill -TERM "$pid" 2>/dev/null
	done
	sleep 2
	for pid in $pids; do
		kill -KILL "$pid" 2>/dev/null
	done
	fail "$name (left processes behind)"
}

# run_limited SECONDS OUT CMD...: runs CMD under timeout in the background so
# that a signal to this script is handled at once; output goes to OUT
# ("-" for ours). Returns CMD's status, 124 on timeout.
run_limited() {
	local secs=$1 out=$2 rc
	shift 2
	if [ "$out" = - ]; then
		timeout -k 15 "$secs" "$@" &
	else
		timeout -k 15 "$secs" "$@" >"$out" 2>&1 &
	fi
	child=$!
	wait "$child"
	rc=$?
	child=
	return $rc
}

# cleanup: stops what is still running, keeps the logs if anything failed,
# removes the temporary directory. Runs once.
cleaned=0
cleanup() {
	local dest
	[ "$cleaned" -eq 1 ] && return
	cleaned=1
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
	fi
	# The shared cluster, and any a file left behind (an interrupted run).
	find "$tmproot" -path '*/data/postmaster.pid' 2>/dev/null | while IFS= read -r f; do
		bash deploy/pg.sh stop "$(dirname "$(dirname "$f")")" >/dev/null 2>&1
	done
	if [ "$failed" -gt 0 ] && (cd "$tmproot" && find . -name '*.log' | grep -q .); then
		dest="tests/artifacts/$(date +%Y%m%d-%H%M%S)"
		mkdir -p "$dest"
		(cd "$tmproot" && find . -name '*.log' -print0 | xargs -0 cp --parents -t "$repo/$dest" 2>/dev/null)
		echo "logs of the failed run: $dest"
	fi
	rm -rf "$tmproot"
}

# summary: the last line, "N passed, N failed[, N skipped]".
summary() {
	local line
	if [ ${#failures[@]} -gt 0 ]; then
		echo
		echo "failed:"
		printf '  %s\n' "${failures[@]}"
	fi
	echo
	line="$passed passed, $failed failed"
	[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
	echo "$line"
}

on_signal() {
	trap - INT TERM HUP
	echo >&2
	echo "run.sh: interrupted" >&2
	fail "run interrupted"
	cleanup
	summary
	exit 130
}
trap on_signal INT TERM HUP
trap cleanup EXIT

# ---------------------------------------------------------------------------
# 1. Unit test binaries.

units=()
if [ -d "$BUILD/tests/unit" ]; then
	while IFS= read -r b; do
		units+=("$b")
	done < <(find "$BUILD/tests/unit" -type f -perm -u+x ! -name '*.[oda]' | sort)
fi

n=0
for bin in "${units[@]}"; do
	rel=${bin#"$BUILD"/}
	matches "$rel" || continue
	n=$((n + 1))
	echo "== $rel"
	out="$tmproot/unit-$n.out"
	BENCHLINE_TEST_RUN_ID="$run_id-u$n" run_limited "$unit_timeout" "$out" "$bin"
	rc=$?
	cat "$out"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s), listed below:.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9][0-9]*\) test(s), listed below:.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	passed=$((passed + p))
	skipped=$((skipped + s))
	if [ "$f" -gt 0 ]; then
		failed=$((failed + f))
		while IFS= read -r t; do
			failures+=("$rel: $t")
		done < <(sed -n 's/^\[  FAILED  \] \([^ ][^ ]*\)$/\1/p' "$out" | sort -u)
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "run.sh: $rel timed out after $unit_timeout s" >&2
		fail "$rel (timed out)"
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "run.sh: $rel exited with status $rc" >&2
		fail "$rel (exit status $rc)"
	elif [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$s" -eq 0 ]; then
		passed=$((passed + 1))   # not cmocka's output: count the binary
	fi
	sweep "$rel" "$run_id-u$n"
done

# ---------------------------------------------------------------------------
# 2. Python tests, one process per file.

pyfiles=()
for f in tests/integration/test_*.py tests/e2e/test_*.py tests/browser/test_*.py; do
	[ -f "$f" ] || continue
	matches "$f" && pyfiles+=("$f")
done

if [ ${#pyfiles[@]} -gt 0 ]; then
	port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	if url=$(bash deploy/pg.sh --fast start "$tmproot/shared-pg" "$port"); then
		shared_pg="$tmproot/shared-pg"
		export BENCHLINE_TEST_PG_URL=$url
	else
		echo "run.sh: cannot start the shared PostgreSQL cluster; each test file will try its own" >&2
	fi
fi

n=0
for f in "${pyfiles[@]}"; do
	n=$((n + 1))
	t=$(sed -n 's/^# benchline-test-timeout: *\([0-9][0-9]*\).*/\1/p' "$f" | head -n 1)
	t=${t:-$py_timeout}
	results="$tmproot/py-$n.results"
	args=(--results "$results")
	[ -n "${BENCHLINE_TEST_K:-}" ] && args+=(-k "$BENCHLINE_TEST_K")
	ftmp="$tmproot/$(basename "$f" .py)"   # its logs end up under this name
	mkdir -p "$ftmp" && chmod 711 "$ftmp"
	start=$(date +%s)
	BENCHLINE_TEST_TMPDIR=$ftmp BENCHLINE_TEST_RUN_ID="$run_id-p$n" run_limited "$t" - "$PYTHON" tests/lib/runner.py "${args[@]}" "$f"
	rc=$?
	read -r p fl s complete <"$results" 2>/dev/null || { p=0 fl=0 s=0 complete=0; }
	passed=$((passed + p))
	failed=$((failed + fl))
	skipped=$((skipped + s))
	if [ "$fl" -gt 0 ]; then
		while IFS= read -r t; do
			failures+=("$t")
		done < <(tail -n +2 "$results")
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "run.sh: $f timed out after $t s (ran $(($(date +%s) - start)) s)" >&2
		fail "$f (timed out)"
	elif [ "$complete" != 1 ] || { [ "$rc" -ne 0 ] && [ "$fl" -eq 0 ]; }; then
		echo "run.sh: $f exited with status $rc before finishing" >&2
		fail "$f (exit status $rc)"
	fi
	sweep "$f" "$run_id-p$n"
	sanitizer_reports "$f" "$ftmp"
done

# ---------------------------------------------------------------------------

cleanup
summary
[ "$failed" -eq 0 ]
