#!/usr/bin/env bash
# install-worker.sh: turn this machine into a benchline worker, in one command.
#
#   sudo deploy/install-worker.sh --url https://benchline.example.org \
#       --token blw_7_... [--target gpu-a100] [--name a100-1] [--set key=value ...]
#
# Run it from a clone of benchline on the benchmark machine (Debian 12). The
# token comes from `benchline worker create --target T --name N` on the
# server's side; it binds the worker to its target. The script:
#
#   1. installs the worker's Debian packages (deploy/install-deps.sh --worker)
#   2. builds benchline-worker (make build/benchline-worker)
#   3. installs it as PREFIX/bin/benchline-worker
#   4. creates the system user "benchline" and its work dir /var/lib/benchline-worker
#   5. writes /etc/benchline/worker.conf (mode 640, group benchline), once
#      `benchline-worker -n` accepts it
#   6. installs deploy/systemd/benchline-worker.service and enables and
#      (re)starts it
#
# Running it again upgrades the binary and the unit. Without --url and
# --token it keeps the existing worker.conf; with them it rewrites it and
# keeps the old one as worker.conf.bak.
#
# Options:
#   --url URL        the server as this machine reaches it (http:// or https://)
#   --token TOKEN    this worker's token
#   --target NAME    the hardware target's name (a check against the jobs' target)
#   --name NAME      how this worker is called, for the people reading the
#                    config (the server knows it by its token); default: hostname
#   --set KEY=VALUE  another worker.conf setting (configs/worker.conf.example),
#                    e.g. --set engine_cpus=1; may be repeated
#   --prefix DIR     where the binary goes: DIR/bin (default /usr/local)
#   --root DIR       stage everything under DIR instead of /: no packages, no
#                    user, no ownership changes, no systemctl; for images and
#                    tests, and runs without root
#   --no-deps        do not install packages
#   --dry-run        print the steps and change nothing
#
# Environment: BUILD (build directory, default build).

set -euo pipefail

