// Everything a resolution needs, in one statement (one round trip): each search identity found; for a linking
// one, its component (breadth-first over linking edges: DISTINCT right above the unbounded expand makes it a
// pruning BFS node-set walk, bounded by LIMIT); for a saturated one, the components of a few of its holders
// (the candidates); and every profile of those components with its edges. Never writes.
// Params: $identities [{key, value}], $max_nodes, $candidates
// Returns one row: seeds [{key, value, rule, rule_version, blocked, saturated, profile_count, holder,
//   profile_ids, node_count}], profiles [{profile, links, merges}]
UNWIND $identities AS ident
MATCH (s:Identity {key: ident.key, value: ident.value}) USING INDEX s:Identity(key, value)
CALL (s) {
  WITH s WHERE NOT coalesce(s.blocked, false) AND NOT coalesce(s.saturated, false)
  RETURN s AS start, null AS holder
  UNION
  WITH s WHERE coalesce(s.saturated, false) AND NOT coalesce(s.blocked, false)
  MATCH (s)<-[:OBSERVED]-(h:Profile)
  WITH h LIMIT $candidates
  RETURN h AS start, h.id AS holder
  UNION
  WITH s WHERE coalesce(s.blocked, false)
  RETURN null AS start, null AS holder
}
CALL (start) {
  MATCH (start)-[:HAS_IDENTITY|MERGED_INTO*0..]-(n)
  WITH DISTINCT n
  LIMIT $max_nodes + 1
  RETURN collect(n) AS nodes
}
WITH collect({
       key: s.key, value: s.value, rule: s.rule, rule_version: s.rule_version,
       blocked: coalesce(s.blocked, false), saturated: coalesce(s.saturated, false),
       profile_count: COUNT { (s)<-[:HAS_IDENTITY|OBSERVED]-() }, holder: holder,
       profile_ids: [x IN nodes WHERE x:Profile | x.id], node_count: size(nodes)}) AS seeds,
     collect(nodes) AS node_lists
CALL (node_lists) {
  UNWIND node_lists AS nodes
  UNWIND nodes AS p
  WITH DISTINCT p
  WHERE p:Profile
  RETURN collect({
    profile: p {.*},
    links: [(p)-[e:HAS_IDENTITY|OBSERVED]->(i:Identity) | {
      key: i.key, value: i.value, rule: i.rule, rule_version: i.rule_version,
      blocked: coalesce(i.blocked, false), saturated: coalesce(i.saturated, false),
      profile_count: COUNT { (i)<-[:HAS_IDENTITY|OBSERVED]-() },
      raw: e.raw, source: e.source, first_seen: e.first_seen, last_seen: e.last_seen,
      linking: type(e) = 'HAS_IDENTITY'}],
    merges: [(p)-[m:MERGED_INTO]->(t:Profile) | {target: t.id, at: m.at, by: m.by, reason: m.reason}]
  }) AS profiles
}
RETURN seeds, profiles
