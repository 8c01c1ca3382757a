// Parked batches in cursor order: all of them, or ($id not null) the one with that id. Never writes.
// Params: $id, $limit
// Returns: batch (first_seq, last_seq, events, attempts, last_error, parked_at, retried_at)
MATCH (b:ParkedChangeBatch)
WHERE $id IS NULL OR b.id = $id
RETURN b {.*} AS batch
ORDER BY b.first_seq
LIMIT $limit
