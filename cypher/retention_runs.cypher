// The latest retention runs, newest first (receipts: counts, times, replica; no personal data). Never writes.
// Params: $limit
// Returns: run
MATCH (r:RetentionRun)
RETURN r {.*} AS run
ORDER BY r.started_at DESC, r.id DESC
LIMIT $limit
