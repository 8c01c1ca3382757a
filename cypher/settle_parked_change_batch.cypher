// The outcome of redelivering a parked batch: delivered ($error null) deletes it; failed counts one more attempt
// and keeps the error class.
// Params: $id, $error, $now
// Returns: settled (0: no such batch, 1)
OPTIONAL MATCH (b:ParkedChangeBatch {id: $id})
SET b.attempts = b.attempts + 1, b.last_error = coalesce($error, b.last_error), b.retried_at = $now
WITH b, CASE WHEN b IS NULL THEN 0 ELSE 1 END AS settled
FOREACH (_ IN CASE WHEN b IS NOT NULL AND $error IS NULL THEN [1] ELSE [] END | DELETE b)
RETURN settled
