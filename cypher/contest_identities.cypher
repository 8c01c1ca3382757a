// The contested rule (app/domain/fanout.py `contested_by`), re-evaluated in the transaction that changed holders or
// their values: an identity whose holders (profiles holding it, linking or not) together hold more distinct
// non-blocked values of a key with max_per_customer than it allows (another key than its own) is contested: it stops
// linking (its HAS_IDENTITY edges become OBSERVED edges, same properties) and records why (contested_key,
// contested_values). One no longer contested links again (its OBSERVED edges become HAS_IDENTITY edges), unless it
// has more holders than the fan-out limit: then it is saturated instead, as the write path would have done.
// Blocked and saturated identities are left as they are (they never link anyway).
// Every identity is write-locked first, in (key, value) order, before any holder's values are read: a writer that
// changes a holder's values locks the holder's identities too (it calls this statement with the holder), so of two
// such writers the second reads what the first committed. Callers take their own locks first (an upsert: its
// profiles, then the identities it wrote), so identities are locked after profiles, each set in sorted order.
// Params: $profile_ids [str] (every identity they hold is re-evaluated), $identities [{key, value}] (more to
//   re-evaluate: those that lost a holder), $holders_of [{key, value}] (every identity the holders of these hold is
//   re-evaluated: values newly blocked no longer count), $limits [{key, max}] (the strategy's contest_limits; empty: nothing is
//   contested), $contested_only (the rule is off: only identities contested before are looked at, and released),
//   $fanout (max_profiles_per_identity, 0 = no limit), $now
// Returns one row: contested [{key, value, contested_key, contested_values, holders [profile id]}] (contested by this
//   call), released [{key, value, saturated, holders [profile id]}] (no longer contested; saturated: stopped linking
//   for the fan-out limit instead)
CALL () {
  UNWIND $profile_ids AS pid
  MATCH (:Profile {id: pid})-[:HAS_IDENTITY|OBSERVED]->(i:Identity)
  RETURN i
  UNION
  UNWIND $identities AS ident
  MATCH (i:Identity {key: ident.key, value: ident.value})
  RETURN i
  UNION
  UNWIND $holders_of AS ident
  MATCH (:Identity {key: ident.key, value: ident.value})<-[:HAS_IDENTITY|OBSERVED]-(:Profile)
        -[:HAS_IDENTITY|OBSERVED]->(i:Identity)
  RETURN i
}
WITH DISTINCT i
// Blocked and saturated never go back, so they are left out before the lock: a switchboard number held by
// thousands is not locked by every write to one of its holders.
WHERE (NOT $contested_only OR coalesce(i.contested, false))
  AND NOT coalesce(i.blocked, false) AND NOT coalesce(i.saturated, false)
ORDER BY i.key, i.value
SET i.last_seen = i.last_seen
WITH collect(i) AS locked
UNWIND locked AS i
WITH i
WHERE i.key IS NOT NULL AND NOT coalesce(i.blocked, false) AND NOT coalesce(i.saturated, false)
CALL (i) {
  UNWIND $limits AS lim
  WITH lim WHERE lim.key <> i.key
  CALL (i, lim) {
    OPTIONAL MATCH (i)<-[:HAS_IDENTITY|OBSERVED]-(:Profile)-[:HAS_IDENTITY|OBSERVED]->(v:Identity)
    WHERE v.key = lim.key AND NOT coalesce(v.blocked, false)
    RETURN count(DISTINCT v) AS n
  }
  WITH lim, n WHERE n > lim.max
  WITH lim, n ORDER BY lim.key
  RETURN collect({key: lim.key, values: n})[0] AS reason
}
WITH i, reason, coalesce(i.contested, false) AS was,
     [(q:Profile)-[:HAS_IDENTITY|OBSERVED]->(i) | q.id] AS holders
CALL (i, reason, was) {
  WITH i, reason, was WHERE reason IS NOT NULL
  SET i.contested = true, i.contested_key = reason.key, i.contested_values = reason.values,
      i.contested_at = CASE WHEN was THEN i.contested_at ELSE $now END
  WITH i
  MATCH (q:Profile)-[e:HAS_IDENTITY]->(i)
  CREATE (q)-[o:OBSERVED]->(i)
  SET o = properties(e)
  DELETE e
}
CALL (i, reason, was, holders) {
  WITH i WHERE reason IS NULL AND was
  SET i.contested = false
  REMOVE i.contested_key, i.contested_values, i.contested_at
  WITH i
  WHERE $fanout > 0 AND size(holders) > $fanout
  SET i.saturated = true, i.saturated_at = $now
}
CALL (i, reason, was) {
  WITH i WHERE reason IS NULL AND was AND NOT coalesce(i.saturated, false)
  MATCH (q:Profile)-[e:OBSERVED]->(i)
  CREATE (q)-[h:HAS_IDENTITY]->(i)
  SET h = properties(e)
  DELETE e
}
WITH i, reason, was, holders
RETURN [x IN collect(CASE WHEN reason IS NOT NULL AND NOT was THEN
          {key: i.key, value: i.value, contested_key: reason.key, contested_values: reason.values, holders: holders}
        END) WHERE x IS NOT NULL] AS contested,
       [x IN collect(CASE WHEN reason IS NULL AND was THEN
          {key: i.key, value: i.value, saturated: coalesce(i.saturated, false), holders: holders}
        END) WHERE x IS NOT NULL] AS released
