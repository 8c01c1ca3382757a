// The database's erasure key: a plain read of the singleton node, which takes no lock, so the check at the start of
// every write transaction does not serialize writers.
// Params: $id
// Returns one row (all null when no key is recorded): fingerprint, state, generation, wrapped, rotating_to, and
//   unrecorded_list: no key is recorded but a suppression list exists (made before idgraph recorded its key: the
//   first writer must not record just any key; `idgraph key adopt` records the one that made the list)
OPTIONAL MATCH (k:ErasureKey {id: $id})
RETURN k.fingerprint AS fingerprint, k.state AS state, k.generation AS generation, k.wrapped AS wrapped,
       k.rotating_to AS rotating_to, k IS NULL AND EXISTS { MATCH (:Suppression) } AS unrecorded_list
