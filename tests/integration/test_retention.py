"""Retention: with points_retention_months set, the server drops the month partitions of
points that lie entirely further back, at start and hourly, and keeps the rest."""

import re

import harness
from fixtures import Catalog, claim, result, sha


def partitions(db_url):
    """{name: upper bound} of every partition of points."""
    rows = harness.sql(db_url, """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'points'::regclass ORDER BY 1""")
    return {name: bound for name, bound in rows}


class TestRetention(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        # One real point this month, through the API.
        seed = harness.Server(cls.db_url, name="seed").start()
        try:
            job = cls.cat.job(sha(1))
            status, _ = claim(seed, cls.cat.workers["w1"])
            assert status == 200
            status, _, answer = harness.http("POST", f"{seed.url}/api/v1/jobs/{job}/result",
                                             result(1), token=cls.cat.workers["w1"])
            assert status == 200, answer
        finally:
            seed.stop()
        # Copies of it 1..8 months back, each in its month's partition, made
        # the way ingest makes them (points_partition_for).
        cls.sql("""
            SELECT points_partition_for(now() - make_interval(months => k))
              FROM generate_series(1, 8) k;
            INSERT INTO points (series_id, ts, commit_id, run_id, value, lo, hi, n, samples)
            SELECT series_id, ts - make_interval(months => k), commit_id, run_id, value, lo, hi,
                   n, samples
              FROM points, generate_series(1, 8) k;
        """)
        # A partition made by hand for an old year, and a DEFAULT partition:
        # judged by their bounds, not their names; DEFAULT is never dropped.
        cls.sql("""
            CREATE TABLE points_archive_2001 PARTITION OF points
                FOR VALUES FROM ('2001-01-01 00:00:00+00') TO ('2002-01-01 00:00:00+00');
            INSERT INTO points_archive_2001 SELECT series_id, '2001-06-01', commit_id, run_id,
                   value, lo, hi, n, samples FROM points LIMIT 1;
            CREATE TABLE points_rest PARTITION OF points DEFAULT;
        """)
        cls.months = {k: cls.sql_value("SELECT points_partition_for(now() - "
                                       "make_interval(months => :'p1'::int))", k)
                      for k in range(0, 9)}

    def test_1_twelve_months_then_off(self):
        before = partitions(self.db_url)
        self.assertEqual(len(before), 11)
        # Twelve months: nothing made here is that old but the 2001 archive.
        srv = harness.Server(self.db_url, name="server-12", env={
            "BENCHLINE_POINTS_RETENTION_MONTHS": "12"})
        self.addCleanup(srv.stop)
        srv.start()
        harness.wait_for(lambda: "retention: dropped 1 month partition of points" in srv.log_text(),
                         message="the start-up retention run")
        srv.stop()
        after = partitions(self.db_url)
        self.assertNotIn("points_archive_2001", after)
        self.assertEqual(set(after), set(before) - {"points_archive_2001"})
        # The default (0): no retention at all.
        srv = harness.Server(self.db_url, name="server-0")
        self.addCleanup(srv.stop)
        srv.start()
        status, _, _ = harness.http("GET", srv.url + "/readyz")
        self.assertEqual(status, 200)
        srv.stop()
        self.assertNotIn("retention:", srv.log_text())
        self.assertEqual(partitions(self.db_url), after)

    def test_2_three_months(self):
        total = int(self.sql_value("SELECT count(*) FROM points"))
        srv = harness.Server(self.db_url, name="server-3", env={
            "BENCHLINE_POINTS_RETENTION_MONTHS": "3"})
        self.addCleanup(srv.stop)
        srv.start()
        # At start, not an hour later.
        harness.wait_for(lambda: re.search(r"retention: dropped \d+ month partitions", srv.log_text()),
                         message="the start-up retention run")
        left = partitions(self.db_url)
        # Month k back ends before now - 3 months for k >= 4; month 3 still
        # holds days younger than 3 months, so it stays with 0..2.
        for k in range(0, 4):
            self.assertIn(self.months[k], left, f"month -{k} was dropped")
        for k in range(4, 9):
            self.assertNotIn(self.months[k], left, f"month -{k} was kept")
        self.assertIn("points_rest", left)
        self.assertEqual(len(left), 5)
        self.assertIn("retention: dropped 5 month partitions of points older than 3 months",
                      srv.log_text())
        self.assertEqual(int(self.sql_value("SELECT count(*) FROM points")), total - 5 * 2)
        self.assertEqual(self.sql_value("SELECT min(ts) > now() - interval '4 months' FROM points"),
                         "t")
        # The chart still reads what is kept, and a new upload still lands.
        series = harness.http("GET", srv.url + "/api/v1/projects/demo/series")[2]
        status, _, body = harness.http("GET", f"{srv.url}/api/v1/series/{series[0]['id']}/points")
        self.assertEqual(status, 200)
        self.assertEqual(body["total"], 4)
        job = self.cat.job(sha(2))
        status, _ = claim(srv, self.cat.workers["w1"])
        self.assertEqual(status, 200)
        status, _, answer = harness.http("POST", f"{srv.url}/api/v1/jobs/{job}/result",
                                         result(1), token=self.cat.workers["w1"])
        self.assertEqual(status, 200, answer)
        # The next check is an hour away: a restart runs it again, finding nothing.
        srv.stop()
        srv.start()
        harness.wait_for(lambda: "retention: no partition of points is older than 3 months"
                         in srv.log_text(), message="the second retention run")

    def test_3_function_directly(self):
        self.assertEqual(self.sql_value("SELECT points_drop_before(now() - interval '100 years')"), "0")
        self.assertEqual(self.sql("SELECT * FROM points_partitions_before('1999-01-01')"), [])
