// Merges source into target with an explicit, reversible edge. Idempotent: a second call changes nothing.
// Call it with both profiles locked. No row when either profile does not exist.
// Params: $source_id, $target_id, $now, $by, $reason
// Returns: created
MATCH (s:Profile {id: $source_id}), (t:Profile {id: $target_id})
MERGE (s)-[m:MERGED_INTO]->(t)
  ON CREATE SET m.at = $now, m.by = $by, m.reason = $reason, m.created = true
WITH m, coalesce(m.created, false) AS created
REMOVE m.created
RETURN created
