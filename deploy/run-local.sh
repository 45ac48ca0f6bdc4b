#!/usr/bin/env bash
# run-local.sh: what `make run` does, the whole loop on one machine:
#   - a private PostgreSQL under var/pg (unless DATABASE_URL is set), migrated;
#   - an SMTP catcher (Debian's aiosmtpd) storing every mail in var/mail/new/;
#   - the server on http://127.0.0.1:8080 with the dashboard;
#   - one local worker, registered as the hardware target named after this
#     machine;
#   - the tinyllm demo: its git history built under var/demo, the project
#     "tinyllm" pointed at it, and its pushes sent to the server's own
#     /hooks/github as GitHub would (signed): first the speed-up commit
#     (benchmarked 3 times: the baseline), then the 7 commits up to the
#     drifting one in one push (only its head is benchmarked: confirmation
#     and bisection find the slower, the leaking and the drifting commit),
#     then the fix.
# Running it again reuses all of it (var/demo/pushed remembers the pushes).
# Ctrl-C stops every process it started.
#
# Environment: BUILD (build dir), DATABASE_URL, BENCHLINE_PORT (8080),
# BENCHLINE_PG_PORT (55432), BENCHLINE_SMTP_PORT (2525),
# BENCHLINE_DEMO (full; "short": only the leak and accuracy scenarios, for
# tests; "none": no demo), BENCHLINE_VAR (var directory, default var/).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$repo/$BUILD ;; esac
var=${BENCHLINE_VAR:-$repo/var}
port=${BENCHLINE_PORT:-8080}
pg_port=${BENCHLINE_PG_PORT:-55432}
smtp_port=${BENCHLINE_SMTP_PORT:-2525}
demo=${BENCHLINE_DEMO:-full}
url=http://127.0.0.1:$port
pids=()
own_pg=0

say() { printf 'benchline: %s\n' "$*"; }

cleanup() {
	trap - INT TERM EXIT
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$own_pg" = 1 ]; then
		bash deploy/pg.sh stop "$var/pg" >/dev/null 2>&1 || true
	fi
	say "stopped"
}
trap cleanup INT TERM EXIT

mkdir -p "$var"
chmod 755 "$var"
if [ -n "${DATABASE_URL:-}" ]; then
	db=$DATABASE_URL
	say "using DATABASE_URL"
else
	db=$(bash deploy/pg.sh start "$var/pg" "$pg_port")
	own_pg=1
	say "PostgreSQL in var/pg on 127.0.0.1:$pg_port"
fi
export BENCHLINE_DATABASE_URL=$db

"$BUILD/benchline" migrate >/dev/null
if [ ! -s "$var/admin-token" ]; then
	(umask 077 && "$BUILD/benchline" admin-token create --name make-run \
	    2>/dev/null >"$var/admin-token")
fi

# The demo's hardware target is this machine, with a worker token kept in var/.
target=$(hostname -s 2>/dev/null | tr -c 'A-Za-z0-9._\n-' '-' | cut -c1-60)
case "$target" in [A-Za-z]*) ;; *) target=local-$target ;; esac
"$BUILD/benchline" list targets --json 2>/dev/null | grep -q "\"$target\"" ||
	"$BUILD/benchline" target create "$target" --arch "$(uname -m)" \
	    --cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
	    >/dev/null
if [ ! -s "$var/worker-token" ]; then
	(umask 077 && "$BUILD/benchline" worker create --target "$target" \
	    --name "$target-local" 2>/dev/null >"$var/worker-token")
fi

# The SMTP catcher: every alert mail lands in var/mail/new/, one file each.
mkdir -p "$var/mail/new" "$var/mail/cur" "$var/mail/tmp"
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" \
    -c aiosmtpd.handlers.Mailbox "$var/mail" >>"$var/smtp.log" 2>&1 &
pids+=($!)

BENCHLINE_LISTEN_PORT=$port BENCHLINE_MIGRATIONS_DIR=$repo/sql \
BENCHLINE_WEB_ROOT=$repo/web BENCHLINE_PUBLIC_URL=$url \
BENCHLINE_SMTP_URL=smtp://127.0.0.1:$smtp_port \
BENCHLINE_MAIL_DELAY_S=${BENCHLINE_MAIL_DELAY_S:-5} \
    "$BUILD/benchline-server" >>"$var/server.log" 2>&1 &
server_pid=$!
pids+=($server_pid)
for _ in $(seq 1 100); do
	if curl -fsS "$url/healthz" >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "$server_pid" 2>/dev/null; then
		say "the server did not start; the end of var/server.log:"
		tail -n 20 "$var/server.log"
		exit 1
	fi
	sleep 0.1
done

mkdir -p "$var/worker"
BENCHLINE_WORKER_SERVER_URL=$url BENCHLINE_WORKER_TOKEN=$(cat "$var/worker-token") \
BENCHLINE_WORKER_WORK_DIR=$var/worker BENCHLINE_WORKER_TARGET=$target \
    "$BUILD/benchline-worker" >>"$var/worker.log" 2>&1 &
pids+=($!)

if [ "$demo" != none ]; then
	bash deploy/demo.sh "$BUILD" "$var" "$url" "$target" "$demo" \
	    >>"$var/demo.log" 2>&1 &
	pids+=($!)
fi

say "PostgreSQL: ${DATABASE_URL:-var/pg on 127.0.0.1:$pg_port}"
say "dashboard:  $url/   (server log: var/server.log)"
say "worker:     target '$target' (log: var/worker.log)"
say "e-mail:     every alert mail is a file in var/mail/new/"
if [ "$demo" != none ]; then
	say "demo:       the tinyllm history goes in by webhook (progress: var/demo.log)."
	say "            Within a few minutes the dashboard shows the trends, and"
	say "            Incidents shows the slower commit (found by bisection), the"
	say "            leak and the accuracy drift, each mailed once."
fi
say "admin token (for writes and acknowledging) in var/admin-token"
say "press Ctrl-C to stop"
wait "$server_pid"
