// The export statement idgraph used before the streaming export (app/db/export.py): bench/export.py times it
// as the baseline. Not used by the app.
// One page of profiles in id order, each with the id of its customer (the oldest profile of its component).
// Keyset pagination keeps memory flat. The component is collected first so the planner keeps the pruning BFS
// (sorting inside the same subquery made it enumerate paths instead).
// Params: $after, $limit, $max_nodes. Returns: profile_id, source, source_id, customer_id
MATCH (p:Profile)
WHERE p.id > $after
WITH p ORDER BY p.id LIMIT $limit
CALL (p) {
  MATCH (p)-[:HAS_IDENTITY|MERGED_INTO*0..]-(n)
  WITH DISTINCT n
  LIMIT $max_nodes + 1
  RETURN collect(n) AS nodes
}
CALL (nodes) {
  UNWIND nodes AS m
  WITH m WHERE m:Profile
  RETURN m.id AS customer_id ORDER BY m.created_at, m.id LIMIT 1
}
RETURN p.id AS profile_id, p.source AS source, p.source_id AS source_id, customer_id
