#!/usr/bin/env bash
# Builds and runs the collector overhead benchmark.
#   bench/collector/run.sh [-d seconds] [-r runs]
# BUILD names the build directory (default: build).
set -euo pipefail

cd "$(dirname "$0")/../.."
out="${BUILD:-build}/bench/collector"
mkdir -p "$out"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g \
    -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
    -Wformat=2 -Werror -Icommon -Icollector \
    bench/collector/overhead.c collector/*.c \
    common/log.c common/xmalloc.c common/clock.c \
    -lpthread -lm -o "$out/overhead"
exec "$out/overhead" "$@"
