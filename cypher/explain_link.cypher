// The shortest chain of linking edges between two profiles, bounded by the component size limit: the components of
// both profiles are walked first (breadth-first over linking edges, at most $max_nodes + 1 nodes each, as in
// component_from_profiles.cypher), and the shortest path is searched only when a component walked whole holds both
// profiles, so it never explores more than $max_nodes nodes. Never writes.
// Params: $a, $b, $max_nodes
// Returns: no row when either profile does not exist; else one row: too_large (neither component could be walked
//   whole within $max_nodes nodes, so whether the two are linked cannot be told), nodes [{kind, id, key, value}],
//   rels [{type, from, to, raw, source, first_seen, last_seen, at, by, reason}], element_ids (all three empty when
//   the profiles are not linked or too_large), cut_by [{key, value, contested_key, contested_values, profile_count}]
//   (when not linked: up to 10 contested identities a profile of each side holds, which would have joined them)
MATCH (a:Profile {id: $a}), (b:Profile {id: $b})
CALL (a) {
  MATCH (a)-[:HAS_IDENTITY|MERGED_INTO*0..]-(n)
  WITH DISTINCT n
  LIMIT $max_nodes + 1
  RETURN collect(n) AS from_a
}
CALL (b) {
  MATCH (b)-[:HAS_IDENTITY|MERGED_INTO*0..]-(n)
  WITH DISTINCT n
  LIMIT $max_nodes + 1
  RETURN collect(n) AS from_b
}
// A component walked whole (not over the limit) tells for sure whether the other profile is in it.
WITH a, b, from_a, from_b, size(from_a) <= $max_nodes AS whole_a, b IN from_a AS b_near,
     size(from_b) <= $max_nodes AS whole_b, a IN from_b AS a_near
WITH a, b, from_a, from_b, (whole_a AND b_near) OR (whole_b AND a_near) AS linked,
     NOT ((whole_a AND NOT b_near) OR (whole_b AND NOT a_near)) AS undecided
CALL (a, b, linked) {
  WITH a, b WHERE linked
  MATCH path = shortestPath((a)-[:HAS_IDENTITY|MERGED_INTO*]-(b))
  RETURN path
  UNION
  WITH a WHERE NOT linked
  RETURN null AS path
}
CALL (linked, from_a, from_b) {
  WITH from_a, from_b WHERE NOT linked
  UNWIND from_a AS x
  MATCH (x:Profile)-[:OBSERVED]->(i:Identity)
  WHERE coalesce(i.contested, false) AND EXISTS { MATCH (i)<-[:OBSERVED]-(y:Profile) WHERE y IN from_b }
  WITH DISTINCT i ORDER BY i.key, i.value LIMIT 10
  RETURN collect({key: i.key, value: i.value, contested_key: i.contested_key, contested_values: i.contested_values,
                  profile_count: COUNT { (i)<-[:HAS_IDENTITY|OBSERVED]-() }}) AS cut_by
}
RETURN undecided AND NOT linked AS too_large, cut_by,
       [n IN coalesce(nodes(path), []) |
          CASE WHEN n:Profile THEN {kind: 'Profile', id: n.id} ELSE {kind: 'Identity', key: n.key, value: n.value} END
       ] AS nodes,
       [r IN coalesce(relationships(path), []) | {
          type: type(r), from: elementId(startNode(r)), to: elementId(endNode(r)),
          raw: r.raw, source: r.source, first_seen: r.first_seen, last_seen: r.last_seen,
          at: r.at, by: r.by, reason: r.reason}] AS rels,
       [n IN coalesce(nodes(path), []) | elementId(n)] AS element_ids
