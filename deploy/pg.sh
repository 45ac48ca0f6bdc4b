#!/usr/bin/env bash
# pg.sh: a private PostgreSQL cluster for `make run` and the tests.
#
#   deploy/pg.sh [--fast] start DIR PORT   create (once) and start a cluster in DIR,
#                                          print its URL on stdout
#   deploy/pg.sh stop DIR                  stop it (does nothing if it is not running)
#   deploy/pg.sh url DIR                   print the URL of the cluster in DIR
#   deploy/pg.sh status DIR                exit 0 if the cluster in DIR runs, 3 if not
#
# This is a PRIVATE DEVELOPMENT/TEST cluster, never a production database:
# it listens on 127.0.0.1 only, and every connection from the loopback
# address (and the unix socket inside DIR) is trusted without a password.
# Its superuser is the role "benchline", which owns the database "benchline".
#
# Layout of DIR:
#   DIR/data/          the data directory (initdb), with DIR/data/benchline.conf
#                      holding our settings (port, socket, logging)
#   DIR/postgres.log   the server log
#   DIR/.s.PGSQL.PORT  the unix socket
#
# The binaries are those of the newest /usr/lib/postgresql/*/bin (Debian).
# initdb and postgres refuse to run as root, so when run as root DIR is
# owned by the "postgres" system user and the binaries run through
# `runuser -u postgres --`; every parent of DIR must then be searchable by
# that user (/tmp is; /root is not).
#
# --fast (tests only) turns synchronous_commit off and skips initdb's fsync:
# a crash may lose the last commits, which does not matter for a throwaway
# cluster. It is applied at every start, so a start without it turns it on again.

set -euo pipefail

prog=pg.sh
role=benchline
dbname=benchline

die() {
	echo "$prog: $*" >&2
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: $prog [--fast] start DIR PORT
       $prog stop DIR
       $prog url DIR
       $prog status DIR
EOF
	exit 2
}

fast=0
args=()
for a in "$@"; do
	case "$a" in
	--fast) fast=1 ;;
	-h | --help) usage ;;
	-*) echo "$prog: unknown option '$a'" >&2; usage ;;
	*) args+=("$a") ;;
	esac
