#!/usr/bin/env bash
# make-history.sh: builds the demo git history of tinyllm that benchline's
# demo benchmarks, one commit per role, with reproducible commit ids.
#
#   usage: make-history.sh DIR
#
# DIR must not exist or be empty. On success the script prints one line
# "<role> <sha>" per commit on stdout, in order: baseline, speedup,
# neutral1, neutral2, slow, neutral3, neutral4, leak, drift, fix.
# Needs only bash and git.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
hist=$here/history

# The engine sources the baseline commit holds.
files=(Makefile benchline.json .gitignore tinyllm.h main.c model.c matmul.c
    quant.c serve.c request.c accuracy.c sample.c token.c rng.c)

die() {
	echo "make-history.sh: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: make-history.sh DIR"
dir=$1
if [ -e "$dir" ]; then
	[ -d "$dir" ] || die "'$dir' exists and is not a directory"
	[ -z "$(ls -A "$dir")" ] || die "'$dir' exists and is not empty"
fi
command -v git >/dev/null || die "git not found"
mkdir -p "$dir"

# Fixed identities and dates make the commit ids the same on every run;
# user and system git configuration must not leak in.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Tia Nylm" GIT_AUTHOR_EMAIL="tia@tinyllm.example"
export GIT_COMMITTER_NAME="Tia Nylm" GIT_COMMITTER_EMAIL="tia@tinyllm.example"
export TZ=UTC LC_ALL=C
epoch=1709542800	# 2024-03-04 09:00:00 UTC
n=0
roles=()

g() {
	git -C "$dir" -c core.autocrlf=false -c core.fileMode=true \
	    -c commit.gpgSign=false -c core.hooksPath=/dev/null "$@"
}

# commit ROLE MESSAGE: commits the whole tree, a day after the last one.
commit() {
	local role=$1 msg=$2 when
	when="$((epoch + n * 86400)) +0000"
	n=$((n + 1))
	g add -A
	GIT_AUTHOR_DATE=$when GIT_COMMITTER_DATE=$when g commit -q -m "$msg"
	roles+=("$role $(g rev-parse HEAD)")
}

# change PATCH: applies one of the history patches to the tree.
change() {
	g apply --whitespace=nowarn "$hist/$1" || die "cannot apply '$1'"
}

g init -q
g symbolic-ref HEAD refs/heads/main
for f in "${files[@]}"; do
	cp "$here/$f" "$dir/$f"
	chmod 644 "$dir/$f"
done
cp "$hist/README.md" "$dir/README.md"
chmod 644 "$dir/README.md"

commit baseline "tinyllm: a small llama-style inference engine

Byte-level tokenizer, RMSNorm, rotary embeddings, multi-head attention
with a KV cache, SwiGLU feed-forward, fp32 and Q8_0 weights generated
from a seed, and the jsonl protocol benchline speaks."

change 02-speedup.patch
commit speedup "matmul: Q8_0 products on 16 rows at once

Store each Q8_0 matrix in groups of 16 rows with their blocks
interleaved, so that weight j of the 16 rows is one vector load, and
compute the 16 rows side by side. The rows' sums do not depend on one
another, so the compiler vectorizes them, which it may not do for the
float sum along one row; attention adds up the weighted values four
elements at a time for the same reason. Every sum keeps its order of
additions, so the outputs are the same, bit for bit, and the accuracy
report does not move; a request costs 3.5 times fewer instructions."

cat >>"$dir/README.md" <<'TXT'

## Flags

`--dim`, `--layers`, `--heads`, `--hidden` and `--seq-len` set the shape
of the model, `--seed` the weights, and `--quant none|q8_0` the path
(default q8_0). The default model has about 14 million parameters.
TXT
commit neutral1 "docs: describe the command-line flags"

cat >>"$dir/README.md" <<'TXT'

## Protocol

tinyllm prints one `{"ready":true,...}` line once the model is built,
then answers each JSON request line on stdin with one JSON line on
stdout. `{"id":1,"accuracy":true}` compares the Q8_0 path with fp32.
TXT
commit neutral2 "docs: outline the jsonl protocol"

change 03-slow.patch
commit slow "attention: score the whole window with a fixed trip count

Loop over every position of the context window and mask the ones after
the current token instead of stopping at it, so the loops have the same
bounds for every token."

cat >>"$dir/README.md" <<'TXT'

## Weights

The weights are not trained: they are drawn from a splitmix64 stream per
tensor, scaled by 1/sqrt(fan-in) so activations keep unit scale. The
same seed always gives the same model.
TXT
commit neutral3 "docs: explain how the weights are generated"

cat >>"$dir/README.md" <<'TXT'

## Limitations

tinyllm is single-threaded and runs the prompt one token at a time, like
decoding; there is no batched prefill yet.
TXT
commit neutral4 "docs: list the current limitations"

change 04-leak.patch
commit leak "serve: start every request with an empty key cache

A request must never score keys left over by the previous one, so give
the state a freshly zeroed key cache before the prompt is run."

change 05-drift.patch
commit drift "quant: round Q8_0 values without calling roundf

roundf is a libm call at -O2, made for every weight when the model is
quantized at start-up. Round half away from zero with a truncation and
an adjustment instead, saturating at +-127."

change 06-fix.patch
commit fix "fix the attention bounds, the key cache leak and Q8_0 rounding

- attention: stop at the current position again. Scoring the whole
  window cost every token about 13% more instructions and up to 20%
  more time.
- serve: reuse the state's key cache. The key cache allocated for every
  request was never freed, so the resident size grew with each request;
  stale keys were never visible anyway, as attention stops at pos.
- quant: go back to roundf. The truncate-and-adjust rounding moved every
  weight with a fraction away from zero, not only halves, which inflated
  the weights and cost three points of top-1 agreement."

[ -z "$(g status --porcelain)" ] || die "work tree not clean after the last commit"
for r in "${roles[@]}"; do
	echo "$r"
done