prog=install-worker.sh
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case "$build" in
/*) ;;
*) build="$repo/$build" ;;
esac

url= token= target= name= prefix=/usr/local root= no_deps=0 dry_run=0
sets=()
workdir=/var/lib/benchline-worker
confdir=/etc/benchline
unitdir=/etc/systemd/system
user=benchline

die() {
	echo "$prog: $*" >&2
	exit 1
}
usage() {
	sed -n '2,40s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
need_arg() {
	[ $# -ge 2 ] && [ -n "$2" ] || die "option '$1' needs a value"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--url) need_arg "$@"; url=$2; shift 2 ;;
	--token) need_arg "$@"; token=$2; shift 2 ;;
	--target) need_arg "$@"; target=$2; shift 2 ;;
	--name) need_arg "$@"; name=$2; shift 2 ;;
	--set) need_arg "$@"; sets+=("$2"); shift 2 ;;
	--prefix) need_arg "$@"; prefix=$2; shift 2 ;;
	--root) need_arg "$@"; root=$2; shift 2 ;;
	--no-deps) no_deps=1; shift ;;
	--dry-run) dry_run=1; shift ;;
	-h | --help) usage ;;
	*) echo "$prog: unknown argument '$1'" >&2; usage ;;
	esac
done

# --- checks before anything changes -------------------------------------------

case "$prefix" in
/*) prefix=${prefix%/} ;;
*) die "--prefix must be an absolute path, got '$prefix'" ;;
esac
if [ -n "$root" ]; then
	[ "$dry_run" -eq 1 ] || mkdir -p "$root" || die "cannot create '$root'"
	case "$root" in
	/*) ;;
	*) root="$PWD/$root" ;;
	esac
	root=${root%/}
	[ -n "$root" ] || die "--root / is the default; leave it out"
elif [ "$(id -u)" -ne 0 ] && [ "$dry_run" -eq 0 ]; then
	die "run as root (sudo $0 ...), or stage into a directory with --root DIR"
fi

if [ -n "$url$token" ]; then
	[ -n "$url" ] && [ -n "$token" ] || die "--url and --token go together"
	case "$url" in
	http://* | https://*) ;;
	*) die "--url must start with http:// or https://, got '$url'" ;;
	esac
	# One line of key = value: no blanks, no comment sign.
	[[ "$token" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--token has characters a token never has"
	[[ "$url" =~ ^[^[:space:]#]+$ ]] || die "--url must not contain blanks or '#'"
fi
[ -z "$target" ] || [[ "$target" =~ ^[A-Za-z][A-Za-z0-9._-]{0,63}$ ]] ||
	die "--target '$target' is not a target name"
name=${name:-$(hostname)}
[[ "$name" =~ ^[^[:cntrl:]]{1,100}$ ]] || die "--name must be one line"
for kv in "${sets[@]}"; do
	[[ "$kv" =~ ^[a-z_]+=[^[:cntrl:]#]*$ ]] || die "--set wants key=value, got '$kv'"
	case "${kv%%=*}" in
	server_url | token | target | work_dir) die "--set ${kv%%=*}: use its own option" ;;
	esac
done

conf=$root$confdir/worker.conf
bin=$root$prefix/bin/benchline-worker
unit=$root$unitdir/benchline-worker.service
if [ -z "$url" ] && [ ! -f "$conf" ] && [ "$dry_run" -eq 0 ]; then
	die "no $conf yet: give --url and --token"
fi

# --- helpers ------------------------------------------------------------------

step_no=0
step() {
	step_no=$((step_no + 1))
	echo "$prog: [$step_no] $*"
}
# run CMD...: runs it, or with --dry-run prints it.
run() {
	if [ "$dry_run" -eq 1 ]; then
		printf '    '
		printf '%q ' "$@"
		printf '\n'
	else
		"$@"
	fi
}
note() {
	echo "    $*"
}

# --- 1. packages --------------------------------------------------------------

step "packages for building and running the worker"
if [ -n "$root" ]; then
	note "skipped: --root stages files; packages would go to this machine, not '$root'"
elif [ "$no_deps" -eq 1 ]; then
	note "skipped (--no-deps)"
else
	run bash "$repo/deploy/install-deps.sh" --worker
fi

# --- 2. build -----------------------------------------------------------------

step "build benchline-worker"
run make -C "$repo" -j"$(nproc 2>/dev/null || echo 2)" O="$build" "$build/benchline-worker"

# --- 3. install the binary ----------------------------------------------------

step "install $prefix/bin/benchline-worker"
run install -D -m 755 "$build/benchline-worker" "$bin"

# --- 4. user and work dir -----------------------------------------------------

step "user '$user' and work dir $workdir"
if [ -n "$root" ]; then
	note "no user is created under --root; the work dir is made in '$root'"
	run install -d -m 750 "$root$workdir"
else
	if id -u "$user" >/dev/null 2>&1; then
		note "user '$user' exists"
	else
		run useradd --system --user-group --home-dir "$workdir" \
		    --shell /usr/sbin/nologin --comment "benchline worker" "$user"
	fi
	run install -d -o "$user" -g "$user" -m 750 "$workdir"
fi

# --- 5. configuration ---------------------------------------------------------

write_conf() {
	local tmp=$1 kv
	{
		echo "# benchline-worker configuration for worker '$name', written by"
		echo "# deploy/install-worker.sh on $(date -u +%Y-%m-%d). Every key is"
		echo "# explained in configs/worker.conf.example; check with"
		echo "#   benchline-worker -n -c $confdir/worker.conf"
		echo "# The token is a secret: this file is readable by root and group $user only."
		echo "server_url = $url"
		echo "token = $token"
		[ -n "$target" ] && echo "target = $target"
		echo "work_dir = $workdir"
		for kv in "${sets[@]}"; do
			echo "${kv%%=*} = ${kv#*=}"
		done
	} >"$tmp"
}

# check_conf FILE: benchline-worker -n on FILE, with no BENCHLINE_WORKER_*
# from this shell to mask a bad setting; prints its verdict.
check_conf() {
	local cmd=(env) k out
	while IFS='=' read -r k _; do
		cmd+=(-u "$k")
	done < <(env | grep '^BENCHLINE_WORKER_' || true)
	cmd+=("$bin" -n -c "$1")
	if [ "$dry_run" -eq 1 ]; then
		run "${cmd[@]}"
		return 0
	fi
	if ! out=$("${cmd[@]}" 2>&1); then
		echo "$out" >&2
		return 1
	fi
	grep -v '^token = ' <<<"$out" | sed 's/^/    /'
}

step "configuration $confdir/worker.conf, checked with benchline-worker -n"
if [ -z "$url" ]; then
	note "keeping the existing $conf"
	check_conf "$conf" || die "benchline-worker refuses $conf"
elif [ "$dry_run" -eq 1 ]; then
	note "would write $conf: server_url = $url, token = (hidden)${target:+, target = $target}"
	check_conf "$conf"
else
	# Written and checked beside the old file, which stays until the new one passes.
	install -d -m 755 "$root$confdir"
	tmp=$(mktemp "$root$confdir/.worker.conf.XXXXXX")
	write_conf "$tmp"
	chmod 640 "$tmp"
	[ -n "$root" ] || chgrp "$user" "$tmp"
	if ! check_conf "$tmp"; then
		rm -f "$tmp"
		die "benchline-worker refuses the configuration; $conf is unchanged"
	fi
	[ ! -f "$conf" ] || cp -p "$conf" "$conf.bak"
	mv "$tmp" "$conf"
fi

# --- 6. systemd ---------------------------------------------------------------

step "systemd unit $unitdir/benchline-worker.service"
src_unit=$repo/deploy/systemd/benchline-worker.service
if [ "$dry_run" -eq 1 ]; then
	note "would write $unit from deploy/systemd/benchline-worker.service (ExecStart under $prefix/bin)"
else
	install -d -m 755 "$root$unitdir"
	sed "s|^ExecStart=/usr/local/bin/benchline-worker |ExecStart=$prefix/bin/benchline-worker |" \
	    "$src_unit" >"$unit.tmp"
	grep -q "^ExecStart=$prefix/bin/benchline-worker " "$unit.tmp" ||
		die "cannot set ExecStart in $unit"
	chmod 644 "$unit.tmp"
	mv "$unit.tmp" "$unit"
fi

step "enable and start benchline-worker"
if [ -n "$root" ]; then
	note "skipped under --root: on the machine itself run"
	note "  systemctl daemon-reload && systemctl enable --now benchline-worker"
elif ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
	note "systemd is not running here; start the worker by hand:"
	note "  runuser -u $user -- $prefix/bin/benchline-worker -c $confdir/worker.conf"
else
	run systemctl daemon-reload
	run systemctl enable benchline-worker.service
	run systemctl restart benchline-worker.service
	[ "$dry_run" -eq 1 ] || note "running: journalctl -u benchline-worker -f shows its log"
fi

if [ "$dry_run" -eq 1 ]; then
	echo "$prog: dry run: nothing was changed"
else
	echo "$prog: done"
fi
