// An upsert in one statement. Upserts the profiles; gets or creates the identities the stored ones carry and
// write-locks them (SET) for the rest of the transaction, so the link counts and edges read here stay true until
// commit; then writes each identity's edges. Locks: profiles first, then identities, each in the sorted order the
// rows arrive in. A node another transaction deleted while this one waited for its lock reads back without
// properties: `gone` says so, and the caller rolls back and retries the transaction. The suppression list is read
// for each identity after its lock: when it holds one, the caller rolls back (edges written meanwhile included) and
// leaves the value out. So an erasure commits either before this transaction (and its values are refused here) or
// after it (and then finds the new edges under its own locks and erases them too).
// Edges follow the fan-out rule of app/domain/fanout.py: blocked, saturated and contested identities get OBSERVED edges
// (non-linking); an identity that this write would give more than $limit holders is saturated now, its
// HAS_IDENTITY edges turned into OBSERVED edges (same properties), so the component query never walks through it.
// A profile that already holds an identity gets its edge refreshed, never a second one.
// Shaped for the bulk path (a thousand rows a call): every value travels once, times are $now (attribute times
// through `timed`), and an identity names the rows that hold it by position in $rows, so its edges are written
// from its own row, without looking it up again; a profile this statement created holds nothing yet. Rows come
// back in $rows order (`aligned` checks it: an identity's holders are positions).
// The caller checks the rows' records against the suppression list after this statement, in the same transaction
// (cypher/suppressed_hashes.cypher): the profiles are created or locked by then, so an erasure of one of them has
// committed before (and is seen) or waits for this transaction.
// Params: $rows [{index, mode: "source"|"id"|"new", profile_id, new_id, source, source_id,
//   attributes {`attr.<name>`: value, or null with `attr_at.<name>`: null to remove one}, timed [name]}],
//   $identities [{key, value, rule, rule_version, blocked, hash, holders: [[position in $rows, raw]]}]
//   (one holder per profile), $limit, $now
// Returns one row: aligned, profiles [{index, profile_id, created, gone, changed}] (no entry for a mode "id" row whose
//   profile does not exist; `changed`: an attribute of an existing profile took another value), identities
//   [{key, value, gone, hash, suppressed, gained, saturated}] (`gained`: ids of the profiles given a new edge to it;
//   `saturated`: when this write saturated it, the ids of its holders; both for the change log)
CALL () {
  UNWIND $rows AS row
  CALL (row) {
    WITH row WHERE row.mode = 'source'
    MERGE (p:Profile {source: row.source, source_id: row.source_id})
      ON CREATE SET p.id = row.new_id, p.created_at = $now
    RETURN p
    UNION
    WITH row WHERE row.mode = 'new'
    MERGE (p:Profile {id: row.new_id})
      ON CREATE SET p.source = row.source, p.created_at = $now
    RETURN p
    UNION
    WITH row WHERE row.mode = 'id'
    OPTIONAL MATCH (p:Profile {id: row.profile_id})
    RETURN p
  }
  CALL (row, p) {
    WITH row, p WHERE p IS NOT NULL
    SET p.updated_at = $now  // the profile's lock first: what `changed` compares stays true
  }
  WITH row, p, p IS NOT NULL AND any(k IN keys(row.attributes)
               WHERE NOT coalesce(p[k] = row.attributes[k], p[k] IS NULL AND row.attributes[k] IS NULL)) AS changed
  CALL (row, p) {
    WITH row, p WHERE p IS NOT NULL
    SET p += row.attributes, p.version = coalesce(p.version, 0) + 1
    FOREACH (name IN row.timed | SET p['attr_at.' + name] = $now)
  }
  RETURN collect({index: row.index, profile_id: p.id, created: p.id = row.new_id, gone: p IS NOT NULL AND p.id IS NULL,
                  changed: coalesce(changed, false), node: p}) AS profiles
}
WITH profiles, size(profiles) = size($rows) AND all(k IN range(0, size(profiles) - 1)
                                                  WHERE profiles[k].index = $rows[k].index) AS aligned
