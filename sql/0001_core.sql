-- The core schema: projects, hardware targets, workers, commits, the job queue,
-- runs, series and their points, alerts and webhook deliveries.

CREATE TABLE projects (
	id		bigserial PRIMARY KEY,
	name		text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z][A-Za-z0-9._-]{0,63}$'),
	repo_url	text NOT NULL,
	default_branch	text NOT NULL DEFAULT 'main',
	webhook_secret	text,
	settings	jsonb NOT NULL DEFAULT '{}',
	reference_commit text,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE targets (
	id		bigserial PRIMARY KEY,
	name		text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z][A-Za-z0-9._-]{0,63}$'),
	arch		text NOT NULL DEFAULT '',
	cpu		text NOT NULL DEFAULT '',
	gpu		text NOT NULL DEFAULT '',
	ram_mb		bigint NOT NULL DEFAULT 0 CHECK (ram_mb >= 0),
	labels		jsonb NOT NULL DEFAULT '{}',
	active		boolean NOT NULL DEFAULT true,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workers (
	id		bigserial PRIMARY KEY,
	name		text NOT NULL,
	target_id	bigint NOT NULL REFERENCES targets(id),
	token_hash	bytea NOT NULL,		-- SHA-256 of the secret part of the token
	version		text NOT NULL DEFAULT '',
	last_heartbeat	timestamptz,
	revoked		boolean NOT NULL DEFAULT false,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admin_tokens (
	id		bigserial PRIMARY KEY,
	name		text NOT NULL,
	token_hash	bytea NOT NULL,
	revoked		boolean NOT NULL DEFAULT false,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE commits (
	id		bigserial PRIMARY KEY,
	project_id	bigint NOT NULL REFERENCES projects(id),
	sha		text NOT NULL CHECK (sha ~ '^[0-9a-f]{7,64}$'),
	parents		text[] NOT NULL DEFAULT '{}',
	author_name	text NOT NULL DEFAULT '',
	author_email	text NOT NULL DEFAULT '',
	message		text NOT NULL DEFAULT '',
	committed_at	timestamptz,
	branch		text NOT NULL DEFAULT '',
	created_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (project_id, sha)
);

CREATE TYPE job_state AS ENUM ('queued', 'running', 'done', 'failed', 'cancelled');
CREATE TYPE job_reason AS ENUM ('push', 'bisect', 'manual', 'baseline', 'confirm');

CREATE TABLE jobs (
	id		bigserial PRIMARY KEY,
	project_id	bigint NOT NULL REFERENCES projects(id),
	commit_id	bigint NOT NULL REFERENCES commits(id),
	target_id	bigint NOT NULL REFERENCES targets(id),
	branch		text NOT NULL,
	scenarios	text[] NOT NULL,
	params		jsonb NOT NULL DEFAULT '{}',	-- overrides of the manifest's scenario settings
	reason		job_reason NOT NULL DEFAULT 'manual',
	priority	integer NOT NULL DEFAULT 0,	-- higher goes first
	state		job_state NOT NULL DEFAULT 'queued',
	attempt		integer NOT NULL DEFAULT 0,	-- incremented by every claim
	max_attempts	integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
	worker_id	bigint REFERENCES workers(id),
	lease_expires_at timestamptz,
	fail_reason	text,
	log_tail	text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	started_at	timestamptz,
	finished_at	timestamptz
);
-- The claim query's path: queued jobs of one target, by priority then age.
CREATE INDEX jobs_claim ON jobs (target_id, priority DESC, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_commit ON jobs (commit_id);

-- Wake the servers' long-polling claims of a target when one of its jobs is queued.
CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('bl_jobs', NEW.target_id::text);
	RETURN NULL;
END $$;
CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF state ON jobs
	FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION jobs_notify();

CREATE TABLE runs (
	id		bigserial PRIMARY KEY,
	job_id		bigint NOT NULL REFERENCES jobs(id),
	attempt		integer NOT NULL,
	worker_id	bigint NOT NULL REFERENCES workers(id),
	environment	jsonb NOT NULL,
	build_log	text NOT NULL DEFAULT '',
	build_duration_s float8,
	duration_s	float8,
	info		jsonb NOT NULL DEFAULT '{}',	-- per-scenario notes from the worker
	response	jsonb NOT NULL,			-- the answer given, replayed on retries
	created_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (job_id, attempt)
);

-- Time series recorded inside one run (RSS, tokens/s, temperature over the run).
CREATE TABLE run_series (
	run_id		bigint NOT NULL REFERENCES runs(id),
	scenario	text NOT NULL,
	name		text NOT NULL,
	unit		text NOT NULL,
	t		float8[] NOT NULL,
	v		float8[] NOT NULL,
	PRIMARY KEY (run_id, scenario, name)
);

CREATE TYPE direction AS ENUM ('lower', 'higher');

CREATE TABLE series (
	id		bigserial PRIMARY KEY,
	project_id	bigint NOT NULL REFERENCES projects(id),
	target_id	bigint NOT NULL REFERENCES targets(id),
	branch		text NOT NULL,
	scenario	text NOT NULL,
	metric		text NOT NULL,
	unit		text NOT NULL,
	direction	direction NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (project_id, target_id, branch, scenario, metric)
);

-- One point per series and run: the summary value (median of the raw samples
-- unless the worker gave one), the p5..p95 spread, the sample count and the raw samples.
CREATE TABLE points (
	series_id	bigint NOT NULL,
	ts		timestamptz NOT NULL,
	commit_id	bigint NOT NULL,
	run_id		bigint NOT NULL,
	value		float8 NOT NULL,
	lo		float8 NOT NULL,
	hi		float8 NOT NULL,
	n		integer NOT NULL,
	samples		float8[] NOT NULL
) PARTITION BY RANGE (ts);
-- Covering index: a chart's range scan reads (ts, value, run) without the heap.
CREATE INDEX points_series_ts ON points (series_id, ts) INCLUDE (value, run_id);
CREATE INDEX points_run ON points (run_id);
CREATE INDEX points_commit ON points (commit_id, series_id);

-- Creates the month partition of points holding ts, if it is missing.  An
-- advisory lock keeps two servers from racing to create the same one.
CREATE FUNCTION points_partition_for(ts timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	lo date := date_trunc('month', ts AT TIME ZONE 'UTC')::date;
	hi date := (date_trunc('month', ts AT TIME ZONE 'UTC') + interval '1 month')::date;
	part text := format('points_y%sm%s', to_char(lo, 'YYYY'), to_char(lo, 'MM'));
BEGIN
	IF to_regclass(part) IS NULL THEN
		PERFORM pg_advisory_xact_lock(hashtext('points_partition'));
		IF to_regclass(part) IS NULL THEN
			EXECUTE format('CREATE TABLE %I PARTITION OF points FOR VALUES FROM (%L) TO (%L)',
				part, lo::timestamp AT TIME ZONE 'UTC', hi::timestamp AT TIME ZONE 'UTC');
		END IF;
	END IF;
	RETURN part;
END $$;
SELECT points_partition_for(now());

CREATE TYPE alert_kind AS ENUM ('perf', 'accuracy', 'leak', 'degradation');
CREATE TYPE alert_state AS ENUM ('open', 'acknowledged', 'resolved', 'invalid');

CREATE TABLE alerts (
	id		bigserial PRIMARY KEY,
	series_id	bigint NOT NULL REFERENCES series(id),
	kind		alert_kind NOT NULL,
	good_commit_id	bigint REFERENCES commits(id),
	bad_commit_id	bigint NOT NULL REFERENCES commits(id),
	before_value	float8,
	after_value	float8,
	change_pct	float8,
	p_value		float8,
	state		alert_state NOT NULL DEFAULT 'open',
	details		jsonb NOT NULL DEFAULT '{}',
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
	delivery_id	text NOT NULL,
	forge		text NOT NULL,
	project_id	bigint NOT NULL REFERENCES projects(id),
	received_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (forge, delivery_id)
);

-- Reads a time given as ISO 8601 text or as epoch seconds; NULL stays NULL.
CREATE FUNCTION bl_time(s text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN s IS NULL OR s = '' THEN NULL
		WHEN s ~ '^[0-9]+(\.[0-9]+)?$' THEN to_timestamp(s::float8)
		ELSE s::timestamptz END
$$;
