// The retention lease as stored (no row when no replica ever ran retention). Never writes.
// Params: $lease
// Returns: holder, expires_at, last_run_started_at
MATCH (l:RetentionLease {name: $lease})
RETURN l.holder AS holder, l.expires_at AS expires_at, l.last_run_started_at AS last_run_started_at