done
[ ${#args[@]} -ge 2 ] || usage
cmd=${args[0]}
dir=${args[1]}

# Make DIR absolute: the binaries run with / as their working directory.
case "$dir" in
/*) ;;
*) dir="$PWD/$dir" ;;
esac
dir=${dir%/}
data="$dir/data"
log="$dir/postgres.log"
conf="$data/benchline.conf"

# find_bindir: the newest Debian PostgreSQL bin directory.
find_bindir() {
	local d best=""
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
		[ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best=$d
	done
	[ -n "$best" ] || die "no PostgreSQL server found in /usr/lib/postgresql/*/bin (run deploy/install-deps.sh)"
	echo "$best"
}

# as_owner CMD...: run CMD as the cluster's owner (postgres when we are root).
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# conf_port: the port recorded in DIR/data/benchline.conf.
conf_port() {
	[ -f "$conf" ] || die "no benchline cluster in '$dir'"
	sed -n "s/^port = \([0-9]*\)$/\1/p" "$conf" | tail -n 1
}

url_for_port() {
	echo "postgresql://$role@127.0.0.1:$1/$dbname"
}

is_running() {
	[ -f "$data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

log_tail() {
	if [ -f "$log" ]; then
		echo "--- last lines of $log ---" >&2
		tail -n 20 "$log" >&2
	fi
}

# prepare_dir: create DIR, owned by the user the cluster runs as.
prepare_dir() {
	if [ "$(id -u)" -eq 0 ]; then
		id -u postgres >/dev/null 2>&1 ||
			die "running as root needs the 'postgres' system user (install the postgresql package)"
		if [ ! -d "$dir" ]; then
			mkdir -p "$dir"
			chown postgres:postgres "$dir"
		elif [ -z "$(ls -A "$dir")" ]; then
			chown postgres:postgres "$dir"
		elif [ "$(stat -c %U "$dir")" != postgres ]; then
			die "'$dir' is not empty and not owned by 'postgres'; give an empty or new directory"
		fi
		chmod 700 "$dir"
		runuser -u postgres -- test -w "$dir" ||
			die "user 'postgres' cannot reach '$dir': every parent directory must be searchable (o+x); use a directory under /tmp"
	else
		mkdir -p "$dir"
		chmod 700 "$dir"
	fi
}

do_start() {
	local port=$1 running_port
	case "$port" in
	'' | *[!0-9]*) die "bad port '$port'" ;;
	esac
	if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
		die "bad port '$port'"
	fi
	# A unix socket path is limited to 107 bytes.
	[ $((${#dir} + 16)) -le 107 ] || die "'$dir' is too long for a unix socket path; use a shorter directory"

	if [ -f "$data/PG_VERSION" ]; then
		[ -f "$conf" ] || die "'$data' is a PostgreSQL cluster not made by $prog"
		if is_running; then
			running_port=$(conf_port)
			[ "$running_port" = "$port" ] ||
				die "the cluster in '$dir' already runs on port $running_port, not $port"
			ensure_database "$port"
			url_for_port "$port"
			return
		fi
	else
		[ ! -e "$data" ] || [ -z "$(ls -A "$data" 2>/dev/null)" ] ||
			die "'$data' exists and is not a PostgreSQL cluster"
		prepare_dir
		local initdb_opts=(-D "$data" -U "$role" -E UTF8 --locale=C
			--auth-local=trust --auth-host=trust)
		[ "$fast" -eq 1 ] && initdb_opts+=(--no-sync)
		as_owner "$bindir/initdb" "${initdb_opts[@]}" >"$dir/initdb.log" 2>&1 || {
			cat "$dir/initdb.log" >&2
			die "initdb failed in '$data'"
		}
		echo "include 'benchline.conf'" | as_owner tee -a "$data/postgresql.conf" >/dev/null
		as_owner tee "$data/pg_hba.conf" >/dev/null <<EOF
# benchline private development/test cluster (deploy/pg.sh).
# Trusts every connection from this machine's loopback address and the
# unix socket in $dir. Never expose this cluster.
# TYPE  DATABASE  USER       ADDRESS        METHOD
local   all       all                       trust
host    all       $role  127.0.0.1/32   trust
EOF
	fi

	# Our settings are rewritten at every start: the port may change.
	as_owner tee "$conf" >/dev/null <<EOF
# Written by deploy/pg.sh at every start: a private dev/test cluster.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 128MB
fsync = on
synchronous_commit = $([ "$fast" -eq 1 ] && echo off || echo on)
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF

	if ! as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -s start >/dev/null; then
		log_tail
		die "cannot start PostgreSQL in '$dir' on 127.0.0.1:$port"
	fi
	ensure_database "$port"
	url_for_port "$port"
}

# ensure_database PORT: create the database "benchline" when it is missing.
ensure_database() {
	local port=$1 psql=("$bindir/psql" -X -q -A -t -h 127.0.0.1 -p "$1" -U "$role" -d postgres)
	local have
	have=$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$dbname'") ||
		die "cannot connect to the cluster in '$dir' on port $port"
	if [ "$have" != 1 ]; then
		"${psql[@]}" -c "CREATE DATABASE $dbname OWNER $role" >/dev/null ||
			die "cannot create database '$dbname'"
	fi
}

do_stop() {
	if [ ! -f "$data/PG_VERSION" ]; then
		echo "$prog: no cluster in '$dir'" >&2
		return 0
	fi
	if ! is_running; then
		return 0
	fi
	if ! as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 -s stop; then
		echo "$prog: fast shutdown failed, trying immediate" >&2
		as_owner "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 -s stop ||
			die "cannot stop the cluster in '$dir'"
	fi
}

bindir=$(find_bindir)

case "$cmd" in
start)
	[ ${#args[@]} -eq 3 ] || usage
	do_start "${args[2]}"
	;;
stop)
	[ ${#args[@]} -eq 2 ] || usage
	do_stop
	;;
url)
	[ ${#args[@]} -eq 2 ] || usage
	url_for_port "$(conf_port)"
	;;
status)
	[ ${#args[@]} -eq 2 ] || usage
	if [ -f "$data/PG_VERSION" ] && is_running; then
		echo "running on 127.0.0.1:$(conf_port)"
	else
		echo "not running"
		exit 3
	fi
	;;
*)
	usage
	;;
esac
