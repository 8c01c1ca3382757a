// Ends a rotation once no entry of the suppression list is left un-re-keyed: the new key's fingerprint becomes the
// database's, with the retired keys wrapped under the new key, and writes are allowed again (with the new key).
// Params: $id, $target (the new key's fingerprint), $wrapped, $now
// Returns: generation (one row when done; none when entries are left or no rotation to $target runs)
MATCH (k:ErasureKey {id: $id})
WHERE k.state = 'rotating' AND k.rotating_to = $target
  AND NOT EXISTS { MATCH (s:Suppression) WHERE coalesce(s.rekeyed_for, '') <> $target }
SET k.fingerprint = $target, k.state = 'active', k.generation = k.generation + 1, k.wrapped = $wrapped,
    k.rotated_at = $now
REMOVE k.rotating_to, k.rotation_started_at
RETURN k.generation AS generation
