// Profiles with their identity edges (linking or not) and outgoing merge edges.
// Params: $profile_ids [str]
// Returns: profile (all properties), links [...], merges [...]
UNWIND $profile_ids AS pid
MATCH (p:Profile {id: pid}) USING INDEX p:Profile(id)
RETURN p {.*} AS profile,
       [(p)-[e:HAS_IDENTITY|OBSERVED]->(i:Identity) | {
          key: i.key, value: i.value, rule: i.rule, rule_version: i.rule_version,
          blocked: coalesce(i.blocked, false), saturated: coalesce(i.saturated, false),
          profile_count: COUNT { (i)<-[:HAS_IDENTITY|OBSERVED]-() },
          raw: e.raw, source: e.source, first_seen: e.first_seen, last_seen: e.last_seen,
          linking: type(e) = 'HAS_IDENTITY'}] AS links,
       [(p)-[m:MERGED_INTO]->(t:Profile) | {target: t.id, at: m.at, by: m.by, reason: m.reason}] AS merges
