// The state of existing identities, for a renormalize dry run (which must not create the targets). Never writes.
// Params: $identities [{key, value}]
// Returns: key, value, blocked, saturated, linking (profiles linked through it)
UNWIND $identities AS ident
MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
RETURN i.key AS key, i.value AS value, coalesce(i.blocked, false) AS blocked,
       coalesce(i.saturated, false) AS saturated, COUNT { (i)<-[:HAS_IDENTITY]-() } AS linking
