-- Detection and alerts: a verdict for every stored point, suspect runs,
-- incidents grouping the alerts of one commit, and their e-mail.

-- Why a run is kept out of baselines: throttling, a changed machine, noise.
ALTER TABLE runs ADD COLUMN suspect text[] NOT NULL DEFAULT '{}';

-- What the detector decided about each point: the record of every change,
-- including those too small or too uncertain to alert on.
CREATE TYPE verdict AS ENUM ('baseline', 'noise', 'suspect', 'regression',
	'improvement', 'excluded');

CREATE TABLE detections (
	series_id	bigint NOT NULL REFERENCES series(id),
	run_id		bigint NOT NULL REFERENCES runs(id),
	commit_id	bigint NOT NULL REFERENCES commits(id),
	verdict		verdict NOT NULL,
	change_pct	float8,		-- against the baseline, + is worse
	z		float8,
	p_value		float8,
	baseline_n	integer NOT NULL DEFAULT 0,
	details		jsonb NOT NULL DEFAULT '{}',
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (series_id, run_id)
);
CREATE INDEX detections_commit ON detections (commit_id);

-- The runs of a series that start its current baseline (a confirmed change).
ALTER TABLE series ADD COLUMN baseline_from_run bigint;

CREATE TYPE mail_state AS ENUM ('pending', 'sent', 'failed', 'none');

-- The alerts of one commit, across targets and metrics, are one incident.
CREATE TABLE incidents (
	id		bigserial PRIMARY KEY,
	project_id	bigint NOT NULL REFERENCES projects(id),
	commit_id	bigint NOT NULL REFERENCES commits(id),
	state		alert_state NOT NULL DEFAULT 'open',
	mail_state	mail_state NOT NULL DEFAULT 'pending',
	mail_attempts	integer NOT NULL DEFAULT 0,
	mail_error	text,
	mail_next_at	timestamptz NOT NULL DEFAULT now(),
	mailed_at	timestamptz,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (project_id, commit_id)
);
CREATE INDEX incidents_mail ON incidents (mail_next_at) WHERE mail_state = 'pending';

ALTER TABLE alerts ADD COLUMN incident_id bigint REFERENCES incidents(id);
ALTER TABLE alerts ADD COLUMN run_id bigint REFERENCES runs(id);
ALTER TABLE alerts ADD COLUMN resolved_by text;	-- 'recovered', 'user', ...
-- One alert per series, kind and first bad commit.
CREATE UNIQUE INDEX alerts_once ON alerts (series_id, kind, bad_commit_id);
CREATE INDEX alerts_open ON alerts (series_id, kind) WHERE state IN ('open', 'acknowledged');

-- Runs wait here for the detector; several servers share the work.
ALTER TABLE runs ADD COLUMN detected_at timestamptz;
CREATE INDEX runs_undetected ON runs (id) WHERE detected_at IS NULL;
