"""Migrations: applied in order by the CLI and at server start, recorded, and idempotent."""

import harness
from fixtures import cli_ok


class TestMigrations(harness.DatabaseTestCase):
    def test_migrate_twice_changes_nothing(self):
        out = cli_ok(self.db_url, "migrate")
        self.assertRegex(out, r"^[1-9]\d* migrations? applied")
        applied = self.sql("SELECT version FROM schema_migrations ORDER BY version")
        schema = self.sql("SELECT table_name FROM information_schema.tables "
                          "WHERE table_schema = 'public' ORDER BY 1")
        self.assertIn(("0001_core",), applied)
        for table in ("projects", "targets", "workers", "commits", "jobs", "runs",
                      "series", "points", "alerts", "webhook_deliveries"):
            self.assertIn((table,), schema)

        self.assertEqual(cli_ok(self.db_url, "migrate").strip(), "0 migrations applied")
        # The server applies migrations at start too, and finds nothing to do.
        srv = self.start_server()
        srv.stop()
        self.assertIn("0 migrations applied", srv.log_text())
        self.assertEqual(self.sql("SELECT version FROM schema_migrations ORDER BY version"),
                         applied)
        self.assertEqual(self.sql("SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema = 'public' ORDER BY 1"), schema)

    def test_points_are_partitioned_by_month(self):
        cli_ok(self.db_url, "migrate")
        # The current month exists; a far month is created on demand, once.
        part = self.sql_value("SELECT points_partition_for('2031-02-14T10:00:00Z')")
        self.assertEqual(part, "points_y2031m02")
        self.assertEqual(self.sql_value("SELECT points_partition_for('2031-02-27T23:59:59Z')"),
                         "points_y2031m02")
        bounds = self.sql_value(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c "
            "WHERE c.relname = 'points_y2031m02'")
        self.assertIn("2031-02-01", bounds)
        self.assertIn("2031-03-01", bounds)
