// Takes or renews the retention lease, in one transaction: it becomes $replica's when nobody holds it, when its
// holder's time ran out, or when $replica holds it already. The lease node is write-locked before it is read, so
// two replicas cannot both take it. A run its previous holder left RUNNING (the holder died or lost the lease)
// is marked ABANDONED, finished when that lease lapsed.
// Params: $lease, $replica, $now, $expires_at
// Returns: acquired, holder, expires_at, last_run_started_at, changes_trimmed (the change log events the retention
//   runs trimmed so far, cypher/trim_changes.cypher)
MERGE (l:RetentionLease {name: $lease})
SET l.version = coalesce(l.version, 0) + 1
WITH l, l.holder AS previous, l.expires_at AS lapsed_at, l.run_id AS previous_run
WITH l, previous, lapsed_at, previous_run,
     previous IS NULL OR previous = $replica OR coalesce(lapsed_at <= $now, true) AS acquired
OPTIONAL MATCH (r:RetentionRun {id: previous_run})
  WHERE acquired AND previous <> $replica AND r.status = 'RUNNING'
SET r.status = 'ABANDONED', r.finished_at = lapsed_at, r.error = 'LEASE_EXPIRED'
SET l.holder = CASE WHEN acquired THEN $replica ELSE previous END,
    l.expires_at = CASE WHEN acquired THEN $expires_at ELSE lapsed_at END,
    l.acquired_at = CASE WHEN acquired AND coalesce(previous <> $replica, true) THEN $now ELSE l.acquired_at END,
    l.run_id = CASE WHEN acquired AND coalesce(previous <> $replica, true) THEN null ELSE previous_run END
RETURN acquired, l.holder AS holder, l.expires_at AS expires_at, l.last_run_started_at AS last_run_started_at,
       coalesce(l.changes_trimmed, 0) AS changes_trimmed
