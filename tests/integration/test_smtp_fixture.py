"""The SMTP sink fixture (tests/lib/smtp.py) works: round trips, refusals, AUTH, restarts."""

import email.message
import os
import smtplib
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
import smtp  # noqa: E402

SUBJECT = "[benchline] Régression de 12 % sur tinyllm — débit ↓"
LONG_LINE = "".join("0123456789abcdef= .é"[i % 20] for i in range(2000))
BODY = ("Regression of 12.5 % in tokens/s.\n\n" + LONG_LINE + "\n.starts with a dot\n"
        "..two dots\n.\ntrailing blanks   \ncafé → 📉\n")


def _client(sink):
    return smtplib.SMTP("127.0.0.1", sink.port, timeout=10)


class TestSmtpFixture(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sink = smtp.SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)

    def setUp(self):
        self.sink.refuse("none")
        self.sink.clear()

    def test_round_trip_decodes_what_was_sent(self):
        msg = email.message.EmailMessage()
        msg["From"] = "benchline <benchline@example.org>"
        msg["To"] = "ops@example.org, Zoë Dev <zoe@example.org>"
        msg["Subject"] = SUBJECT
        msg["Message-ID"] = "<benchline.alert-1@example.org>"
        msg.set_content(BODY, cte="quoted-printable")
        with _client(self.sink) as c:
            c.send_message(msg, to_addrs=["ops@example.org", "zoe@example.org"])
        [got] = self.sink.wait_for(1)
        self.assertEqual(got["mail_from"], "benchline@example.org")
        self.assertEqual(got["rcpt_tos"], ["ops@example.org", "zoe@example.org"])
        self.assertEqual(got["subject"], SUBJECT)
        self.assertEqual(got["body"], BODY)
        self.assertEqual(got["headers"]["message-id"], "<benchline.alert-1@example.org>")
        self.assertEqual(got["headers"]["To"], "ops@example.org, Zoë Dev <zoe@example.org>")
        self.assertEqual(got["headers"]["content-transfer-encoding"], "quoted-printable")
        self.assertEqual(got["defects"], [])
        self.assertLessEqual(got["max_line"], 78)
        self.assertFalse(got["bare_lf"])
        self.assertFalse(got["bare_cr"])
        # raw is what came over the wire, dot-unstuffed: the lone "." line is in it.
        self.assertIn(b"\r\n..two dots\r\n.\r\ntrailing", got["raw"])

    def test_raw_data_is_kept_byte_for_byte(self):
        raw = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: raw\r\n\r\n"
               b".leading dot\r\nplain\r\n")
        with _client(self.sink) as c:
            c.sendmail("a@example.org", ["b@example.org"], raw)   # smtplib stuffs the dot
        [got] = self.sink.wait_for(1)
        self.assertEqual(got["raw"], raw)
        self.assertEqual(got["body"], ".leading dot\nplain\n")
        self.assertEqual(got["headers"]["subject"], "raw")

    def test_bare_line_feeds_are_reported(self):
        raw = b"Subject: lf\r\n\r\none\ntwo\r\n"
        with _client(self.sink) as c:
            c.sendmail("a@example.org", ["b@example.org"], raw)
        [got] = self.sink.wait_for(1)
        self.assertTrue(got["bare_lf"])

    def test_line_over_998_bytes_is_refused(self):
        raw = b"Subject: long\r\n\r\n" + b"x" * 1500 + b"\r\n"
        with _client(self.sink) as c:
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                c.sendmail("a@example.org", ["b@example.org"], raw)
        self.assertEqual(cm.exception.smtp_code, 500)
        self.assertEqual(self.sink.messages(), [])

    def test_refuse_rcpt_answers_550(self):
        self.sink.refuse("rcpt")
        with _client(self.sink) as c:
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                c.sendmail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nx\r\n")
        code, text = cm.exception.recipients["b@example.org"]
        self.assertEqual(code, 550)
        self.assertIn(b"recipient refused by the test sink", text)
        self.sink.refuse("none")
        with _client(self.sink) as c:
            c.sendmail("a@example.org", ["b@example.org"], b"Subject: y\r\n\r\ny\r\n")
        [got] = self.sink.wait_for(1)
        self.assertEqual(got["subject"], "y")

    def test_refuse_data_answers_451(self):
        self.sink.refuse("data")
        with _client(self.sink) as c:
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                c.sendmail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nx\r\n")
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertEqual(self.sink.messages(), [])

    def test_refuse_rejects_unknown_modes(self):
        with self.assertRaises(ValueError):
            self.sink.refuse("sometimes")

    def test_wait_for_times_out_as_a_test_failure(self):
        with self.assertRaises(harness.WaitTimeout):
            self.sink.wait_for(1, timeout=0.3)


class TestSmtpFixtureAuth(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sink = smtp.SmtpSink(auth="bench:s3cret pass").start()
        cls.addClassCleanup(cls.sink.stop)

    def test_login_then_send(self):
        with _client(self.sink) as c:
            c.login("bench", "s3cret pass")
            c.sendmail("a@example.org", ["b@example.org"], b"Subject: auth\r\n\r\nx\r\n")
        self.assertEqual(self.sink.wait_for(1)[-1]["subject"], "auth")

    def test_wrong_password_is_535(self):
        with _client(self.sink) as c:
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                c.login("bench", "wrong")
        self.assertEqual(cm.exception.smtp_code, 535)

    def test_mail_without_login_is_530(self):
        with _client(self.sink) as c:
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                c.sendmail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nx\r\n")
        self.assertEqual(cm.exception.smtp_code, 530)


class TestSmtpFixtureLifecycle(unittest.TestCase):

    def test_stop_refuses_connections_and_start_reuses_the_port(self):
        sink = smtp.SmtpSink().start()
        self.addCleanup(sink.stop)
        self.assertTrue(sink.url.startswith("smtp://127.0.0.1:"))
        with _client(sink) as c:
            c.sendmail("a@example.org", ["b@example.org"], b"Subject: one\r\n\r\n1\r\n")
        port = sink.port
        sink.stop()
        self.assertFalse(sink.alive())
        with self.assertRaises(OSError):
            smtplib.SMTP("127.0.0.1", port, timeout=5)
        sink.start()
        self.assertEqual(sink.port, port)
        with _client(sink) as c:
            c.sendmail("a@example.org", ["b@example.org"], b"Subject: two\r\n\r\n2\r\n")
        self.assertEqual([m["subject"] for m in sink.wait_for(2)], ["one", "two"])

    def test_a_taken_fixed_port_fails_with_the_log(self):
        first = smtp.SmtpSink().start()
        self.addCleanup(first.stop)
        second = smtp.SmtpSink(port=first.port)
        self.addCleanup(second.stop)
        with self.assertRaises(smtp.SinkStartError) as cm:
            second.start(timeout=10)
        self.assertIn("address already in use", str(cm.exception).lower())
        self.assertFalse(second.alive())


if __name__ == "__main__":
    unittest.main()
