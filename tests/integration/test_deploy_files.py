"""The deployment files hold together: docker-compose.yml validates (docker-compose 1.29,
no engine needed) with its services, health checks and volumes; the systemd units carry
their hardening and pass systemd-analyze verify where it can run; the nginx front's limits
match the server's settings (and nginx -t accepts it where nginx is installed); and
deploy/install-worker.sh stages a worker whose config benchline-worker -n accepts.

NGINX=/path/to/nginx runs the nginx -t check with a binary that is not on PATH
(nginx is not one of benchline's dependencies)."""

import os
import re
import shutil
import subprocess
import unittest

import harness

REPO = harness.REPO
DEPLOY = os.path.join(REPO, "deploy")


def clean_env(**extra):
    """This process's environment without benchline's or compose's settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BENCHLINE_", "POSTGRES_", "COMPOSE_"))
           or k.startswith("BENCHLINE_TEST_")}
    env.update(extra)
    return env


def run(argv, **kwargs):
    kwargs.setdefault("env", clean_env())
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


def server_defaults():
    """The server's settings as benchline-server -n prints them (no database is contacted)."""
    proc = run([harness.bin_path("benchline-server"), "-n"],
               env=clean_env(BENCHLINE_DATABASE_URL="postgresql://x@127.0.0.1:1/x"))
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(" = ", 1) for line in proc.stdout.splitlines() if " = " in line)


# ---------------------------------------------------------------------------
# docker-compose.yml


class TestCompose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.compose = shutil.which("docker-compose")
        if cls.compose is None:
            raise AssertionError("docker-compose is not installed: run deploy/install-deps.sh "
                                 "(it validates docker-compose.yml without an engine)")

    def compose_run(self, *args):
        proc = run([self.compose, "-f", "docker-compose.yml", *args], cwd=REPO)
        self.assertEqual(proc.returncode, 0, f"docker-compose {' '.join(args)}: {proc.stderr}")
        return proc.stdout

    def config(self):
        import yaml     # python3-yaml: docker-compose itself depends on it
        return yaml.safe_load(self.compose_run("config"))

    def test_validates_without_an_engine_or_settings(self):
        self.assertEqual(self.compose_run("config", "-q"), "")

    def test_services_and_volumes(self):
        self.assertEqual(sorted(self.compose_run("config", "--services").split()),
                         ["mail", "postgres", "server", "setup", "worker"])
        self.assertEqual(sorted(self.compose_run("config", "--volumes").split()),
                         ["mail", "pgdata", "secrets", "worker-cache", "worker-spool"])
        svc = self.config()["services"]
        self.assertEqual(svc["postgres"]["image"], "postgres:15")
        self.assertIn("pgdata:/var/lib/postgresql/data:rw", svc["postgres"]["volumes"])
        work_dir = svc["worker"]["environment"]["BENCHLINE_WORKER_WORK_DIR"]
        self.assertIn(f"worker-cache:{work_dir}/cache:rw", svc["worker"]["volumes"])
        self.assertIn(f"worker-spool:{work_dir}/spool:rw", svc["worker"]["volumes"])
        self.assertIn("mail:/var/mail/benchline:rw", svc["mail"]["volumes"])
        # The server sends alert mail to the catcher, the worker talks to the server.
        self.assertEqual(svc["server"]["environment"]["BENCHLINE_SMTP_URL"], "smtp://mail:1025")
        self.assertEqual(svc["worker"]["environment"]["BENCHLINE_WORKER_SERVER_URL"],
                         "http://server:8080")
        # The setup script it mounts exists and parses.
        mounted = [v.split(":")[0] for v in svc["setup"]["volumes"] if v.startswith("/")]
        self.assertEqual(len(mounted), 1)
        self.assertEqual(run(["sh", "-n", mounted[0]]).returncode, 0)

    def test_health_checks_and_start_order(self):
        svc = self.config()["services"]
        self.assertEqual(svc["postgres"]["healthcheck"]["test"][:2], ["CMD", "pg_isready"])
        srv = " ".join(svc["server"]["healthcheck"]["test"])
        self.assertRegex(srv, r"curl .*http://127\.0\.0\.1:8080/readyz")
        self.assertIn("healthcheck", svc["mail"])
        self.assertEqual(svc["server"]["depends_on"]["postgres"]["condition"], "service_healthy")
        self.assertEqual(svc["server"]["depends_on"]["setup"]["condition"],
                         "service_completed_successfully")
        self.assertEqual(svc["worker"]["depends_on"]["server"]["condition"], "service_healthy")

    def test_images_are_multi_stage_debian_and_not_root(self):
        svc = self.config()["services"]
        with open(os.path.join(DEPLOY, "Dockerfile")) as f:
            dockerfile = f.read()
        stages = re.findall(r"^FROM (\S+) AS (\S+)$", dockerfile, re.M)
        self.assertEqual(stages, [("debian:12", "build"), ("debian:12", "server"),
                                  ("debian:12", "worker")])
        for name in ("server", "worker"):
            self.assertEqual(svc[name]["build"]["dockerfile"], "deploy/Dockerfile")
            self.assertEqual(svc[name]["build"]["target"], name)
            stage = dockerfile.split(f" AS {name}\n", 1)[1].split("\nFROM ", 1)[0]
            self.assertRegex(stage, r"\nUSER benchline\n", f"the {name} image runs as root")
            self.assertIn("COPY --from=build", stage)
        # The compiler stays out of the server's image, not out of the worker's.
        server_stage = dockerfile.split(" AS server\n", 1)[1].split("\nFROM ", 1)[0]
        self.assertNotIn("build-essential", server_stage)
        with open(os.path.join(DEPLOY, "Dockerfile.mail")) as f:
            mail = f.read()
        self.assertIn("python3-aiosmtpd", mail)
        self.assertRegex(mail, r"\nUSER \w+\n")


