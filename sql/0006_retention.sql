-- Retention of points: drop whole month partitions that ended before a cutoff.

-- The partitions of points entirely before cutoff, oldest first.  A bound
-- reads "FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')".
CREATE FUNCTION points_partitions_before(cutoff timestamptz)
RETURNS TABLE (rel regclass, upper_bound timestamptz) LANGUAGE sql STABLE AS $$
	SELECT b.rel, b.upper_bound FROM (
		SELECT c.oid::regclass AS rel,
		       substring(pg_get_expr(c.relpartbound, c.oid)
		                 FROM 'TO \(''([^'']+)''\)')::timestamptz AS upper_bound
		  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		 WHERE i.inhparent = 'points'::regclass) b
	 WHERE b.upper_bound <= cutoff
	 ORDER BY b.upper_bound
$$;

-- Drops every partition of points whose upper bound is at or before cutoff,
-- that is every partition holding nothing newer than cutoff, and returns how
-- many it dropped.  Bounds are read from the catalog, not from the names, so
-- a partition made by hand is judged by what it holds too; the DEFAULT
-- partition and MAXVALUE bounds are never dropped.
--
-- Dropping takes the same advisory lock points_partition_for() takes, so a
-- partition is never created and dropped at once, and an exclusive lock on
-- points for a moment.  lock_timeout keeps a long query on points from
-- queueing every reader and writer behind the DROP: after 5 s the call fails
-- and drops nothing, and the caller tries again later.  A call with nothing
-- to drop takes no lock at all.
CREATE FUNCTION points_drop_before(cutoff timestamptz) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	part record;
	dropped int := 0;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM points_partitions_before(cutoff)) THEN
		RETURN 0;
	END IF;
	PERFORM set_config('lock_timeout', '5s', true);
	PERFORM pg_advisory_xact_lock(hashtext('points_partition'));
	FOR part IN SELECT * FROM points_partitions_before(cutoff) LOOP
		EXECUTE format('DROP TABLE %s', part.rel);
		dropped := dropped + 1;
	END LOOP;
	RETURN dropped;
END $$;
