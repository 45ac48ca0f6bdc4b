-- Counted metrics and investigations led by them.
--
-- A counted series (instructions, estimated cycles) is deterministic: the
-- same binary on the same requests gives the same count, so one run per
-- commit decides what a timed series needs interleaved pairs for.
ALTER TABLE series ADD COLUMN counted boolean NOT NULL DEFAULT false;

-- The detector only records that an alert wants investigating; the
-- investigation loop takes it up once the whole run is judged, so it sees
-- every alert of the run and can let the counted ones lead.
ALTER TABLE alerts ADD COLUMN investigation_wanted boolean NOT NULL DEFAULT false;
CREATE INDEX alerts_investigation_wanted ON alerts (id) WHERE investigation_wanted;

-- A timed investigation whose range a counted one of the same class is
-- bisecting waits for it ('following'), then checks the first bad commit
-- the leader found against its parent on its own interleaved pairs (the
-- boundary): it stands there, or stays undecided over its range.
ALTER TYPE investigation_state ADD VALUE 'following';
-- A bisection that could not place the change on a commit at this noise:
-- its alerts keep their range and blame nobody.
ALTER TYPE investigation_state ADD VALUE 'undecided';
ALTER TABLE investigations ADD COLUMN leader_id bigint REFERENCES investigations(id);
ALTER TABLE investigations ADD COLUMN boundary boolean NOT NULL DEFAULT false;
-- The reference of the current pairs: the last good commit, or on a
-- boundary the parent of the commit under test (probe_commit_id).
ALTER TABLE investigations ADD COLUMN ref_commit_id bigint REFERENCES commits(id);

-- An incident whose alerts bisection moved to another commit's incident
-- before it was mailed points there, so a link to it still leads to them.
ALTER TABLE incidents ADD COLUMN moved_to bigint REFERENCES incidents(id);
