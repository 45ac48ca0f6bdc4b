"""The test harness itself works: shared cluster, fresh database, safe SQL parameters."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402


class TestHarnessSelfcheck(harness.DatabaseTestCase):

    def test_select_one(self):
        self.assertEqual(self.sql("SELECT 1"), [("1",)])
        self.assertEqual(self.sql_value("SELECT current_database()"), self.db_name)

    def test_database_is_fresh_and_owned_by_benchline(self):
        self.assertEqual(self.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
                         [("0",)])
        self.assertEqual(self.sql_value("SELECT current_user"), "benchline")

    def test_parameters_round_trip(self):
        nasty = [
            "plain",
            "it's",
            "'; DROP TABLE t; --",
            "back\\slash \\' and \\\\ double",
            'double "quotes" and :\'p2\' and :p1',
            "E'\\x41' $$dollar$$ $tag$",
            "new\nline\ttab, comma",
            "unicode é ✓ 𝄞",
            "",
        ]
        self.sql("CREATE TABLE t (id int, s text)")
        for i, s in enumerate(nasty):
            self.sql("INSERT INTO t VALUES (:'p1', :'p2')", i, s)
            self.assertEqual(self.sql("SELECT s FROM t WHERE id = :'p1'", i), [(s,)], repr(s))
            self.assertEqual(self.sql("SELECT :'p1'::text = :'p2'::text", s, s), [("t",)])
        self.assertEqual(self.sql_value("SELECT count(*) FROM t"), str(len(nasty)))

    def test_null_and_types(self):
        self.assertEqual(self.sql("SELECT :'p1'::int + 1, :'p2'::float8, :'p3'::bool, :'p4' IS NULL",
                                  41, 2.5, True, None), [("42", "2.5", "t", "t")])
        self.assertEqual(self.sql("SELECT NULL, ''"), [(None, "")])

    def test_errors_raise(self):
        with self.assertRaises(harness.SqlError) as cm:
            self.sql("SELECT * FROM no_such_table")
        self.assertIn("no_such_table", str(cm.exception))

    def test_create_database_and_free_port(self):
        pg = harness.shared_postgres()
        url = pg.create_database()
        self.addCleanup(pg.drop_database, url.rsplit("/", 1)[1])
        self.assertEqual(harness.sql(url, "SELECT 2"), [("2",)])
        p1, p2 = harness.free_port(), harness.free_port()
        self.assertNotEqual(p1, p2)

    def test_process_stop_and_wait_for(self):
        p = harness.Process([sys.executable, "-c",
                             "import time; print('ready', flush=True); time.sleep(60)"],
                            name="sleeper").start()
        harness.wait_for(lambda: "ready" in p.log_text(), timeout=10, message="sleeper output")
        self.assertTrue(p.alive())
        self.assertEqual(p.stop(), -15)
        self.assertFalse(p.alive())
        with self.assertRaises(harness.WaitTimeout):
            harness.wait_for(lambda: False, timeout=0.1)


if __name__ == "__main__":
    unittest.main()
