// Trims the change log ([audit] keep_days): deletes up to $limit of the oldest events written before $before, each
// with its (:ChangeProfile) and (:ChangeCustomer) index nodes (schema/008_change_log.cypher), and adds the number
// deleted to the retention lease node (changes_trimmed: every event trimmed so far; changes_trimmed_at: when the
// last were), so the count outlives the events. Fenced by the lease: only while $replica holds it unexpired; the
// lease node is write-locked before it is read. One bounded batch per transaction: the caller repeats it while a
// whole batch was trimmed.
// Params: $lease, $replica, $now, $before, $limit
// Returns: trimmed (no row: $replica does not hold the lease)
MATCH (l:RetentionLease {name: $lease})
SET l.version = coalesce(l.version, 0) + 1
WITH l
WHERE l.holder = $replica AND l.expires_at > $now
CALL (l) {
  MATCH (c:Change)
  WHERE c.at < $before
  WITH c ORDER BY c.at LIMIT $limit  // index-backed order (change_at): no sort of every old event
  CALL (c) {
    UNWIND c.profile_ids AS id
    MATCH (p:ChangeProfile {id: id, seq: c.seq})
    DELETE p
  }
  CALL (c) {
    UNWIND [x IN [c.customer_before, c.customer_after] WHERE x IS NOT NULL] AS id
    WITH DISTINCT c, id
    MATCH (k:ChangeCustomer {id: id, seq: c.seq})
    DELETE k
  }
  DELETE c
  RETURN count(*) AS trimmed
}
SET l.changes_trimmed = coalesce(l.changes_trimmed, 0) + trimmed,
    l.changes_trimmed_at = CASE WHEN trimmed > 0 THEN $now ELSE l.changes_trimmed_at END
RETURN trimmed
