#!/usr/bin/env bash
# run-local.sh: what `make run` does: a private PostgreSQL under var/ (unless
# DATABASE_URL is set), migrations, the server on http://127.0.0.1:8080, and
# everything stopped again on Ctrl-C.
#
# Environment: BUILD (build dir), DATABASE_URL, BENCHLINE_PORT (8080),
# BENCHLINE_PG_PORT (55432, the private cluster's port).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
BUILD=${BUILD:-build}
var=$repo/var
port=${BENCHLINE_PORT:-8080}
pg_port=${BENCHLINE_PG_PORT:-55432}
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

BENCHLINE_LISTEN_PORT=$port BENCHLINE_MIGRATIONS_DIR=$repo/sql \
BENCHLINE_WEB_ROOT=$repo/web BENCHLINE_PUBLIC_URL=http://127.0.0.1:$port \
    "$BUILD/benchline-server" >>"$var/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "${pids[0]}" 2>/dev/null; then
		say "the server did not start; the end of var/server.log:"
		tail -n 20 "$var/server.log"
		exit 1
	fi
	sleep 0.1
done

say "server on http://127.0.0.1:$port (log: var/server.log)"
say "health:  curl http://127.0.0.1:$port/healthz"
say "metrics: curl http://127.0.0.1:$port/metrics"
say "admin token (for writes) in var/admin-token"
say "press Ctrl-C to stop"
wait "${pids[0]}"
