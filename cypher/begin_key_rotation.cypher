// Marks the erasure key "rotating" to the new key (compare-and-set: from the old key, active, or already rotating to
// the same new key when a rotation is resumed). Every write is refused from its commit on.
// Params: $id, $old (fingerprint), $new (fingerprint), $now
// Returns: started (one row when the node is marked; none when it holds another key or another rotation)
MATCH (k:ErasureKey {id: $id})
WHERE k.fingerprint = $old AND (k.state = 'active' OR k.rotating_to = $new)
SET k.state = 'rotating', k.rotating_to = $new, k.rotation_started_at = coalesce(k.rotation_started_at, $now)
RETURN true AS started
