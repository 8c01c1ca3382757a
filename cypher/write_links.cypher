// Creates new edges (HAS_IDENTITY when linking, OBSERVED otherwise) and refreshes existing ones.
// Params: $links [{profile_id, key, value, raw, source, rule_version, linking, exists}], $now
UNWIND $links AS l
MATCH (p:Profile {id: l.profile_id}), (i:Identity {key: l.key, value: l.value})
USING INDEX p:Profile(id) USING INDEX i:Identity(key, value)
FOREACH (_ IN CASE WHEN NOT l.exists AND l.linking THEN [1] ELSE [] END |
  CREATE (p)-[:HAS_IDENTITY {raw: l.raw, source: l.source, rule_version: l.rule_version,
                             first_seen: $now, last_seen: $now}]->(i))
FOREACH (_ IN CASE WHEN NOT l.exists AND NOT l.linking THEN [1] ELSE [] END |
  CREATE (p)-[:OBSERVED {raw: l.raw, source: l.source, rule_version: l.rule_version,
                         first_seen: $now, last_seen: $now}]->(i))
WITH p, i, l WHERE l.exists
MATCH (p)-[e:HAS_IDENTITY|OBSERVED]->(i)
SET e.last_seen = $now, e.raw = l.raw, e.source = l.source
