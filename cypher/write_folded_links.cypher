// Writes the edges of a renormalize batch onto their target identities: creates a missing edge (HAS_IDENTITY
// when linking, OBSERVED otherwise) with the given properties, or sets them on the profile's existing edge.
// Params: $links [{profile_id, key, value, raw, source, rule_version, first_seen, last_seen, linking, exists}]
// Returns: written
UNWIND $links AS l
MATCH (p:Profile {id: l.profile_id}), (i:Identity {key: l.key, value: l.value})
USING INDEX p:Profile(id) USING INDEX i:Identity(key, value)
FOREACH (_ IN CASE WHEN NOT l.exists AND l.linking THEN [1] ELSE [] END |
  CREATE (p)-[:HAS_IDENTITY {raw: l.raw, source: l.source, rule_version: l.rule_version,
                             first_seen: l.first_seen, last_seen: l.last_seen}]->(i))
FOREACH (_ IN CASE WHEN NOT l.exists AND NOT l.linking THEN [1] ELSE [] END |
  CREATE (p)-[:OBSERVED {raw: l.raw, source: l.source, rule_version: l.rule_version,
                         first_seen: l.first_seen, last_seen: l.last_seen}]->(i))
WITH p, i, l
CALL (p, i, l) {
  WITH p, i, l WHERE l.exists
  MATCH (p)-[e:HAS_IDENTITY|OBSERVED]->(i)
  SET e.raw = l.raw, e.source = l.source, e.first_seen = l.first_seen, e.last_seen = l.last_seen
}
RETURN count(*) AS written