# ---------------------------------------------------------------------------
# systemd units


def parse_unit(path):
    """[(section, key, value)] of a unit file; keys may repeat."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.append((section, key.strip(), value.strip()))
    return out


class TestSystemd(unittest.TestCase):
    UNITS = ("benchline-server", "benchline-worker")

    def unit(self, name):
        entries = parse_unit(os.path.join(DEPLOY, "systemd", name + ".service"))
        values = {}
        for section, key, value in entries:
            values.setdefault((section, key), []).append(value)
        return values

    def test_units_restart_drop_privileges_and_harden(self):
        for name in self.UNITS:
            u = self.unit(name)
            conf = "/etc/benchline/" + name.split("-")[1] + ".conf"
            with self.subTest(unit=name):
                self.assertEqual(u[("Service", "Restart")], ["on-failure"])
                self.assertEqual(u[("Service", "User")], ["benchline"])
                self.assertEqual(u[("Service", "ExecStart")],
                                 [f"/usr/local/bin/{name} -c {conf}"])
                self.assertRegex(u[("Service", "EnvironmentFile")][0], r"^-/etc/benchline/\S+\.env$")
                for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                                   ("PrivateTmp", "yes"), ("ProtectHome", "yes")):
                    self.assertEqual(u[("Service", key)], [value], key)
                self.assertEqual(u[("Install", "WantedBy")], ["multi-user.target"])

    def test_worker_unit_may_write_and_exec_in_its_work_dir(self):
        u = self.unit("benchline-worker")
        rw = " ".join(u[("Service", "ReadWritePaths")]).split()
        # The work dir the example config names is the one the unit opens.
        with open(os.path.join(REPO, "configs", "worker.conf.example")) as f:
            work_dir = re.search(r"^work_dir = (\S+)$", f.read(), re.M).group(1)
        self.assertIn(work_dir, rw)
        self.assertEqual(u[("Service", "StateDirectory")], [os.path.basename(work_dir)])
        # Builds and engines run here: nothing may forbid exec or JIT pages.
        for key in ("NoExecPaths", "MemoryDenyWriteExecute", "SystemCallFilter"):
            self.assertNotIn(("Service", key), u, key)
        # The server's unit, which runs nothing else, is stricter.
        s = self.unit("benchline-server")
        self.assertEqual(s[("Service", "MemoryDenyWriteExecute")], ["yes"])
        self.assertIn(("Service", "SystemCallFilter"), s)

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze is not installed: units checked structurally only")
        tmp = harness.tmpdir("units-")
        # Can it run here at all? A trivial unit tells (some containers refuse).
        probe = os.path.join(tmp, "probe.service")
        with open(probe, "w") as f:
            f.write("[Service]\nExecStart=/bin/true\n")
        proc = run([tool, "verify", "--man=no", probe], cwd=tmp)
        if proc.returncode != 0:
            self.skipTest("systemd-analyze verify cannot run in this container "
                          f"({(proc.stderr or proc.stdout).strip()[:200]}): units checked "
                          "structurally only")
        # verify wants ExecStart to exist: point it at the built binaries.
        paths = []
        for name in self.UNITS:
            with open(os.path.join(DEPLOY, "systemd", name + ".service")) as f:
                text = f.read().replace("/usr/local/bin/", harness.BUILD + "/")
            paths.append(os.path.join(tmp, name + ".service"))
            with open(paths[-1], "w") as f:
                f.write(text)
        proc = run([tool, "verify", "--man=no", *paths], cwd=tmp)
        out = (proc.stdout + proc.stderr).strip()
        self.assertEqual(proc.returncode, 0, out)
        self.assertEqual([line for line in out.splitlines() if "benchline-" in line], [], out)


# ---------------------------------------------------------------------------
# nginx


def nginx_blocks(text):
    """Checks that braces balance; returns {block header: body text} for every block."""
    text = re.sub(r"#[^\n]*", "", text)
    depth, stack, blocks = 0, [], {}
    for m in re.finditer(r"[{}]", text):
        if m.group() == "{":
            start = text.rfind(";", 0, m.start())
            start = max(start, text.rfind("}", 0, m.start()), text.rfind("{", 0, m.start()))
            stack.append((" ".join(text[start + 1:m.start()].split()), m.end()))
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                raise AssertionError(f"unbalanced '}}' at offset {m.start()}")
            header, begin = stack.pop()
            blocks.setdefault(header, []).append(text[begin:m.start()])
    if depth != 0:
        raise AssertionError(f"{depth} unclosed '{{'")
    return blocks


def directive(body, name):
    """The values of a directive written directly in a block's body (not nested)."""
    flat = re.sub(r"\{[^{}]*\}", "", body)
    while re.search(r"\{[^{}]*\}", flat):
        flat = re.sub(r"\{[^{}]*\}", "", flat)
    return [m.group(1).strip() for m in re.finditer(rf"(?:^|[;\s]){name}\s+([^;]*);", flat)]


