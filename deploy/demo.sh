#!/usr/bin/env bash
# demo.sh: feeds the tinyllm demo to a running benchline server, as a team
# pushing to GitHub would.  run-local.sh (make run) starts it in the
# background; its output goes to var/demo.log.
#
#   deploy/demo.sh BUILD VAR URL TARGET full|short
#
# Builds the demo history under VAR/demo/tinyllm (once), makes the project
# "tinyllm" with a webhook secret (VAR/webhook-secret), and sends three
# signed pushes to URL/hooks/github, each after the previous one's jobs and
# investigations are done:
#   1. baseline..speedup, plus two more runs of the speed-up (the baseline);
#   2. the 7 commits up to the drifting one, in ONE push: only its head is
#      benchmarked; confirmation and bisection find the slower commit (on
#      the counted instructions, which the wall-clock alerts then check on
#      their own pairs), the leaking one and the drifting one; the time from
#      the push to each mailed verdict is printed;
#   3. the fix, which resolves the leak and the drift.
# VAR/demo/pushed records what was sent, so a second run sends nothing again.
# "short" benchmarks only memory_leak and accuracy (for tests: no perf).
# Needs BENCHLINE_DATABASE_URL (for the CLI) in the environment.
set -euo pipefail

[ $# -eq 5 ] || { echo "usage: demo.sh BUILD VAR URL TARGET full|short" >&2; exit 2; }
build=$1 var=$2 url=$3 target=$4 mode=$5
cd "$(dirname "$0")/.."
repo=$PWD
hist=$var/demo/tinyllm
admin=$(cat "$var/admin-token")

say() { printf '%s demo: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

api() {	# api METHOD PATH [JSON]: prints the answer, fails on >= 400
	curl -fsS -X "$1" -H "Authorization: Bearer $admin" \
	    -H 'Content-Type: application/json' ${3:+--data "$3"} "$url$2"
}

mkdir -p "$var/demo"
if [ ! -s "$var/demo/roles" ]; then
	rm -rf "$hist"
	bash examples/tinyllm/make-history.sh "$hist" >"$var/demo/roles.tmp"
	mv "$var/demo/roles.tmp" "$var/demo/roles"
	say "built the tinyllm history in $hist"
fi
sha() { awk -v r="$1" '$1 == r { print $2 }' "$var/demo/roles"; }

if [ ! -s "$var/webhook-secret" ]; then
	(umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$var/webhook-secret")
fi
secret=$(cat "$var/webhook-secret")
if ! api GET /api/v1/projects | grep -q '"name": *"tinyllm"'; then
	"$build/benchline" project create tinyllm --repo "$hist" --secret "$secret" >/dev/null
	say "project tinyllm created"
fi
if [ "$mode" = short ]; then
	scenarios='["memory_leak", "accuracy"]'
else
	scenarios='["latency", "memory_leak", "accuracy", "instructions"]'
fi
# Demo-sized scenarios: a job takes seconds, so the whole story takes minutes.
params='{"latency": {"repetitions": 15, "warmup": 2, "prompt_tokens": [32],
  "max_tokens": [16]}, "memory_leak": {"requests": 60, "prompt_tokens": 16,
  "max_tokens": 4}, "instructions": {"requests": 2, "warmup": 1}}'
api PATCH /api/v1/projects/tinyllm "{\"webhook_secret\": \"$secret\",
  \"settings\": {\"subscribers\": [\"you@localhost\"], \"scenarios\": $scenarios,
  \"job_params\": $params}}" >/dev/null

push() {	# push BEFORE AFTER: one signed GitHub push of BEFORE..AFTER
	python3 deploy/forge-push.py --repo "$hist" --before "$1" --after "$2" \
	    --url "$url/hooks/github" --project tinyllm --secret "$secret"
}

busy() {	# busy: how many jobs wait or run, plus investigations under way
	local jobs inv
	jobs=$(api GET "/api/v1/jobs?project=tinyllm" | python3 -c '
import json, sys
print(sum(j["state"] in ("queued", "running") for j in json.load(sys.stdin)))')
	inv=$(api GET "/api/v1/investigations?project=tinyllm" | python3 -c '
import json, sys
print(sum(i["state"] in ("confirming", "bisecting", "following")
          for i in json.load(sys.stdin)))')
	echo $((jobs + inv))
}

settle() {	# settle WHAT: waits until nothing is queued, running or investigated
	local quiet=0
	while [ "$quiet" -lt 3 ]; do
		if [ "$(busy)" = 0 ]; then quiet=$((quiet + 1)); else quiet=0; fi
		sleep 2
	done
	say "$1: done"
}

step() { grep -qx "$1" "$var/demo/pushed" 2>/dev/null; }
touch "$var/demo/pushed"

if ! step baseline; then
	say "push 1: baseline..speedup"
	push 0 "$(sha speedup)"
	for _ in 1 2; do
		api POST /api/v1/jobs "{\"project\": \"tinyllm\", \"commit\": \"$(sha speedup)\",
		  \"target\": \"$target\", \"scenarios\": $scenarios, \"params\": $params,
		  \"reason\": \"baseline\"}" >/dev/null
	done
	settle "the baseline (speedup, 3 runs)"
	echo baseline >>"$var/demo/pushed"
fi
if ! step regression; then
	say "push 2: neutral1..drift, 7 commits, only the head benchmarked"
	pushed_at=$(date -u +%s)
	push "$(sha speedup)" "$(sha drift)"
	settle "push 2 with its confirmation and bisection"
	# From the push to each verdict mailed (mailed_at, in the database's clock).
	api GET "/api/v1/incidents?project=tinyllm" | python3 -c '
import datetime, json, sys
pushed = int(sys.argv[1])
for i in json.load(sys.stdin):
    if i.get("mailed_at"):
        t = datetime.datetime.fromisoformat(i["mailed_at"]).timestamp() - pushed
        print("  %s (%s): mailed %d min %02d s after the push" % (
            i["commit"][:12], ",".join(i["kinds"] or []), t // 60, t % 60))' "$pushed_at"
	echo regression >>"$var/demo/pushed"
fi
if ! step fix; then
	say "push 3: the fix"
	push "$(sha drift)" "$(sha fix)"
	settle "the fix"
	echo fix >>"$var/demo/pushed"
fi
say "incidents:"
api GET "/api/v1/incidents?project=tinyllm" | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    if i["state"] != "invalid":
        print("  %s %s: %s, mail %s" % (i["commit"][:12], (i["message"] or "").splitlines()[0][:50],
                                       ",".join(i["kinds"] or []), i["mail_state"]))'
say "finished; look at $url/#/incidents"
