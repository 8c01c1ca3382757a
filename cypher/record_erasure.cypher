// Records an erasure receipt (no personal data). Idempotent on request id.
// Params: $request_id, $requested_by, $reason, $now, $profiles_deleted, $identities_deleted, $suppressed
// Returns: receipt
MERGE (r:ErasureReceipt {request_id: $request_id})
  ON CREATE SET r.status = 'COMPLETED', r.requested_by = $requested_by, r.reason = $reason, r.at = $now,
                r.profiles_deleted = $profiles_deleted, r.identities_deleted = $identities_deleted,
                r.suppressed = $suppressed
RETURN r {.*} AS receipt
