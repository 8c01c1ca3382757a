// Everything a resolution needs, in one statement (one round trip): each search identity found; for a linking
// one, its component (breadth-first over linking edges: DISTINCT right above the unbounded expand makes it a
// pruning BFS node-set walk, bounded by LIMIT); for a saturated or contested one, the components of a few of its
// holders (the candidates); and every profile of those components with its edges. Never writes.
// A profile's links are bounded too: at most $max_links (the strategy's identities per profile), linking ones first,
// then by key and value; more_links says the profile holds more.
// Params: $identities [{key, value}], $max_nodes, $candidates, $max_links
// Returns one row: seeds [{key, value, rule, rule_version, blocked, saturated, contested_key (null unless contested),
//   contested_values, profile_count, holder, profile_ids, node_count}], profiles [{profile, links, more_links, merges}]
//   A profile is a list of [property, value] pairs, and every time (profile, attribute, edge and merge times) is
//   an integer of microseconds since the epoch: the driver turns a DateTime into a Python object ~20x slower
//   than app/db/records.py turns an integer into one, and a resolve reads a dozen of them or more.
UNWIND $identities AS ident
MATCH (s:Identity {key: ident.key, value: ident.value}) USING INDEX s:Identity(key, value)
CALL (s) {
  WITH s WHERE NOT coalesce(s.blocked, false) AND NOT coalesce(s.saturated, false) AND NOT coalesce(s.contested, false)
  RETURN s AS start, null AS holder
  UNION
  WITH s WHERE (coalesce(s.saturated, false) OR coalesce(s.contested, false)) AND NOT coalesce(s.blocked, false)
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
       contested_key: CASE WHEN coalesce(s.contested, false) THEN s.contested_key END,
       contested_values: s.contested_values, profile_count: COUNT { (s)<-[:HAS_IDENTITY|OBSERVED]-() }, holder: holder,
       profile_ids: [x IN nodes WHERE x:Profile | x.id], node_count: size(nodes)}) AS seeds,
     collect(nodes) AS node_lists
CALL (node_lists) {
  UNWIND node_lists AS nodes
  UNWIND nodes AS p
  WITH DISTINCT p
  WHERE p:Profile
  RETURN collect({
    profile: [k IN keys(p) | [k, CASE WHEN p[k] IS :: ZONED DATETIME THEN p[k].epochSeconds * 1000000 + p[k].microsecond ELSE p[k] END]],
    links: COLLECT {
      MATCH (p)-[e:HAS_IDENTITY|OBSERVED]->(i:Identity)
      WITH e, i ORDER BY type(e), i.key, i.value LIMIT $max_links
      RETURN {
        key: i.key, value: i.value, rule: i.rule, rule_version: i.rule_version,
        blocked: coalesce(i.blocked, false), saturated: coalesce(i.saturated, false),
        contested_key: CASE WHEN coalesce(i.contested, false) THEN i.contested_key END,
        contested_values: i.contested_values,
        profile_count: COUNT { (i)<-[:HAS_IDENTITY|OBSERVED]-() },
        raw: e.raw, source: e.source, first_seen: e.first_seen.epochSeconds * 1000000 + e.first_seen.microsecond,
        last_seen: e.last_seen.epochSeconds * 1000000 + e.last_seen.microsecond,
        linking: type(e) = 'HAS_IDENTITY'}
    },
    more_links: COUNT { (p)-[:HAS_IDENTITY|OBSERVED]->() } > $max_links,
    merges: [(p)-[m:MERGED_INTO]->(t:Profile) | {target: t.id, at: m.at.epochSeconds * 1000000 + m.at.microsecond, by: m.by,
                                               reason: m.reason}]
  }) AS profiles
}
RETURN seeds, profiles
