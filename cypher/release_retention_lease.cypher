// Gives the retention lease up (at shutdown) if $replica holds it, so another replica need not wait for it to
// expire. Locks the lease node before reading it.
// Params: $lease, $replica, $now
// Returns: released (0 or 1)
OPTIONAL MATCH (l:RetentionLease {name: $lease})
SET l.version = coalesce(l.version, 0) + 1
WITH l WHERE l.holder = $replica
SET l.holder = null, l.expires_at = $now
RETURN count(l) AS released
