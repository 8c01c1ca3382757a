// An identity shared by more profiles than the fan-out limit stops linking: its HAS_IDENTITY edges become
// OBSERVED edges (same properties), so the component query never walks through it.
// Params: $identities [{key, value}], $now
UNWIND $identities AS ident
MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
SET i.saturated = true, i.saturated_at = $now
WITH i
MATCH (p:Profile)-[e:HAS_IDENTITY]->(i)
CREATE (p)-[o:OBSERVED]->(i)
SET o = properties(e)
DELETE e
