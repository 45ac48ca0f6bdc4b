"""A slow drift of small steps, none of them over the threshold, is still caught."""

import random

import harness
from fixtures import Catalog, sha, upload_synthetic


class TestSlowDrift(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        # No worker runs here to re-run suspicions: the routine detector alone.
        harness.sql(cls.db_url, "UPDATE projects SET settings = :'p1'::jsonb", '{"confirm": false}')
        cls.server = cls.start_server(env={"BENCHLINE_BACKGROUND_INTERVAL_MS": "20"})

    def test_ramp_is_caught_inside_it(self):
        rng = random.Random(3)
        levels = [100.0] * 12 + [100.0 * 1.012 ** k for k in range(1, 21)]
        for i, level in enumerate(levels):
            upload_synthetic(self.db_url, self.server, self.cat, i, level, rng)
        # No step is as large as the threshold, yet the drift of 27% over 20
        # commits is caught, every alert inside the ramp, none before it.
        alerts = self.sql("SELECT c.sha, a.change_pct FROM alerts a JOIN commits c ON "
                          "c.id = a.bad_commit_id WHERE a.kind = 'perf' ORDER BY c.id")
        self.assertGreaterEqual(len(alerts), 1)
        ramp = [sha(5000 + i) for i in range(12, len(levels))]
        for commit, change in alerts:
            self.assertIn(commit, ramp)
            self.assertGreater(float(change), 5)
        # Caught within the first half of the ramp, not at its end.
        self.assertIn(alerts[0][0], ramp[:10])
