#!/usr/bin/env bash
# test.sh: builds tinyllm and checks its jsonl protocol and the demo history.
#
#   usage: ./test.sh [ENGINE]
#
# ENGINE defaults to ./tinyllm, built with `make bench`; pass ./tinyllm-asan
# (after `make asan`) to run the same checks under the sanitizers. Needs
# bash, make, a C compiler, git and python3 (standard library only).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
engine=${1:-./tinyllm}
if [ "$engine" = ./tinyllm ]; then
	make -s bench
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$engine" <<'PY'
import json, subprocess, sys

engine = sys.argv[1]
small = [engine, '--dim', '64', '--layers', '2', '--heads', '2',
         '--seq-len', '96', '--seed', '7']
failures = 0


def check(cond, what):
    global failures
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures += 1


def start(args):
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    ready = json.loads(p.stdout.readline())
    return p, ready


def ask(p, line):
    if isinstance(line, str):
        line = line.encode()
    p.stdin.write(line + b'\n')
    p.stdin.flush()
    return json.loads(p.stdout.readline())


# The ready line.
p, ready = start(small)
check(ready.get('ready') is True, 'ready line says ready')
check(isinstance(ready.get('params'), int) and ready['params'] > 0,
      'ready line has an integer params')
check(ready.get('dim') == 64 and ready.get('layers') == 2, 'ready line has the shape')
check(ready.get('quant') == 'q8_0', 'q8_0 is the default quantization')
check(isinstance(ready.get('load_ms'), (int, float)), 'ready line has load_ms')

# A greedy request.
r = ask(p, '{"id":1,"prompt_tokens":16,"max_tokens":8,"temperature":0}')
check(r.get('id') == 1, 'reply echoes the id')
check(r.get('tokens') == 8, 'reply has max_tokens tokens')
check(r.get('prompt_tokens') == 16, 'reply has prompt_tokens')
check(isinstance(r.get('token_ms'), list) and len(r['token_ms']) == 8,
      'token_ms has one entry per token')
check(r.get('ttft_ms', 0) > 0 and r.get('total_ms', 0) >= r['ttft_ms'],
      'ttft_ms > 0 and total_ms >= ttft_ms')
check(abs(r['token_ms'][0] - r['ttft_ms']) < 1e-6, 'token_ms[0] is the ttft')
check(abs(sum(r['token_ms']) - r['total_ms']) < 0.01 * 8 + 0.01,
      'token_ms adds up to total_ms')
check(list(r.keys()) == ['id', 'ttft_ms', 'tokens', 'total_ms', 'token_ms',
                         'prompt_tokens'], 'reply has exactly the protocol keys')

# Sampling, a text prompt, string ids and unknown keys.
r = ask(p, '{"id":2,"prompt_tokens":8,"max_tokens":4,"temperature":0.8,'
           '"top_p":0.9,"seed":42}')
check(r.get('id') == 2 and r.get('tokens') == 4, 'sampled request is served')
r = ask(p, '{"id":"a\\"b","prompt":"Hello, w\\u00f6rld","max_tokens":3,'
           '"extra":{"nested":[1,2,{"x":null}]}}')
check(r.get('id') == 'a"b', 'string ids are echoed')
check(r.get('prompt_tokens') == 14, 'prompt text is one token per byte plus BOS')

# Errors: each gets one reply and the engine keeps serving.
r = ask(p, 'this is not json')
check(r.get('id') is None and 'error' in r, 'garbage gets an error with id null')
r = ask(p, '{"id":5,"max_tokens":4}')
check(r.get('id') == 5 and 'error' in r, 'missing prompt_tokens is an error')
r = ask(p, '{"id":6,"prompt_tokens":8}')
check(r.get('id') == 6 and 'error' in r, 'missing max_tokens is an error')
r = ask(p, '{"id":7,"prompt_tokens":90,"max_tokens":10}')
check(r.get('id') == 7 and 'context window' in r.get('error', ''),
      'prompt + max_tokens beyond the window is an error')
for bad in ['{"id":8,"prompt_tokens":-1,"max_tokens":4}',
            '{"id":8,"prompt_tokens":8,"max_tokens":0}',
            '{"id":8,"prompt_tokens":8,"max_tokens":4,"temperature":-1}',
            '{"id":8,"prompt_tokens":8,"max_tokens":4,"top_p":1.5}',
            '{"id":8,"prompt_tokens":8.5,"max_tokens":4}',
            '{"id":8,"prompt_tokens":"8","max_tokens":4}',
            '{"id":8,"prompt_tokens":8,"max_tokens":4} trailing',
            '{"id":8,"prompt_tokens":8,"max_tokens":4,"prompt":"\\ud800"}']:
    r = ask(p, bad)
    check(r.get('id') == 8 and 'error' in r, 'rejected: ' + bad)
