"""A real SMTP server for the tests: stores every message it accepts as files.

    /usr/bin/python3 tests/lib/smtp_sink.py --port P --dir D [--refuse rcpt|data]
                                            [--auth USER:PASSWORD]

Runs on 127.0.0.1:P (Debian's aiosmtpd, so it needs /usr/bin/python3) until
SIGTERM or SIGINT. Each accepted message N becomes two files in D:

    N.eml   the message data exactly as received, dot-unstuffed (CRLF line ends)
    N.json  what a test checks, written after N.eml and renamed into place,
            so a reader that sees it sees both files whole:
              mail_from, rcpt_tos, mail_options, rcpt_options
              subject, body          decoded (RFC 2047, quoted-printable, base64,
                                     charset) by Python's email package, body with
                                     "\\n" line ends
              headers                {name: decoded value}, first of each name
              header_list            [[name, decoded value], ...] in order
              defects                what the email parser objected to (names)
              max_line               longest line of N.eml in bytes, CRLF excluded
              bare_lf, bare_cr       whether N.eml has an LF or CR outside a CRLF
              eml                    "N.eml"

Once it listens, the sink writes its pid into D/ready, so whoever started it
knows that this process (not another one on the same port) is serving.

Behaviour can be switched at run time through the file D/refuse: "rcpt"
answers every RCPT with 550, "data" answers the end of DATA with 451, and
anything else (or no file) accepts. --refuse writes that file at start.
With --auth, AUTH PLAIN and LOGIN are offered (without TLS) and MAIL is
refused until the client logged in with USER:PASSWORD.

Received lines longer than 998 bytes are refused by aiosmtpd itself
("500 Line too long"), as a strict relay would.
"""

import argparse
import email
import email.policy
import json
import os
import re
import signal
import socket
import sys
import threading

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
except ImportError:   # not Debian's /usr/bin/python3
    sys.exit("smtp_sink.py: aiosmtpd is missing: run it with /usr/bin/python3 "
             "(Debian package python3-aiosmtpd)")

REFUSE_FILE = "refuse"
READY_FILE = "ready"     # holds the pid of the sink once it listens


def _decode_body(msg):
    if msg.is_multipart():
        return None
    try:
        body = msg.get_content()
    except (LookupError, ValueError):
        return None
    if isinstance(body, bytes):
        return None
    return body.replace("\r\n", "\n")


def describe(raw):
    """The parsed view of a raw message, as stored in N.json."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    header_list = [[k, str(v)] for k, v in msg.items()]
    headers = {}
    for k, v in header_list:
        headers.setdefault(k, v)
    defects = [type(d).__name__ for d in msg.defects]
    for k in msg.keys():
        defects += [f"{k}: {type(d).__name__}" for d in getattr(msg[k], "defects", ())]
    lines = raw.split(b"\r\n")
    return {
        "subject": str(msg["subject"]) if msg["subject"] is not None else None,
        "body": _decode_body(msg),
        "headers": headers,
        "header_list": header_list,
        "defects": defects,
        "max_line": max((len(x) for x in lines), default=0),
        "bare_lf": any(b"\n" in x for x in lines),
        "bare_cr": any(b"\r" in x for x in lines),
    }


class Sink:
    """aiosmtpd handler: refuses on demand, stores what it accepts."""

    def __init__(self, directory):
        self.dir = directory
        self.lock = threading.Lock()
        names = [f for f in os.listdir(directory) if re.fullmatch(r"\d+\.eml", f)]
        self.next = max((int(f.split(".")[0]) for f in names), default=0) + 1

    def mode(self):
        try:
            with open(os.path.join(self.dir, REFUSE_FILE)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return "none"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode() == "rcpt":
            return f"550 5.1.1 <{address}>: recipient refused by the test sink"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode() == "data":
            return "451 4.3.0 temporary failure in the test sink"
        raw = envelope.original_content
        with self.lock:
            n = self.next
            self.next += 1
        base = os.path.join(self.dir, f"{n:06d}")
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "eml": f"{n:06d}.eml",
        }
        try:
            record.update(describe(raw))
        except Exception as e:   # a test must see it, not a dead server
            record["defects"] = [f"parse error: {e!r}"]
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, indent=1)
        os.replace(base + ".json.tmp", base + ".json")
        return f"250 2.0.0 OK: queued as {n:06d}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--refuse", choices=["none", "rcpt", "data"])
    ap.add_argument("--auth", metavar="USER:PASSWORD")
    args = ap.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    if args.refuse:
        with open(os.path.join(args.dir, REFUSE_FILE), "w") as f:
            f.write(args.refuse)
    kwargs = {}
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (getattr(auth_data, "login", None) == user.encode()
                  and getattr(auth_data, "password", None) == password.encode())
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=False)
    # aiosmtpd reports a taken port only after its whole ready_timeout: ask first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as asyncio does
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError as e:
            print(f"smtp_sink: cannot listen on 127.0.0.1:{args.port}: {e.strerror}",
                  file=sys.stderr, flush=True)
            return 2
    controller = Controller(Sink(args.dir), hostname="127.0.0.1", port=args.port,
                            ready_timeout=10, **kwargs)
    parent = os.getppid()
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, lambda *_: stop.set())
    controller.start()   # returns once the port answers, raises if it is taken
    ready = os.path.join(args.dir, READY_FILE)
    with open(ready + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(ready + ".tmp", ready)
    print(f"smtp_sink: listening on 127.0.0.1:{args.port}, storing into {args.dir}",
          flush=True)
    while not stop.wait(0.5):
        if os.getppid() != parent:   # orphaned: whoever started us is gone
            break
    controller.stop()
    try:
        os.remove(ready)
    except FileNotFoundError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
