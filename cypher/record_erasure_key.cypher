// Records the erasure key's fingerprint when the database has none (the first writer); MERGE on the constrained
// singleton: of two writers racing with different keys, one records its key and the other reads it back.
// Params: $id, $fingerprint, $now
// Returns one row: fingerprint, state, generation, wrapped, rotating_to (as stored, maybe by another writer)
MERGE (k:ErasureKey {id: $id})
  ON CREATE SET k.fingerprint = $fingerprint, k.state = 'active', k.generation = 1, k.recorded_at = $now
RETURN k.fingerprint AS fingerprint, k.state AS state, k.generation AS generation, k.wrapped AS wrapped,
       k.rotating_to AS rotating_to, false AS unrecorded_list
