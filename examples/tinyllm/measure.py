#!/usr/bin/env python3
"""measure.py: measures every role of the tinyllm demo history.

    usage: measure.py [--rounds N] [--requests N] [--instructions] [HISTORY_DIR]

Without HISTORY_DIR the history is built by make-history.sh in a temporary
directory. Each role's tree is exported with `git archive` (the history
repository is left as it is), built with the manifest's build command, and
run with the manifest's command:

- speed: ROUNDS rounds, interleaving the roles so that load on the machine
  hits them alike; in each round one process serves REQUESTS requests of 32
  prompt + 16 generated tokens at temperature 0 after 3 warm-up requests.
  Reported: the median over rounds of each round's median wall time, and
  the CPU time per request (from /proc/PID/schedstat), which other load on
  the machine disturbs far less; changes between roles use the median of
  the per-round ratios.
- leak: one process serves 220 requests of 16 + 8 tokens; VmRSS is read
  after each, and the growth is the least-squares slope over the last 200.
- accuracy: one {"accuracy":true} request.
- with --instructions, also instructions per request counted by valgrind's
  callgrind: a run of 5 requests minus a run of none, over 5. The count is
  deterministic, so it shows a 15% change that wall time on a busy machine
  may hide.

Only the Python standard library is used.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROLES = ['baseline', 'speedup', 'slow', 'leak', 'drift', 'fix']
HISTORY_ORDER = ['baseline', 'speedup', 'neutral1', 'neutral2', 'slow',
                 'neutral3', 'neutral4', 'leak', 'drift', 'fix']


class Engine:
    """One engine process speaking the jsonl protocol."""

    def __init__(self, cwd, command):
        self.proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.ready = json.loads(self.proc.stdout.readline())
        self.next_id = 1

    def ask(self, **req):
        req.setdefault('id', self.next_id)
        self.next_id += 1
        self.proc.stdin.write(json.dumps(req) + '\n')
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if 'error' in reply:
            raise RuntimeError(f'engine error: {reply["error"]}')
        return reply

    def rss(self):
        with open(f'/proc/{self.proc.pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
        raise RuntimeError('no VmRSS')

    def cpu_ns(self):
        """CPU time the process has used so far, in nanoseconds."""
        with open(f'/proc/{self.proc.pid}/schedstat') as f:
            return int(f.read().split()[0])

    def close(self):
        self.proc.stdin.close()
        if self.proc.wait(timeout=60) != 0:
            raise RuntimeError(f'engine exited with {self.proc.returncode}')


def slope(xs, ys):
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys)) /
            sum((x - mx) ** 2 for x in xs))


def export(history, sha, dest):
    """Extracts the tree of sha into dest and builds it."""
    os.makedirs(dest)
    archive = subprocess.run(['git', '-C', history, 'archive', sha],
                             check=True, capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', dest], input=archive, check=True)
    with open(os.path.join(dest, 'benchline.json')) as f:
        manifest = json.load(f)
    subprocess.run(['bash', '-c', manifest['build']], cwd=dest, check=True,
                   stdout=subprocess.DEVNULL)
    return manifest['command']


def speed_round(tree, command, requests):
    """Returns the median wall time and the mean CPU time of a request."""
    e = Engine(tree, command)
    for _ in range(3):
        e.ask(prompt_tokens=32, max_tokens=16, temperature=0)
    cpu0 = e.cpu_ns()
    totals = [e.ask(prompt_tokens=32, max_tokens=16, temperature=0)['total_ms']
              for _ in range(requests)]
    cpu = (e.cpu_ns() - cpu0) / 1e6 / requests
    e.close()
    return statistics.median(totals), cpu


def instructions(tree, command, requests=5):
    """Instructions per request of 32 + 16 tokens, counted by callgrind."""
    def count(n):
        line = json.dumps({'id': 1, 'prompt_tokens': 32, 'max_tokens': 16})
        r = subprocess.run(['valgrind', '--tool=callgrind',
                            '--callgrind-out-file=/dev/null'] + command,
                           cwd=tree, input=(line + '\n') * n, text=True,
                           capture_output=True, check=True)
        for ln in r.stderr.splitlines():
            if 'Collected :' in ln:
                return int(ln.split()[-1])
        raise RuntimeError('no instruction count from callgrind')
    return (count(requests) - count(0)) / requests


def leak(tree, command):
    e = Engine(tree, command)
    xs, ys = [], []
    for i in range(220):
        e.ask(prompt_tokens=16, max_tokens=8)
        if i >= 20:
            xs.append(i)
            ys.append(e.rss())
    e.close()
    return slope(xs, ys), ys[-1] - ys[0]


def accuracy(tree, command):
    e = Engine(tree, command)
    acc = e.ask(accuracy=True)['accuracy']
    e.close()
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rounds', type=int, default=7)
    ap.add_argument('--requests', type=int, default=20)
    ap.add_argument('--instructions', action='store_true',
                    help='also count instructions per request with callgrind')
    ap.add_argument('history', nargs='?')
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix='tinyllm-measure-') as tmp:
        history = args.history
        if history is None:
            history = os.path.join(tmp, 'history')
            out = subprocess.run([os.path.join(HERE, 'make-history.sh'), history],
                                 check=True, capture_output=True, text=True).stdout
            shas = dict(line.split() for line in out.splitlines())
        else:
            # make-history.sh commits the roles in this order.
            log = subprocess.run(['git', '-C', history, 'rev-list', '--reverse',
                                  'main'], check=True, capture_output=True,
                                 text=True).stdout.split()
            shas = dict(zip(HISTORY_ORDER, log))

        trees, commands = {}, {}
        for role in ROLES:
            trees[role] = os.path.join(tmp, role)
            commands[role] = export(history, shas[role], trees[role])
        print(f'command: {" ".join(commands["fix"])}', flush=True)

        times = {r: [] for r in ROLES}
        cpus = {r: [] for r in ROLES}
        for _ in range(args.rounds):
            for role in ROLES:
                wall, cpu = speed_round(trees[role], commands[role],
                                        args.requests)
                times[role].append(wall)
                cpus[role].append(cpu)
        results = {}
        for role in ROLES:
            ms = statistics.median(times[role])
            growth, total = leak(trees[role], commands[role])
            results[role] = {
                'sha': shas[role],
                'request_ms': round(ms, 2),
                'request_cpu_ms': round(statistics.median(cpus[role]), 2),
                'tokens_per_s': round(16 * 1000 / ms, 1),
                'rounds_ms': [round(t, 2) for t in times[role]],
                'rounds_cpu_ms': [round(t, 2) for t in cpus[role]],
                'leak_bytes_per_request': round(growth),
                'rss_growth_bytes': total,
                'accuracy': accuracy(trees[role], commands[role]),
            }
            if args.instructions:
                results[role]['instructions_per_request'] = round(
                    instructions(trees[role], commands[role]))
    report(results)


def paired_change(now, before):
    """Median over rounds of the ratio of two roles' times in the same round,
    as a percentage change; pairing cancels the load the round ran under."""
    return 100 * (statistics.median(a / b for a, b in zip(now, before)) - 1)


def report(results):
    """Prints a table, each timing also as a change from the role before.
    Wall times are medians; the CPU change is the median of per-round ratios."""
    print(f'{"role":9} {"sha":8} {"req ms":>7} {"tok/s":>7} {"vs prev":>8} '
          f'{"cpu ms":>7} {"vs prev":>8} {"leak B/req":>10} {"top1":>7} '
          f'{"KL":>9} {"ppl":>8} {"ppl_ref":>8}')
    prev = None
    for role in ROLES:
        r, a = results[role], results[role]['accuracy']
        wall = cpu = ''
        if prev is not None:
            wall = f'{100 * (r["request_ms"] / prev["request_ms"] - 1):+.1f}%'
            cpu = f'{paired_change(r["rounds_cpu_ms"], prev["rounds_cpu_ms"]):+.1f}%'
        print(f'{role:9} {r["sha"][:8]} {r["request_ms"]:7.2f} '
              f'{r["tokens_per_s"]:7.1f} {wall:>8} {r["request_cpu_ms"]:7.2f} '
              f'{cpu:>8} {r["leak_bytes_per_request"]:10d} '
              f'{a["top1_agreement"]:7.4f} {a["kl_divergence"]:9.6f} '
              f'{a["perplexity"]:8.1f} {a["perplexity_ref"]:8.1f}')
        prev = r
    if 'instructions_per_request' in results[ROLES[0]]:
        print(f'\n{"role":9} {"instructions/request":>20} {"vs prev":>8}')
        prev = None
        for role in ROLES:
            n = results[role]['instructions_per_request']
            change = '' if prev is None else f'{100 * (n / prev - 1):+.1f}%'
            print(f'{role:9} {n:20d} {change:>8}')
            prev = n
    print(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
