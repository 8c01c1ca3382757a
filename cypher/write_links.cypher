// Second statement of an upsert. First, identities pushed over the fan-out limit stop linking: their
// HAS_IDENTITY edges become OBSERVED edges (same properties), so the component query never walks through them.
// Then new edges are created (HAS_IDENTITY when linking, OBSERVED otherwise) and existing ones refreshed.
// Params: $saturate [{key, value}], $links [{profile_id, key, value, raw, source, rule_version, linking, exists}],
//   $now. Returns: converted, written
CALL () {
  UNWIND $saturate AS ident
  MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
  SET i.saturated = true, i.saturated_at = $now
  WITH i
  MATCH (p:Profile)-[e:HAS_IDENTITY]->(i)
  CREATE (p)-[o:OBSERVED]->(i)
  SET o = properties(e)
  DELETE e
  RETURN count(*) AS converted
}
CALL () {
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
  RETURN count(*) AS refreshed
}
RETURN converted, refreshed
