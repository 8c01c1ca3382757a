// Marks identities as blocked (the strategy's blocked list now names them) and turns their linking edges into
// non-linking OBSERVED edges with the same properties, as saturate_identities.cypher does for the fan-out limit.
// Params: $identities [{key, value}], $now. Returns: edges (linking edges turned)
UNWIND $identities AS ident
MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
SET i.blocked = true, i.blocked_at = coalesce(i.blocked_at, $now)
WITH i
OPTIONAL MATCH (p:Profile)-[e:HAS_IDENTITY]->(i)
CALL (p, e, i) {
  WITH p, e, i WHERE e IS NOT NULL
  CREATE (p)-[o:OBSERVED]->(i)
  SET o = properties(e)
  DELETE e
}
RETURN count(e) AS edges
