// Automatic retention: one lease node per name (the replica that may run the purge), and one receipt per run
// (counts, times, replica; no personal data), listed newest first by `idgraph purge --status`.
CREATE CONSTRAINT retention_lease_name IF NOT EXISTS
FOR (l:RetentionLease) REQUIRE l.name IS UNIQUE;

CREATE CONSTRAINT retention_run_id IF NOT EXISTS
FOR (r:RetentionRun) REQUIRE r.id IS UNIQUE;

CREATE INDEX retention_run_started_at IF NOT EXISTS
FOR (r:RetentionRun) ON (r.started_at);
