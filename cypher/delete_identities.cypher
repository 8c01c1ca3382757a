// Deletes identities a renormalize batch folded away, once their edges were written onto the targets.
// Params: $identities [{key, value}]. Returns: deleted
UNWIND $identities AS ident
MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
DETACH DELETE i
RETURN count(*) AS deleted
