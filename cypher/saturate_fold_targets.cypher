// Fold targets that a renormalize batch pushed over the fan-out limit stop linking, exactly as the write path
// does: their HAS_IDENTITY edges become OBSERVED edges (same properties), so the component query never walks
// through them. Params: $identities [{key, value}], $now. Returns: converted
UNWIND $identities AS ident
MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
SET i.saturated = true, i.saturated_at = $now
WITH i
OPTIONAL MATCH (p:Profile)-[e:HAS_IDENTITY]->(i)
CALL (p, e, i) {
  WITH p, e, i WHERE e IS NOT NULL
  CREATE (p)-[o:OBSERVED]->(i)
  SET o = properties(e)
  DELETE e
}
RETURN count(e) AS converted
