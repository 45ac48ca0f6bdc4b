"""A real SMTP server for the Python tests: tests/lib/smtp_sink.py in a child process.

    import smtp

    sink = smtp.SmtpSink().start()        # waits until it listens on 127.0.0.1:PORT
    ... point the code under test at sink.url ("smtp://127.0.0.1:PORT") ...
    msgs = sink.wait_for(1, timeout=10)   # [{mail_from, rcpt_tos, subject, body,
                                          #   headers, raw, ...}]
    sink.refuse("rcpt")                   # 550 to every RCPT from now on
    sink.refuse("data")                   # 451 at the end of DATA (temporary)
    sink.refuse("none")                   # accept again
    sink.stop()                           # also done at exit, like harness.Server

The sink always runs under Debian's /usr/bin/python3 (where python3-aiosmtpd
lives), whatever interpreter runs the tests. It is registered with the
harness's cleanup, so it is stopped at exit and on SIGTERM even when a test
fails. Messages are files in sink.dir (see smtp_sink.py for their format);
they survive stop() and start(), which reuses the same port.
"""

import json
import os
import re
import time

import harness

SINK_SCRIPT = os.path.join(harness.REPO, "tests", "lib", "smtp_sink.py")
SINK_PYTHON = "/usr/bin/python3"
MODES = ("none", "rcpt", "data")

__all__ = ["SmtpSink", "SinkStartError"]


class SinkStartError(AssertionError):
    pass


def _ready_pid(directory):
    """The pid in the sink's ready file, or None."""
    try:
        with open(os.path.join(directory, "ready")) as f:
            return int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return None


class SmtpSink(harness.Process):
    """The SMTP sink on a loopback port; see the module doc.

    port: a fixed port, or None for a free one (then a port taken in the
    meantime is retried). auth: "USER:PASSWORD" to require AUTH PLAIN/LOGIN
    (without TLS) before MAIL."""

    def __init__(self, port=None, auth=None, name="smtp-sink"):
        self._fixed_port = port is not None
        self.port = port or harness.free_port()
        self.auth = auth
        self.dir = harness.tmpdir("smtp-")
        super().__init__(self._argv(), name=name)

    def _argv(self):
        argv = [SINK_PYTHON, SINK_SCRIPT, "--port", str(self.port), "--dir", self.dir]
        if self.auth is not None:
            argv += ["--auth", self.auth]
        return argv

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        """Starts the sink and waits until it listens (it says so in a file)."""
        if self.alive():
            return self
        if not os.access(SINK_PYTHON, os.X_OK):
            raise SinkStartError(f"{SINK_PYTHON} is missing (the sink needs Debian's "
                                 "python3 with python3-aiosmtpd)")
        for _ in range(3):
            self.argv = self._argv()
            try:
                os.remove(os.path.join(self.dir, "ready"))
            except FileNotFoundError:
                pass
            super().start()
            deadline = time.monotonic() + timeout
            why = None
            while why is None:
                if self.proc.poll() is not None:
                    why = f"exited with status {self.proc.returncode}"
                elif _ready_pid(self.dir) == self.proc.pid:
                    return self
                elif time.monotonic() >= deadline:
                    why = f"did not listen within {timeout:g} s"
                else:
                    time.sleep(0.02)
            self.kill()
            log = self.log_tail()
            if self._fixed_port or "address already in use" not in log.lower():
                break
            self.port = harness.free_port()     # taken meanwhile: try another
        raise SinkStartError(f"{self.name} on {self.url} {why}; last lines of "
                             f"{self.log_path}:\n{log}")

    def refuse(self, mode):
        """Switches behaviour at once: mode "none" accepts, "rcpt" answers 550
        to every RCPT, "data" answers 451 (temporary) at the end of DATA."""
        if mode not in MODES:
            raise ValueError(f"refuse mode '{mode}': use one of {', '.join(MODES)}")
        path = os.path.join(self.dir, "refuse")
        with open(path + ".tmp", "w") as f:
            f.write(mode)
        os.replace(path + ".tmp", path)

    def messages(self):
        """Every message stored so far, oldest first, as dicts:
        mail_from, rcpt_tos, subject, body (decoded str, "\\n" line ends),
        headers (harness.Headers: case-insensitive, decoded), raw (bytes as
        received, CRLF), and header_list, defects, max_line, bare_lf, bare_cr,
        mail_options, rcpt_options."""
        out = []
        names = sorted(f for f in os.listdir(self.dir) if re.fullmatch(r"\d+\.json", f))
        for name in names:
            with open(os.path.join(self.dir, name), encoding="utf-8") as f:
                rec = json.load(f)
            with open(os.path.join(self.dir, rec["eml"]), "rb") as f:
                rec["raw"] = f.read()
            rec["headers"] = harness.Headers(rec.get("header_list") or [])
            out.append(rec)
        return out

    def wait_for(self, n, timeout=10.0):
        """Waits until at least n messages are stored; returns messages()."""
        def enough():
            msgs = self.messages()
            return msgs if len(msgs) >= n else None
        return harness.wait_for(enough, timeout=timeout,
                                message=f"{n} message(s) at the SMTP sink {self.url}")

    def clear(self):
        """Forgets the messages stored so far (their files are removed)."""
        for f in os.listdir(self.dir):
            if re.fullmatch(r"\d+\.(json|eml)", f):
                os.remove(os.path.join(self.dir, f))
