// Gets or creates (as a placeholder) the identity node of each value, so this transaction holds its place: a writer
// creating it meanwhile has committed first (its node is matched, held) or waits for this transaction to end.
// Params: $identities [{key, value}] (sorted). Returns: key, value, held (a profile holds it)
UNWIND $identities AS ident
MERGE (i:Identity {key: ident.key, value: ident.value})
  ON CREATE SET i.placeholder = true
RETURN i.key AS key, i.value AS value, EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-() } AS held
