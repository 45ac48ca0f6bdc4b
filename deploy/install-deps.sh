#!/usr/bin/env bash
# install-deps.sh: install the Debian packages benchline needs that are missing.
#
#   deploy/install-deps.sh [--browser | --worker] [--dry-run]
#
# Checks with dpkg-query first and does nothing (no apt-get update) when every
# package is there. A package counts as present when it is installed or when
# an installed package provides it (nodesource's nodejs provides npm,
# postgresql-client-15 provides postgresql-client): installing the real one
# would fight the provider.
#
#   --browser   also the dashboard test group: chromium, chromium-driver,
#               nodejs, npm (same as BENCHLINE_INSTALL_BROWSER=1)
#   --worker    only what a benchmark machine needs to build and run
#               benchline-worker (and the engines it builds): no PostgreSQL,
#               no test tools; deploy/install-worker.sh uses it
#   --dry-run   print what would be installed and exit 1 if anything is missing
#
# Runs apt-get as root, or through `sudo` otherwise (non-interactively when
# there is no terminal, as in CI), with DEBIAN_FRONTEND=noninteractive and
# --no-install-recommends.

set -euo pipefail

prog=install-deps.sh

base_pkgs=(
	build-essential pkg-config git
	libmicrohttpd-dev libpq-dev libjansson-dev libgit2-dev
	libcurl4-openssl-dev libcmocka-dev
	postgresql postgresql-client
	python3 python3-aiosmtpd
	procps valgrind curl
	docker-compose
)
# docker-compose (v1, the only one Debian 12 packages) is here so that the
# tests can validate docker-compose.yml with `docker-compose config`, which
# needs no engine; --no-install-recommends keeps docker.io out.
worker_pkgs=(
	build-essential pkg-config git ca-certificates
	libgit2-dev libcurl4-openssl-dev libjansson-dev
	procps curl valgrind
)
browser_pkgs=(chromium chromium-driver nodejs npm)

die() {
	echo "$prog: $*" >&2
	exit 1
}

browser=0
browser_flag=0
worker=0
dry_run=0
[ "${BENCHLINE_INSTALL_BROWSER:-0}" = 1 ] && browser=1
for a in "$@"; do
	case "$a" in
	--browser) browser=1 browser_flag=1 ;;
	--worker) worker=1 ;;
	--dry-run) dry_run=1 ;;
	-h | --help)
		sed -n '2,23s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown option '$a' (usage: $prog [--browser | --worker] [--dry-run])" ;;
	esac
done

if [ "$worker" -eq 1 ]; then
	[ "$browser_flag" -eq 0 ] || die "--worker and --browser do not go together"
	wanted=("${worker_pkgs[@]}")
else
	wanted=("${base_pkgs[@]}")
	[ "$browser" -eq 1 ] && wanted+=("${browser_pkgs[@]}")
fi

command -v dpkg-query >/dev/null 2>&1 ||
	die "dpkg-query not found: this script supports Debian (12) and its derivatives only"

# installed_names: every installed package name, and every name an installed
# package provides (versions and architecture qualifiers dropped).
installed_names() {
	dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' 2>/dev/null |
		awk '$1 ~ /^.i/ {
			print $2
			for (i = 3; i <= NF; i++) {
				name = $i
				sub(/,$/, "", name)
				if (name ~ /^[a-z0-9][a-z0-9.+:-]*$/) print name
			}
		}' | sed 's/:.*//' | sort -u
}

# missing_of NAME...: the names that are not present.
missing_of() {
	local present p
	present=$(installed_names)
	for p in "$@"; do
		grep -qxF "$p" <<<"$present" || echo "$p"
	done
}

mapfile -t missing < <(missing_of "${wanted[@]}")

if [ ${#missing[@]} -eq 0 ]; then
	echo "$prog: all ${#wanted[@]} packages are installed"
	exit 0
fi

if [ "$dry_run" -eq 1 ]; then
	echo "$prog: would install ${missing[*]}"
	exit 1
fi
echo "$prog: installing ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
	# No terminal to ask for a password on (CI): fail instead of hanging.
	[ -t 0 ] || as_root=(sudo -n)
else
	die "missing packages (${missing[*]}) and not root, and sudo is not installed; run as root: apt-get install ${missing[*]}"
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found"

apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
	-q -y -o Dpkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold)

update_log=$(mktemp)
if ! "${apt[@]}" update </dev/null >"$update_log" 2>&1; then
	cat "$update_log" >&2
	rm -f "$update_log"
	die "apt-get update failed (is a Debian mirror reachable? are you root or allowed to sudo?)"
fi
rm -f "$update_log"

"${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null ||
	die "apt-get install failed for: ${missing[*]}"

# Verify: apt-get can succeed and still leave a package out (held, renamed).
mapfile -t still < <(missing_of "${missing[@]}")
[ ${#still[@]} -eq 0 ] || die "still missing after apt-get install: ${still[*]}"
echo "$prog: done"