CALL (profiles, aligned) {
  WITH profiles WHERE aligned AND none(x IN profiles WHERE x.gone)
  UNWIND $identities AS ident
  WITH ident, [h IN ident.holders WHERE profiles[h[0]].node IS NOT NULL] AS holders
  WHERE size(holders) > 0
  MERGE (i:Identity {key: ident.key, value: ident.value})
    ON CREATE SET i.rule = ident.rule, i.rule_version = ident.rule_version, i.blocked = ident.blocked,
                  i.saturated = false, i.created_at = $now
  SET i.last_seen = $now, i.blocked = coalesce(i.blocked, false) OR ident.blocked
  WITH i, ident, holders, i.key IS NULL AS gone,
       ident.hash IS NOT NULL AND EXISTS { (:Suppression {hash: ident.hash}) } AS suppressed
  OPTIONAL CALL (i, ident, holders, gone, suppressed, profiles) {
    WITH i, ident, holders WHERE NOT gone AND NOT suppressed
    CALL (i, holders, profiles) {
      UNWIND holders AS h
      WITH i, profiles[h[0]] AS holder, h[1] AS raw, $rows[h[0]].source AS source
      // Rows naming one profile in two ways (by id and by source record) give it one edge: the first wins.
      WITH i, holder.node AS p, collect({created: holder.created, raw: raw, source: source})[0] AS first
      RETURN collect({p: p, raw: first.raw, source: first.source,
                      held: NOT first.created AND EXISTS { (p)-[:HAS_IDENTITY|OBSERVED]->(i) }}) AS marked
    }
    // Every holder counts, OBSERVED ones too: a contested identity (its edges OBSERVED) saturates like any other,
    // and saturation wins over the contest (cypher/contest_identities.cypher skips saturated identities), so the
    // outcome does not depend on whether the second account id or the 51st holder came first.
    WITH i, ident, marked, size([h IN marked WHERE NOT h.held]) AS fresh,
         COUNT { (i)<-[:HAS_IDENTITY|OBSERVED]-() } AS holding
    WITH i, ident, marked, $limit > 0 AND NOT coalesce(i.saturated, false) AND NOT coalesce(i.blocked, false)
                           AND holding + fresh > $limit AS saturating
    CALL (i, saturating) {
      WITH i WHERE saturating
      SET i.saturated = true, i.saturated_at = $now
      REMOVE i.contested, i.contested_key, i.contested_values, i.contested_at
      WITH i
      MATCH (q:Profile)-[e:HAS_IDENTITY]->(i)
      CREATE (q)-[o:OBSERVED]->(i)
      SET o = properties(e)
      DELETE e
    }
    // A contested identity (cypher/contest_identities.cypher) links no new holder either.
    WITH i, ident, marked, saturating,
         NOT (coalesce(i.saturated, false) OR coalesce(i.blocked, false) OR coalesce(i.contested, false)) AS linking
    CALL (i, ident, marked, linking) {
      UNWIND marked AS h
      WITH i, ident, h, h.p AS p, linking
      FOREACH (_ IN CASE WHEN NOT h.held AND linking THEN [1] ELSE [] END |
        CREATE (p)-[:HAS_IDENTITY {raw: h.raw, source: h.source, rule_version: ident.rule_version,
                                   first_seen: $now, last_seen: $now}]->(i))
      FOREACH (_ IN CASE WHEN NOT h.held AND NOT linking THEN [1] ELSE [] END |
        CREATE (p)-[:OBSERVED {raw: h.raw, source: h.source, rule_version: ident.rule_version,
                               first_seen: $now, last_seen: $now}]->(i))
      WITH p, i, h WHERE h.held
      MATCH (p)-[e:HAS_IDENTITY|OBSERVED]->(i)
      SET e.last_seen = $now, e.raw = h.raw, e.source = h.source
    }
    // For the change log: the profiles that gained this identity, and when this write saturated it, its holders.
    RETURN [h IN marked WHERE NOT h.held | h.p.id] AS gained,
           CASE WHEN saturating THEN COLLECT { MATCH (q:Profile)-[:OBSERVED]->(i) RETURN q.id ORDER BY q.id }
                ELSE [] END AS saturated
  }
  RETURN collect({key: ident.key, value: ident.value, gone: gone, hash: ident.hash, suppressed: suppressed,
                  gained: coalesce(gained, []), saturated: coalesce(saturated, [])}) AS identities
}
RETURN aligned, [x IN profiles WHERE x.node IS NOT NULL | x {.index, .profile_id, .created, .gone, .changed}] AS profiles,
       identities
