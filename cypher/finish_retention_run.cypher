// Writes a run's outcome onto its receipt and clears the run from the lease. A run another replica already
// marked ABANDONED (its lease lapsed) keeps that status but gets its real finish time and counts.
// Params: $lease, $run_id, $finished_at, $status, $candidates, $profiles_deleted, $identities_deleted, $failed,
//         $error, $changes_trimmed
// Returns: run
MATCH (r:RetentionRun {id: $run_id})
WITH r, r.status = 'RUNNING' AS open
SET r.status = CASE WHEN open THEN $status ELSE r.status END,
    r.error = CASE WHEN open THEN $error ELSE r.error END,
    r.finished_at = $finished_at, r.candidates = $candidates, r.profiles_deleted = $profiles_deleted,
    r.identities_deleted = $identities_deleted, r.failed = $failed, r.changes_trimmed = $changes_trimmed
WITH r
OPTIONAL MATCH (l:RetentionLease {name: $lease}) WHERE l.run_id = $run_id
SET l.run_id = null
RETURN r {.*} AS run
