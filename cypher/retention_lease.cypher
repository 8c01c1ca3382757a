// The retention lease as stored (no row when no replica ever ran retention), with the change log events its runs
// trimmed so far ([audit] keep_days). Never writes.
// Params: $lease
// Returns: holder, expires_at, last_run_started_at, changes_trimmed, changes_trimmed_at
MATCH (l:RetentionLease {name: $lease})
RETURN l.holder AS holder, l.expires_at AS expires_at, l.last_run_started_at AS last_run_started_at,
       coalesce(l.changes_trimmed, 0) AS changes_trimmed, l.changes_trimmed_at AS changes_trimmed_at
