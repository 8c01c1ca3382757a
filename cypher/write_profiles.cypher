// An upsert in one statement. Upserts the profiles; gets or creates the identities the stored ones carry and
// write-locks them (SET) for the rest of the transaction, so the link counts and edges read here stay true until
// commit; then writes the edges. Locks: profiles first, then identities, each in the sorted order the rows arrive in.
// A node another transaction deleted while this one waited for its lock reads back without properties: `gone`
// says so, nothing is linked, and the caller retries the transaction. The suppression list is read for each
// identity after its lock: when it holds one, nothing is linked and the caller rolls back and leaves the value
// out. So an erasure commits either before this transaction (and its values are refused here) or after it (and
// then finds the new edges under its own locks and erases them too).
// Edges follow the fan-out rule of app/domain/fanout.py: blocked and saturated identities get OBSERVED edges
// (non-linking); an identity that this write would give more than $limit linking profiles is saturated now, its
// HAS_IDENTITY edges turned into OBSERVED edges (same properties), so the component query never walks through it.
// A profile that already holds an identity gets its edge refreshed, never a second one.
// Params: $rows [{index, mode: "source"|"id"|"new", profile_id, new_id, source, source_id, attributes, nonce,
//   identities: [{key, value, raw, rule_version}]}],
//   $identities [{key, value, rule, rule_version, blocked, hash, rows: [row index]}], $limit, $now
// Returns one row: profiles [{index, profile_id, created, gone}] (no entry for a mode "id" row whose profile does
//   not exist), identities [{key, value, gone, hash, suppressed}]
CALL () {
  UNWIND $rows AS row
  CALL (row) {
    WITH row WHERE row.mode = 'source'
    MERGE (p:Profile {source: row.source, source_id: row.source_id})
      ON CREATE SET p.id = row.new_id, p.created_at = $now, p.created_by = row.nonce
    RETURN p
    UNION
    WITH row WHERE row.mode = 'new'
    MERGE (p:Profile {id: row.new_id})
      ON CREATE SET p.source = row.source, p.created_at = $now, p.created_by = row.nonce
    RETURN p
    UNION
    WITH row WHERE row.mode = 'id'
    MATCH (p:Profile {id: row.profile_id})
    RETURN p
  }
  SET p += row.attributes, p.updated_at = $now, p.version = coalesce(p.version, 0) + 1
  RETURN collect({index: row.index, profile_id: p.id, created: p.created_by = row.nonce, gone: p.id IS NULL,
                  node: p, source: row.source, identities: row.identities}) AS profiles
}
CALL (profiles) {
  WITH [x IN profiles | x.index] AS stored
  UNWIND $identities AS ident
  WITH ident WHERE any(r IN ident.rows WHERE r IN stored)
  MERGE (i:Identity {key: ident.key, value: ident.value})
    ON CREATE SET i.rule = ident.rule, i.rule_version = ident.rule_version, i.blocked = ident.blocked,
                  i.saturated = false, i.created_at = $now
  SET i.last_seen = $now, i.blocked = coalesce(i.blocked, false) OR ident.blocked
  RETURN collect({key: ident.key, value: ident.value, gone: i.key IS NULL, hash: ident.hash,
                  suppressed: ident.hash IS NOT NULL AND EXISTS { (:Suppression {hash: ident.hash}) }}) AS identities
}
CALL (profiles, identities) {
  WITH profiles WHERE none(x IN profiles WHERE x.gone) AND none(x IN identities WHERE x.gone OR x.suppressed)
  UNWIND profiles AS pr
  UNWIND pr.identities AS x
  WITH pr.node AS p, pr.source AS source, x.key AS key, x.value AS value, collect(x)[0] AS x
  MATCH (i:Identity {key: key, value: value}) USING INDEX i:Identity(key, value)
  WITH i, p, source, x, EXISTS { (p)-[:HAS_IDENTITY|OBSERVED]->(i) } AS held
  WITH i, collect({p: p, source: source, x: x, held: held}) AS holders
  WITH i, holders, size([h IN holders WHERE NOT h.held]) AS fresh, COUNT { (i)<-[:HAS_IDENTITY]-() } AS linking
  CALL (i, fresh, linking) {
    WITH i WHERE $limit > 0 AND NOT coalesce(i.saturated, false) AND NOT coalesce(i.blocked, false)
      AND linking + fresh > $limit
    SET i.saturated = true, i.saturated_at = $now
    WITH i
    MATCH (q:Profile)-[e:HAS_IDENTITY]->(i)
    CREATE (q)-[o:OBSERVED]->(i)
    SET o = properties(e)
    DELETE e
  }
  WITH i, holders, NOT (coalesce(i.saturated, false) OR coalesce(i.blocked, false)) AS linking
  UNWIND holders AS h
  WITH i, h.p AS p, h.x AS x, h.source AS source, h.held AS held, linking
  FOREACH (_ IN CASE WHEN NOT held AND linking THEN [1] ELSE [] END |
    CREATE (p)-[:HAS_IDENTITY {raw: x.raw, source: source, rule_version: x.rule_version,
                               first_seen: $now, last_seen: $now}]->(i))
  FOREACH (_ IN CASE WHEN NOT held AND NOT linking THEN [1] ELSE [] END |
    CREATE (p)-[:OBSERVED {raw: x.raw, source: source, rule_version: x.rule_version,
                           first_seen: $now, last_seen: $now}]->(i))
  WITH p, i, x, source WHERE held
  MATCH (p)-[e:HAS_IDENTITY|OBSERVED]->(i)
  SET e.last_seen = $now, e.raw = x.raw, e.source = source
}
RETURN [x IN profiles | x {.index, .profile_id, .created, .gone}] AS profiles, identities