def size_bytes(s):
    units = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
    m = re.fullmatch(r"(\d+)([kmgKMG]?)", s)
    return int(m.group(1)) * units[m.group(2).lower()]


def seconds(s):
    m = re.fullmatch(r"(\d+)(s|m)?", s)
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


class TestNginx(unittest.TestCase):
    PATH = os.path.join(DEPLOY, "nginx", "benchline.conf")

    @classmethod
    def setUpClass(cls):
        with open(cls.PATH) as f:
            cls.text = f.read()
        cls.blocks = nginx_blocks(cls.text)
        cls.defaults = server_defaults()

    def test_upstream_tls_and_redirect(self):
        upstream = self.blocks["upstream benchline"][0]
        self.assertGreaterEqual(len(directive(upstream, "server")), 2, "one or several servers")
        servers = self.blocks["server"]
        tls = [b for b in servers if any("443 ssl" in v for v in directive(b, "listen"))]
        plain = [b for b in servers if any(v.split()[0] == "80" for v in directive(b, "listen"))]
        self.assertEqual(len(tls), 1)
        self.assertEqual(len(plain), 1)
        for key in ("ssl_certificate", "ssl_certificate_key", "ssl_protocols"):
            self.assertEqual(len(directive(tls[0], key)), 1, key)
        self.assertNotIn("TLSv1.1", directive(tls[0], "ssl_protocols")[0])
        self.assertIn("return 301 https://$host$request_uri;", plain[0])
        self.assertIn("proxy_pass http://benchline;", tls[0])

    def test_limits_match_the_server(self):
        tls = [b for b in self.blocks["server"] if "ssl_certificate" in b][0]
        body_max = int(self.defaults["max_body_bytes"])
        self.assertEqual(size_bytes(directive(tls, "client_max_body_size")[0]), body_max)
        hooks = self.blocks["location /hooks/"][0]
        self.assertEqual(size_bytes(directive(hooks, "client_max_body_size")[0]), body_max)
        self.assertIn("proxy_pass http://benchline;", hooks)
        claim = self.blocks["location = /api/v1/jobs/claim"][0]
        self.assertEqual(directive(claim, "proxy_buffering"), ["off"])
        wait = int(self.defaults["claim_wait_seconds"])
        self.assertGreater(seconds(directive(claim, "proxy_read_timeout")[0]), wait + 10)
        self.assertIn("proxy_pass http://benchline;", claim)

    def test_nginx_accepts_it(self):
        nginx = os.environ.get("NGINX") or shutil.which("nginx") or (
            "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
        if nginx is None:
            self.skipTest("nginx is not installed (not a dependency): checked structurally only")
        if shutil.which("openssl") is None:
            self.skipTest("openssl is missing: cannot make the test certificate nginx -t loads")
        tmp = harness.tmpdir("nginx-")
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        proc = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", cert])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        site = (self.text.replace("/etc/ssl/benchline/fullchain.pem", cert)
                .replace("/etc/ssl/benchline/privkey.pem", key))
        with open(os.path.join(tmp, "site.conf"), "w") as f:
            f.write(site)
        temp_paths = "".join(f"    {k}_temp_path {tmp}/{k};\n"
                             for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(f"pid {tmp}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
                    f"http {{\n{temp_paths}    access_log off;\n    include {tmp}/site.conf;\n}}\n")
        proc = run([nginx, "-e", "stderr", "-p", tmp, "-t", "-c", os.path.join(tmp, "nginx.conf")])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("test is successful", proc.stderr)


# ---------------------------------------------------------------------------
# deploy/install-worker.sh


class TestInstallWorker(unittest.TestCase):
    SCRIPT = os.path.join(DEPLOY, "install-worker.sh")
    ARGS = ["--url", "https://bench.example.org", "--token", "blw_7_0123456789abcdef",
            "--target", "gpu-a100", "--name", "a100-1", "--set", "engine_cpus=1"]

    def install(self, root, *args):
        return run(["bash", self.SCRIPT, "--root", root, "--prefix", "/opt/benchline", *args],
                   env=clean_env(BUILD=harness.BUILD))

    def test_dry_run_changes_nothing(self):
        root = os.path.join(harness.tmpdir("dry-"), "root")
        proc = self.install(root, "--dry-run", *self.ARGS)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertFalse(os.path.exists(root))
        steps = re.findall(r"^install-worker\.sh: \[\d+\] (.*)$", proc.stdout, re.M)
        self.assertEqual(len(steps), 7, proc.stdout)
        self.assertIn("install -D -m 755", proc.stdout)
        self.assertNotIn("0123456789abcdef", proc.stdout)   # the token is not printed
        self.assertIn("dry run: nothing was changed", proc.stdout)

    def test_stages_a_worker_that_benchline_worker_accepts(self):
        root = harness.tmpdir("root-")
        proc = self.install(root, *self.ARGS)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertNotIn("0123456789abcdef", proc.stdout + proc.stderr)
        binary = os.path.join(root, "opt/benchline/bin/benchline-worker")
        conf = os.path.join(root, "etc/benchline/worker.conf")
        unit = os.path.join(root, "etc/systemd/system/benchline-worker.service")
        self.assertEqual(os.stat(binary).st_mode & 0o777, 0o755)
        self.assertEqual(os.stat(conf).st_mode & 0o777, 0o640)
        self.assertEqual(os.stat(unit).st_mode & 0o777, 0o644)
        self.assertTrue(os.path.isdir(os.path.join(root, "var/lib/benchline-worker")))
        # The very config file, checked by the very binary it installed.
        check = run([binary, "-n", "-c", conf])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn("configuration OK", check.stdout)
        for line in ("server_url = https://bench.example.org", "token = ********",
                     "target = gpu-a100", "work_dir = /var/lib/benchline-worker",
                     "engine_cpus = 1"):
            self.assertIn(line + "\n", check.stdout)
        with open(conf) as f:
            self.assertIn("worker 'a100-1'", f.read())
        with open(unit) as f:
            self.assertIn("ExecStart=/opt/benchline/bin/benchline-worker -c "
                          "/etc/benchline/worker.conf\n", f.read())
        self.assertIn("skipped under --root", proc.stdout)

        # A setting the worker refuses leaves the installed config as it was.
        with open(conf) as f:
            before = f.read()
        proc = self.install(root, *self.ARGS[:4], "--set", "no_such_key=1")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("unknown key 'no_such_key'", proc.stderr)
        with open(conf) as f:
            self.assertEqual(f.read(), before)
        self.assertEqual([n for n in os.listdir(os.path.dirname(conf)) if n.startswith(".")], [])

        # Again without --url and --token: an upgrade that keeps the config.
        proc = self.install(root)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("keeping the existing", proc.stdout)
        with open(conf) as f:
            self.assertEqual(f.read(), before)

    def test_refuses_bad_arguments(self):
        root = harness.tmpdir("bad-")
        for args, why in ((["--url", "ftp://x", "--token", "t"], "must start with http"),
                          (["--url", "http://x"], "go together"),
                          (["--url", "http://x", "--token", "a b"], "characters"),
                          (["--url", "http://x", "--token", "t", "--set", "token=x"], "own option"),
                          (["--bogus"], "unknown argument")):
            proc = self.install(root, *args)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertIn(why, proc.stderr, args)
        self.assertEqual(os.listdir(root), [])
