"""Runs Python test files with unittest and prints one line per test.

    python3 tests/lib/runner.py [--results FILE] [-k PATTERN] TEST_FILE.py...

Each line is "  PASS|FAIL|SKIP  Class.test_name  (1.23 s)", failures are
followed by their traceback. With --results, the counts so far are
rewritten after every test: a line "passed failed skipped complete", then
the names of the failed tests, one a line, so tests/run.sh still knows what ran when a file is killed by its timeout.
-k runs only the tests whose "Class.test_name" contains PATTERN.
Exit status: 0 when nothing failed, 1 otherwise.
"""

import argparse
import importlib.util
import os
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


class Counts:
    def __init__(self, path):
        self.path = path
        self.passed = self.failed = self.skipped = 0
        self.failures = []

    def write(self, complete=False):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{self.passed} {self.failed} {self.skipped} {1 if complete else 0}\n")
            for name in self.failures:
                f.write(name.replace("\n", " ") + "\n")
        os.replace(tmp, self.path)


def test_name(test):
    if isinstance(test, unittest.TestCase) and hasattr(test, "_testMethodName"):
        return f"{type(test).__name__}.{test._testMethodName}"
    return test.id() if hasattr(test, "id") else str(test)   # class/module fixtures


class Result(unittest.TestResult):
    """Prints each outcome as it happens and keeps the counts."""

    def __init__(self, counts, label):
        super().__init__()
        self.counts = counts
        self.label = label
        self.started = {}
        self.sub_failed = set()

    def _report(self, test, word, detail=None, name=None):
        t0 = self.started.get(id(test))
        took = f"  ({time.monotonic() - t0:.2f} s)" if t0 is not None else ""
        print(f"  {word:<4}  {name or test_name(test)}{took}", flush=True)
        if detail:
            print("\n".join("        " + line for line in detail.rstrip().splitlines()), flush=True)
        if word == "PASS":
            self.counts.passed += 1
        elif word == "FAIL":
            self.counts.failed += 1
            self.counts.failures.append(f"{self.label}: {name or test_name(test)}")
        else:
            self.counts.skipped += 1
        self.counts.write()

    def startTest(self, test):
        super().startTest(test)
        self.started[id(test)] = time.monotonic()

    def addSuccess(self, test):
        super().addSuccess(test)
        if id(test) not in self.sub_failed:
            self._report(test, "PASS")

    def addError(self, test, err):
        super().addError(test, err)
        self._report(test, "FAIL", self._exc_info_to_string(err, test))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._report(test, "FAIL", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._report(test, "SKIP", name=f"{test_name(test)}: {reason}")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._report(test, "PASS", name=f"{test_name(test)} (expected failure)")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._report(test, "FAIL", name=f"{test_name(test)} (unexpected success)")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            # One line per failing subtest; the test itself then counts once more
            # only if it fails outside its subtests.
            self.sub_failed.add(id(test))
            self._report(test, "FAIL", self._exc_info_to_string(err, test),
                         name=f"{test_name(test)} {subtest._subDescription()}")


def load_file(path):
    """Imports a test file as a module of its own; returns its test suite."""
    path = os.path.abspath(path)
    d = os.path.dirname(path)
    if d not in sys.path:
        sys.path.insert(0, d)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return unittest.defaultTestLoader.loadTestsFromModule(module)


def filter_suite(suite, pattern):
    out = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            out.addTests(filter_suite(t, pattern))
        elif pattern in test_name(t):
            out.addTest(t)
    return out


def main():
    ap = argparse.ArgumentParser(description="run benchline Python test files")
    ap.add_argument("--results", help="file to keep the counts in")
    ap.add_argument("-k", dest="pattern", help="only tests whose Class.test_name contains this")
    ap.add_argument("files", nargs="+")
    opts = ap.parse_args()

    counts = Counts(opts.results)
    counts.write()
    t_all = time.monotonic()
    for path in opts.files:
        label = os.path.relpath(os.path.abspath(path))
        print(f"{label}", flush=True)
        try:
            suite = load_file(path)
        except Exception:
            Result(counts, label)._report(None, "FAIL", traceback.format_exc(),
                                          name="(import failed)")
            continue
        if opts.pattern:
            suite = filter_suite(suite, opts.pattern)
        suite(Result(counts, label))
    print(f"  {counts.passed} passed, {counts.failed} failed, {counts.skipped} skipped "
          f"in {time.monotonic() - t_all:.2f} s", flush=True)
    counts.write(complete=True)
    return 1 if counts.failed else 0


if __name__ == "__main__":
    # Exit through SystemExit so the harness's atexit cleanup runs.
    sys.exit(main())
