// Records an erasure receipt (no personal data: ids, who, when, counts). Idempotent on request id. The receipt keeps
// its subject (the profile id the request named) and the ids of the profiles it deleted, so a later request with
// the same id is recognised as a repeat only for the same subject.
// Params: $request_id, $requested_by, $reason, $now, $subject, $profile_ids, $profiles_deleted, $identities_deleted,
//   $suppressed, $records_suppressed
// `created` is false when a concurrent erasure with the same request id committed its receipt while this one worked
// (the MERGE waited for its lock on the request id): the caller rolls back and tries again, and then finds it.
// Returns: receipt, created
MERGE (r:ErasureReceipt {request_id: $request_id})
  ON CREATE SET r.status = 'COMPLETED', r.requested_by = $requested_by, r.reason = $reason, r.at = $now,
                r.subject = $subject, r.profile_ids = $profile_ids,
                r.profiles_deleted = $profiles_deleted, r.identities_deleted = $identities_deleted,
                r.suppressed = $suppressed, r.records_suppressed = $records_suppressed, r.created_now = true
WITH r, coalesce(r.created_now, false) AS created
REMOVE r.created_now
RETURN r {.*} AS receipt, created
