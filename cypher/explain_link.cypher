// The shortest chain of linking edges between two profiles. Never writes.
// Params: $a, $b. Returns: nodes [{kind, id, key, value}], rels [{type, from, to, raw, source, first_seen,
// last_seen, at, by, reason}] (empty when not connected)
MATCH (a:Profile {id: $a}), (b:Profile {id: $b})
OPTIONAL MATCH path = shortestPath((a)-[:HAS_IDENTITY|MERGED_INTO*..64]-(b))
RETURN [n IN coalesce(nodes(path), []) |
          CASE WHEN n:Profile THEN {kind: 'Profile', id: n.id} ELSE {kind: 'Identity', key: n.key, value: n.value} END
       ] AS nodes,
       [r IN coalesce(relationships(path), []) | {
          type: type(r), from: elementId(startNode(r)), to: elementId(endNode(r)),
          raw: r.raw, source: r.source, first_seen: r.first_seen, last_seen: r.last_seen,
          at: r.at, by: r.by, reason: r.reason}] AS rels,
       [n IN coalesce(nodes(path), []) | elementId(n)] AS element_ids
