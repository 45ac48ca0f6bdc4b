"""Result ingestion: stored once however often it is sent; every bad input is refused and changes nothing."""

import json
import math

import harness
from fixtures import Catalog, claim, result, sha


class TestIngest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cat = Catalog(cls.db_url)
        cls.server = cls.start_server()

    def running_job(self, i, worker="w1"):
        job = self.cat.job(sha(i))
        status, body = claim(self.server, self.cat.workers[worker])
        self.assertEqual((status, body["id"]), (200, job))
        return job

    def post(self, job, body, worker="w1", token=None, headers=None):
        # token "" sends no Authorization header at all.
        tok = self.cat.workers[worker] if token is None else (token or None)
        return harness.http("POST", f"{self.server.url}/api/v1/jobs/{job}/result", body,
                            token=tok, headers=headers)

    def snapshot(self):
        return self.sql("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM points), "
                        "(SELECT count(*) FROM series), (SELECT count(*) FROM run_series), "
                        "(SELECT string_agg(id || ':' || state || ':' || attempt, ',' ORDER BY id) "
                        "FROM jobs)")

    def test_result_sent_three_times_is_stored_once(self):
        job = self.running_job(1)
        ts = {"rss_bytes": {"unit": "bytes", "t": [0, 0.5, 1.0], "v": [1e6, 1.1e6, 1.2e6]}}
        body = result(1, timeseries=ts)
        answers = [self.post(job, body) for _ in range(3)]
        self.assertEqual([a[0] for a in answers], [200, 200, 200])
        first = answers[0][2]
        self.assertEqual(first["points"], 2)
        for _, _, later in answers[1:]:
            self.assertTrue(later.pop("duplicate"))
            self.assertEqual(later, first)
        self.assertEqual(self.sql("SELECT count(*) FROM runs WHERE job_id = :'p1'", job),
                         [("1",)])
        rows = self.sql("SELECT s.scenario, s.metric, s.unit, s.direction, p.value, p.n, "
                        "p.samples FROM points p JOIN series s ON s.id = p.series_id "
                        "WHERE p.run_id = :'p1' ORDER BY s.metric", first["run_id"])
        self.assertEqual(rows, [
            ("latency", "tokens_per_s", "tok/s", "higher", "100.5", "4",
             "{100,102.5,98.25,101}"),
            ("latency", "ttft_ms", "ms", "lower", "12", "3", "{12,13.5,11.75}"),
        ])
        self.assertEqual(self.sql("SELECT scenario, name, unit, v FROM run_series "
                                  "WHERE run_id = :'p1'", first["run_id"]),
                         [("latency", "rss_bytes", "bytes", "{1000000,1100000,1200000}")])
        env = json.loads(self.sql_value("SELECT environment FROM runs WHERE id = :'p1'",
                                        first["run_id"]))
        self.assertEqual(env["cpu_model"], "Test CPU @ 2.0GHz")
        self.assertEqual(self.sql_value("SELECT state FROM jobs WHERE id = :'p1'", job), "done")

    def test_series_are_created_once_and_reused(self):
        first = self.running_job(2)
        status, _, a = self.post(first, result(1))
        self.assertEqual(status, 200)
        n_series = self.sql_value("SELECT count(*) FROM series")
        second = self.running_job(3)
        status, _, b = self.post(second, result(1))
        self.assertEqual(status, 200)
        self.assertEqual(self.sql_value("SELECT count(*) FROM series"), n_series)
        # Both runs' points of a metric land in the same series.
        self.assertEqual(self.sql_value(
            "SELECT count(DISTINCT p.series_id) FROM points p JOIN series s ON "
            "s.id = p.series_id WHERE s.metric = 'ttft_ms' AND p.run_id IN (:'p1', :'p2')",
            a["run_id"], b["run_id"]), "1")

    def assert_refused(self, job, body, status, field_text, worker="w1", token=None,
                       raw_headers=None):
        before = self.snapshot()
        got, _, err = self.post(job, body, worker=worker, token=token, headers=raw_headers)
        self.assertEqual(got, status, err)
        self.assertIsInstance(err, dict, "error bodies are JSON")
        self.assertIn("error", err)
        self.assertIn(field_text, err["error"]["message"])
        self.assertEqual(self.snapshot(), before, "a refused upload changed the database")
        return err

    def test_bad_inputs_get_4xx_and_change_nothing(self):
        job = self.running_job(10)
        good = result(1)
        cases = []

        def case(name, mutate, field_text, status=400):
            body = json.loads(json.dumps(good))
            mutate(body)
            cases.append((name, body, status, field_text))

        def put(path, value):
            def f(body):
                cur = body
                for k in path[:-1]:
                    cur = cur[k]
                cur[path[-1]] = value
            return f

        def drop(path):
            def f(body):
                cur = body
                for k in path[:-1]:
                    cur = cur[k]
                del cur[path[-1]]
            return f

        lat = ["scenarios", "latency", "metrics", "ttft_ms"]
        case("samples not numbers", put(lat + ["samples"], ["12", 13]),
             "$.scenarios.latency.metrics.ttft_ms.samples[0]: must be a finite number")
        case("samples not an array", put(lat + ["samples"], 12),
             "$.scenarios.latency.metrics.ttft_ms.samples: must be an array")
        case("empty samples", put(lat + ["samples"], []),
             "$.scenarios.latency.metrics.ttft_ms.samples: must hold at least 1 number")
        case("unknown direction", put(lat + ["direction"], "sideways"),
             "$.scenarios.latency.metrics.ttft_ms.direction: must be \"lower\" or \"higher\"")
        case("unit wrong type", put(lat + ["unit"], 5),
             "$.scenarios.latency.metrics.ttft_ms.unit: must be a string")
        case("attempt a string", put(["attempt"], "1"), "$.attempt: must be an integer")
        case("attempt missing", drop(["attempt"]), "$.attempt: is required")
        case("environment missing", drop(["environment"]), "$.environment: is required")
        case("cores a float", put(["environment", "cores"], 2.5),
             "$.environment.cores: must be an integer")
        case("no scenarios", put(["scenarios"], {}), "$.scenarios: must hold 1 to")
        case("unknown field", put(["surprise"], 1), "$.surprise: unknown field")
        case("bad scenario name", put(["scenarios", "la tency"], {"metrics": {}}),
             "$.scenarios.la tency: a scenario name")
        case("timeseries length mismatch",
             put(["scenarios", "latency", "timeseries"],
                 {"rss": {"unit": "bytes", "t": [0, 1], "v": [1]}}),
             "$.scenarios.latency.timeseries.rss: t has 2 values but v has 1")
        # A series recorded in one unit cannot change unit silently.
        for name, body, status, field_text in cases:
            with self.subTest(name):
                self.assert_refused(job, body, status, field_text)
        # NaN, Infinity and overflow are not JSON numbers.
        for token_text in ("NaN", "Infinity", "-Infinity", "1e999"):
            with self.subTest(token_text):
                raw = json.dumps(good).replace('"samples": [12.0', f'"samples": [{token_text}')
                self.assertIn(token_text, raw)
                err = self.assert_refused(job, raw, 400, "",
                                          raw_headers={"Content-Type": "application/json"})
                self.assertEqual(err["error"]["code"], "malformed_json")
        with self.subTest("malformed JSON"):
            err = self.assert_refused(job, '{"attempt": 1, "scenarios": ', 400, "malformed JSON")
            self.assertEqual(err["error"]["code"], "malformed_json")
        with self.subTest("not an object"):
            self.assert_refused(job, "[1, 2]", 400, "$: must be a JSON object")
        with self.subTest("20 MB body"):
            big = json.dumps(good)[:-1] + ', "pad": "' + "x" * (20 << 20) + '"}'
            before = self.snapshot()
            try:
                status, _, err = self.post(job, big)
                self.assertEqual(status, 413)
                self.assertIn("exceeds the limit", err["error"]["message"])
            except (ConnectionError, OSError):
                # The server may close the connection after the 413 while we still send.
                pass
            self.assertEqual(self.snapshot(), before)
        with self.subTest("unknown job"):
            err = self.assert_refused(987654, good, 404, "no job '987654'")
            self.assertEqual(err["error"]["code"], "not_found")
        with self.subTest("another worker's job"):
            self.assert_refused(job, good, 409, "not leased to this worker", worker="w2")
        with self.subTest("missing token"):
            err = self.assert_refused(job, good, 401, "worker token", token="")
            self.assertEqual(err["error"]["code"], "unauthorized")
        with self.subTest("wrong token"):
            wrong = self.cat.workers["w1"][:-4] + "0000"
            self.assert_refused(job, good, 401, "worker token", token=wrong)
        with self.subTest("admin token is not a worker token"):
            self.assert_refused(job, good, 401, "worker token", token=self.cat.admin)
        with self.subTest("wrong attempt"):
            self.assert_refused(job, result(2), 409, "not leased to this worker")
        # After all that, the good upload still lands, once.
        status, _, body = self.post(job, good)
        self.assertEqual(status, 200, body)

    def test_unit_change_is_refused(self):
        first = self.running_job(20)
        self.assertEqual(self.post(first, result(1))[0], 200)
        second = self.running_job(21)
        bad = result(1, metrics={"ttft_ms": ("s", "lower", [0.012])})
        self.assert_refused(second, bad, 400,
                            "$.scenarios.latency.metrics.ttft_ms: the series is recorded in 'ms'")

    def test_large_result_is_stored_whole(self):
        job = self.running_job(30)
        metrics = {f"m{i}": ("ms", "lower", [float(i + k) for k in range(50)])
                   for i in range(2000)}
        status, _, body = self.post(job, result(1, metrics=metrics))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["points"], 2000)
        self.assertEqual(self.sql_value("SELECT count(*) FROM points WHERE run_id = :'p1'",
                                        body["run_id"]), "2000")
        self.assertEqual(self.sql_value(
            "SELECT sum(n) FROM points WHERE run_id = :'p1'", body["run_id"]), "100000")
        self.assertTrue(math.isclose(float(self.sql_value(
            "SELECT value FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE p.run_id = :'p1' AND s.metric = 'm7'", body["run_id"])), 7 + 24.5))
