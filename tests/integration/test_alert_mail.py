"""Alert mail when the SMTP server refuses or is down: alerts stay, delivery is retried, one mail in the end."""

import random
import re

import harness
from fixtures import Catalog, upload_synthetic
from smtp import SmtpSink


class TestAlertMail(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.smtp = SmtpSink().start()
        cls.addClassCleanup(cls.smtp.stop)
        cls.server = cls.start_server(env={
            "BENCHLINE_SMTP_URL": cls.smtp.url, "BENCHLINE_MAIL_DELAY_S": "0",
            "BENCHLINE_MAIL_RETRY_BASE_S": "1", "BENCHLINE_BACKGROUND_INTERVAL_MS": "50"})
        harness.http("PATCH", cls.server.url + "/api/v1/projects/demo",
                     {"settings": {"subscribers": ["oncall@example.org"],
                                   # no worker here to re-run it: mail what
                                   # the routine detector found
                                   "confirm": False}}, token=cls.cat.admin)

    def incidents(self):
        return harness.http("GET", self.server.url + "/api/v1/incidents?project=demo")[2]

    def test_refused_then_down_then_delivered_once(self):
        rng = random.Random(7)
        self.smtp.refuse("rcpt")
        for i in range(8):
            upload_synthetic(self.db_url, self.server, self.cat, i, 100, rng,
                             wait_judged=False)
        for i in range(8, 11):         # a 30% regression
            upload_synthetic(self.db_url, self.server, self.cat, i, 130, rng,
                             wait_judged=False)
        harness.wait_for(lambda: len(self.incidents()) == 1, timeout=30)
        harness.wait_for(lambda: self.incidents()[0]["mail_attempts"] >= 2, timeout=30)
        inc = self.incidents()[0]
        self.assertEqual(inc["mail_state"], "pending")
        self.assertIn("550", inc["mail_error"])
        self.assertEqual(inc["state"], "open")
        self.assertEqual(self.smtp.messages(), [])
        # Now the server is down altogether: still retried, nothing crashes.
        self.smtp.stop()
        attempts = inc["mail_attempts"]
        harness.wait_for(lambda: self.incidents()[0]["mail_attempts"] > attempts, timeout=30)
        self.assertEqual(self.incidents()[0]["mail_state"], "pending")
        self.assertTrue(self.server.alive())
        status, _, _ = harness.http("GET", self.server.url + "/healthz")
        self.assertEqual(status, 200)
        # Back and accepting: exactly one message.
        self.smtp.start()
        self.smtp.refuse("none")
        mails = self.smtp.wait_for(1, timeout=60)
        harness.wait_for(lambda: self.incidents()[0]["mail_state"] == "sent", timeout=30)
        self.assertEqual(len(mails), 1)
        self.assertIn("ttft_ms", mails[0]["subject"])
        change = float(re.search(r"([+-][0-9.]+)%", mails[0]["subject"]).group(1))
        self.assertGreater(change, 20)      # a 30% step, measured with noise
        self.assertLess(change, 40)
        self.assertEqual(self.sql_value("SELECT count(*) FROM alerts"), "1")