r = ask(p, b'\x00\xff{"id":9}\x01')
check(r.get('id') is None and 'error' in r, 'binary garbage gets an error')
r = ask(p, b'{"id":10,"prompt":"' + b'x' * 200000 + b'","max_tokens":1}')
check(r.get('id') is None and 'too long' in r.get('error', ''),
      'a 200 kB line gets an error')
r = ask(p, '{"id":11,"prompt_tokens":4,"max_tokens":2}')
check(r.get('id') == 11 and r.get('tokens') == 2, 'still serving after errors')

# Accuracy.
r = ask(p, '{"id":12,"accuracy":true}')
a = r.get('accuracy', {})
check(r.get('id') == 12 and set(a) == {'top1_agreement', 'kl_divergence',
                                      'perplexity', 'perplexity_ref'},
      'accuracy reply has its four metrics')
check(0.5 <= a.get('top1_agreement', -1) <= 1, 'q8_0 top-1 agreement is high')
check(0 <= a.get('kl_divergence', -1) < 0.05, 'q8_0 KL divergence is small')
check(a.get('perplexity', 0) > 1 and a.get('perplexity_ref', 0) > 1,
      'perplexities are above 1')

# Pipelined requests: one reply each, in order; EOF exits 0.
p.stdin.write(b''.join(b'{"id":%d,"prompt_tokens":4,"max_tokens":2}\n' % i
                       for i in range(100, 120)) + b'\n  \n')
out, err = p.communicate(timeout=120)
ids = [json.loads(l)['id'] for l in out.decode().splitlines()]
check(ids == list(range(100, 120)), 'pipelined requests get one reply each, in order')
check(p.returncode == 0, 'EOF on stdin exits 0')

# fp32: the reference against itself.
p, ready = start(small + ['--quant', 'none'])
check(ready.get('quant') == 'none', '--quant none is reported')
a = ask(p, '{"id":1,"accuracy":true}')['accuracy']
check(a['top1_agreement'] == 1 and a['kl_divergence'] == 0 and
      a['perplexity'] == a['perplexity_ref'], 'fp32 agrees with itself')
p.communicate(timeout=60)

# Same seed, same model; another seed, another model.
def first_accuracy(args):
    p, _ = start(args)
    a = ask(p, '{"id":1,"accuracy":true}')['accuracy']
    p.communicate(timeout=60)
    return a
check(first_accuracy(small) == first_accuracy(small), 'weights are reproducible')
check(first_accuracy(small) != first_accuracy(small[:-1] + ['8']),
      'the seed changes the weights')

# Bad flags.
for args in (['--dim', '63'], ['--dim', '64', '--heads', '3'], ['--quant', 'q4'],
             ['--layers'], ['--bogus', '1']):
    r = subprocess.run([engine] + args, capture_output=True, stdin=subprocess.DEVNULL)
    check(r.returncode == 2 and r.stdout == b'', 'flags rejected: ' + ' '.join(args))

sys.exit(1 if failures else 0)
PY

# The demo history: ten commits in order, reproducible ids, clean refusal.
./make-history.sh "$tmp/a" >"$tmp/a.roles"
./make-history.sh "$tmp/b" >"$tmp/b.roles"
roles=$(cut -d' ' -f1 "$tmp/a.roles" | tr '\n' ' ')
want="baseline speedup neutral1 neutral2 slow neutral3 neutral4 leak drift fix "
if [ "$roles" = "$want" ]; then
	echo "ok   history has the ten roles in order"
else
	echo "FAIL history roles: $roles"
	exit 1
fi
if cmp -s "$tmp/a.roles" "$tmp/b.roles"; then
	echo "ok   history commit ids are reproducible"
else
	echo "FAIL history commit ids differ between runs"
	exit 1
fi
if [ "$(git -C "$tmp/a" rev-list --count main)" = 10 ] &&
    [ "$(git -C "$tmp/a" symbolic-ref --short HEAD)" = main ]; then
	echo "ok   history is ten commits on main"
else
	echo "FAIL history is not ten commits on main"
	exit 1
fi
if ./make-history.sh "$tmp/a" >/dev/null 2>&1; then
	echo "FAIL make-history.sh accepted a non-empty directory"
	exit 1
fi
echo "ok   make-history.sh refuses a non-empty directory"
echo "all tests passed"
