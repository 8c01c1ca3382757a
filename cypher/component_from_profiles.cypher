// The profiles of the component of each seed profile: breadth-first over linking edges only (see
// component_from_identities.cypher for why this shape).
// Params: $profile_ids [str], $max_nodes
// Returns: seed_id, profile_ids, node_count
UNWIND $profile_ids AS seed_id
MATCH (s:Profile {id: seed_id}) USING INDEX s:Profile(id)
CALL (s) {
  MATCH (s)-[:HAS_IDENTITY|MERGED_INTO*0..]-(n)
  WITH DISTINCT n
  LIMIT $max_nodes + 1
  RETURN collect(n) AS nodes
}
RETURN seed_id, [x IN nodes WHERE x:Profile | x.id] AS profile_ids, size(nodes) AS node_count
