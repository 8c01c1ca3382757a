// The components of the given profiles (breadth-first over linking edges, bounded: see resolve_snapshot.cypher)
// and every profile of them with its edges, in one statement. Never writes.
// A profile's links are bounded too: at most $max_links (the strategy's identities per profile), linking ones first,
// then by key and value; more_links says the profile holds more.
// Params: $profile_ids [str], $max_nodes, $max_links
// Returns one row: seeds [{seed_id, profile_ids, node_count}], profiles [{profile, links, more_links, merges}]
//   A profile is a list of [property, value] pairs, and every time (profile, attribute, edge and merge times) is
//   an integer of microseconds since the epoch: the driver turns a DateTime into a Python object much slower
//   than app/db/records.py turns an integer into one (see resolve_snapshot.cypher).
UNWIND $profile_ids AS seed_id
MATCH (s:Profile {id: seed_id}) USING INDEX s:Profile(id)
CALL (s) {
  MATCH (s)-[:HAS_IDENTITY|MERGED_INTO*0..]-(n)
  WITH DISTINCT n
  LIMIT $max_nodes + 1
  RETURN collect(n) AS nodes
}
WITH collect({seed_id: seed_id, profile_ids: [x IN nodes WHERE x:Profile | x.id], node_count: size(nodes)}) AS seeds,
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
