// First statement of an upsert: upserts the profiles, then gets or creates the identities the stored ones carry
// and write-locks them (SET) for the rest of the transaction, so the link counts and edges read here stay true
// until commit. Locks: profiles first, then identities, each in the sorted order the rows arrive in.
// A node another transaction deleted while this one waited for its lock reads back without properties: `gone`
// says so (the caller retries the transaction). The suppression list is read for each identity after its lock,
// so an erasure that deleted the value commits either before (seen here) or after this transaction (and then
// finds the new edge under its own lock and erases it too).
// Params: $rows [{index, mode: "source"|"id"|"new", profile_id, new_id, source, source_id, attributes, nonce}],
//   $identities [{key, value, rule, rule_version, blocked, hash, rows: [row index]}], $now
// Returns one row: profiles [{index, profile_id, created, gone, held: [{key, value}]}] (no entry for a mode "id"
//   row whose profile does not exist), identities [{key, value, blocked, saturated, linking, gone, hash, suppressed}]
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
  RETURN collect({
    index: row.index, profile_id: p.id, created: p.created_by = row.nonce, gone: p.id IS NULL,
    held: [(p)-[:HAS_IDENTITY|OBSERVED]->(i:Identity) | {key: i.key, value: i.value}]
  }) AS profiles
}
CALL (profiles) {
  WITH [x IN profiles | x.index] AS stored
  UNWIND $identities AS ident
  WITH ident WHERE any(r IN ident.rows WHERE r IN stored)
  MERGE (i:Identity {key: ident.key, value: ident.value})
    ON CREATE SET i.rule = ident.rule, i.rule_version = ident.rule_version, i.blocked = ident.blocked,
                  i.saturated = false, i.created_at = $now
  SET i.last_seen = $now, i.blocked = coalesce(i.blocked, false) OR ident.blocked
  RETURN collect({key: ident.key, value: ident.value, blocked: i.blocked, saturated: coalesce(i.saturated, false),
                  linking: COUNT { (i)<-[:HAS_IDENTITY]-() }, gone: i.key IS NULL, hash: ident.hash,
                  suppressed: ident.hash IS NOT NULL AND EXISTS { (:Suppression {hash: ident.hash}) }}) AS identities
}
RETURN profiles, identities
