// Extends the retention lease while $replica runs a purge, only if $replica still holds it (expired or not: had
// another replica taken it, the holder would have changed). Locks the lease node before reading it.
// Params: $lease, $replica, $expires_at
// Returns: renewed (0 or 1)
OPTIONAL MATCH (l:RetentionLease {name: $lease})
SET l.version = coalesce(l.version, 0) + 1
WITH l WHERE l.holder = $replica
SET l.expires_at = $expires_at
RETURN count(l) AS renewed
