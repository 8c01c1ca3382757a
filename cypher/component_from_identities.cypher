// The profiles of the component of each seed identity: breadth-first over linking edges only.
// DISTINCT right above the unbounded expand lets the planner use the pruning BFS (VarLengthExpand(Pruning,BFS)),
// a node-set walk rather than path enumeration. LIMIT bounds the work; size > $max_nodes means truncated.
// Params: $identities [{key, value}], $max_nodes
// Returns: key, value, profile_ids, node_count
UNWIND $identities AS ident
MATCH (s:Identity {key: ident.key, value: ident.value}) USING INDEX s:Identity(key, value)
CALL (s) {
  MATCH (s)-[:HAS_IDENTITY|MERGED_INTO*0..]-(n)
  WITH DISTINCT n
  LIMIT $max_nodes + 1
  RETURN collect(n) AS nodes
}
RETURN s.key AS key, s.value AS value, [x IN nodes WHERE x:Profile | x.id] AS profile_ids, size(nodes) AS node_count
