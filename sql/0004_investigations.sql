-- Investigations: before an alert is mailed, the last good and the first
-- bad commit are re-run interleaved on one worker (confirmation), and a
-- range of more than one commit is bisected down to its first bad commit.

CREATE TYPE investigation_state AS ENUM ('confirming', 'bisecting', 'done',
	'overturned', 'failed');

-- One investigation per target, scenario, kind, class of metric and commit
-- range: the alerts of one run that share them (tokens/s, TTFT, ... of one
-- latency run: "speed"; its peak RSS: "memory") share its jobs, and the
-- alert with the largest confirmed change steers the bisection.  The range
-- narrows as bisection goes on.
CREATE TABLE investigations (
	id		bigserial PRIMARY KEY,
	project_id	bigint NOT NULL REFERENCES projects(id),
	target_id	bigint NOT NULL REFERENCES targets(id),
	scenario	text NOT NULL,
	kind		alert_kind NOT NULL,
	metric_class	text NOT NULL DEFAULT '',	-- perf: speed, memory or power
	state		investigation_state NOT NULL,
	good_commit_id	bigint NOT NULL REFERENCES commits(id),	-- the reference: last good
	bad_commit_id	bigint NOT NULL REFERENCES commits(id),	-- where it was seen
	range_commits	bigint[] NOT NULL DEFAULT '{}',	-- after good, up to bad, oldest first
	lo		integer NOT NULL DEFAULT 0,	-- last known good: 0 = good_commit
	hi		integer NOT NULL DEFAULT 0,	-- first known bad, 1-based in range_commits
	probe_commit_id	bigint REFERENCES commits(id),	-- measured by the current step
	round		integer NOT NULL DEFAULT 0,	-- bisection rounds begun
	step_from_job	bigint NOT NULL DEFAULT 0,	-- the current step's jobs have ids >= this
	params		jsonb NOT NULL DEFAULT '{}',	-- the scenario settings of the alert's run
	worker_id	bigint REFERENCES workers(id),	-- every job runs here once one started
	lead_alert_id	bigint,				-- whose series steers bisection
	change		float8,				-- confirmed relative change, + is worse
	steps		jsonb NOT NULL DEFAULT '[]',
	reason		text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (target_id, scenario, kind, metric_class, good_commit_id,
		bad_commit_id)
);
CREATE INDEX investigations_active ON investigations (id)
	WHERE state IN ('confirming', 'bisecting');

ALTER TABLE alerts ADD COLUMN investigation_id bigint REFERENCES investigations(id);
-- An alert under investigation is not mailed yet.
ALTER TABLE alerts ADD COLUMN investigating boolean NOT NULL DEFAULT false;

ALTER TABLE jobs ADD COLUMN investigation_id bigint REFERENCES investigations(id);
-- Interleaved pairs must run on one machine: the jobs of an investigation
-- are pinned to the worker that claimed the first of them.
ALTER TABLE jobs ADD COLUMN pinned_worker_id bigint REFERENCES workers(id);
CREATE INDEX jobs_investigation ON jobs (investigation_id)
	WHERE investigation_id IS NOT NULL;
