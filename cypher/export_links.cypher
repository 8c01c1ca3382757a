// One page of profiles in id order (keyset: $after, $limit), as ONE record (one Bolt message per page, not one
// per profile: the driver's cost per record dominates an export otherwise), each profile with what joins it to
// others, for the export's union-find (app/db/export.py): its created_at as epoch nanoseconds (null when unset),
// the element ids of the identities it holds over HAS_IDENTITY that another profile holds too, and the profiles it
// was merged into (id and created_ns). Every profile is read once and every edge from it once: no component walk.
// Params: $after, $limit. Returns: rows [[profile id, created_ns, [identity element id], [[merged-into id, created_ns]]]], last
MATCH (p:Profile)
WHERE p.id > $after
WITH p ORDER BY p.id LIMIT $limit
RETURN collect([
  p.id,
  p.created_at.epochSeconds * 1000000000 + p.created_at.nanosecond,
  [(p)-[:HAS_IDENTITY]->(i) WHERE COUNT { (i)<-[:HAS_IDENTITY]-() } > 1 | elementId(i)],
  [(p)-[:MERGED_INTO]->(q) | [q.id, q.created_at.epochSeconds * 1000000000 + q.created_at.nanosecond]]
]) AS rows, max(p.id) AS last
