// Starts a retention run, fenced by the lease: only while $replica holds an unexpired lease and the last run (by
// any replica) started no later than $due_before (= now - interval). Records the start on the lease, renews the
// lease to $expires_at (the run starts with a whole lease), and creates the run's receipt, RUNNING. Locks the
// lease node before reading it.
// Params: $lease, $replica, $now, $expires_at, $due_before, $run_id, $inactive_days (null: no [retention], the run
//   only trims the change log)
// Returns: started, last_run_started_at (no row: there is no lease)
MATCH (l:RetentionLease {name: $lease})
SET l.version = coalesce(l.version, 0) + 1
WITH l, l.holder = $replica AND l.expires_at > $now AND coalesce(l.last_run_started_at <= $due_before, true) AS started
FOREACH (_ IN CASE WHEN started THEN [1] ELSE [] END |
  SET l.last_run_started_at = $now, l.run_id = $run_id, l.expires_at = $expires_at
  CREATE (:RetentionRun {id: $run_id, replica: $replica, started_at: $now, inactive_days: $inactive_days,
                         status: 'RUNNING', candidates: 0, profiles_deleted: 0, identities_deleted: 0, failed: 0})
)
RETURN started, l.last_run_started_at AS last_run_started_at
