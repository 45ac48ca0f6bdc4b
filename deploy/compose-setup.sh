#!/bin/sh
# compose-setup.sh: the one-shot "setup" service of docker-compose.yml.
# Migrates the database and, the first time only, creates the target
# "compose-worker" with a worker token and an admin token, kept in
# /var/lib/benchline/secrets (a volume the worker mounts read-only).
# Running it again changes nothing.  Tokens are written, never printed.
set -eu

secrets=/var/lib/benchline/secrets
target=${BENCHLINE_COMPOSE_TARGET:-compose-worker}
umask 077

benchline migrate >/dev/null

if [ ! -s "$secrets/worker-token" ]; then
	# The target may exist from an earlier run whose token got lost.
	if ! benchline list targets --json | grep -q "\"name\": *\"$target\""; then
		benchline target create "$target" --arch "$(uname -m)" >/dev/null
	fi
	benchline worker create --target "$target" --name "$target-1" \
	    2>/dev/null >"$secrets/worker-token.new"
	mv "$secrets/worker-token.new" "$secrets/worker-token"
	echo "compose-setup: worker token for target '$target' in $secrets/worker-token"
fi

if [ ! -s "$secrets/admin-token" ]; then
	benchline admin-token create --name compose 2>/dev/null >"$secrets/admin-token.new"
	mv "$secrets/admin-token.new" "$secrets/admin-token"
	echo "compose-setup: admin token in $secrets/admin-token"
fi
echo "compose-setup: done"
