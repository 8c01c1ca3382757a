// Trims the change log ([audit] keep_days): deletes up to $limit of the oldest events written before $before, each
// with its (:ChangeProfile) and (:ChangeCustomer) index nodes (schema/008_change_log.cypher), and adds the number
// deleted to the retention lease node (changes_trimmed: every event trimmed so far; changes_trimmed_at: when the
// last were), so the count outlives the events. Fenced by the lease: only while $replica holds it unexpired; the
// lease node is write-locked before it is read. One bounded batch per transaction: the caller repeats it while a
// whole batch was trimmed. With $delivery (the change webhook's delivery state, when the trimming process delivers
// the feed), events after its delivered cursor and those of parked batches are kept, however old: trimming never
// deletes what the receiver has not had.
// Trimming walks the oldest seqs first (`at` is the writer's clock, which may lag a little behind commit order) and
// stops at the first event not old enough, so the events it leaves are always a gap-free tail of the log.
// Params: $lease, $replica, $now, $before, $limit, $delivery (null: no delivery to wait for)
// Returns: trimmed (no row: $replica does not hold the lease)
MATCH (l:RetentionLease {name: $lease})
SET l.version = coalesce(l.version, 0) + 1
WITH l
WHERE l.holder = $replica AND l.expires_at > $now
OPTIONAL MATCH (d:ChangeDelivery {name: $delivery})
WITH l, CASE WHEN $delivery IS NULL THEN null
             ELSE coalesce(COLLECT { MATCH (b:ParkedChangeBatch) RETURN min(b.first_seq) - 1 }[0],
                           d.delivered_seq, 0) END AS parked_ceiling,
     d.delivered_seq AS delivered
WITH l, CASE WHEN $delivery IS NULL THEN null
             WHEN parked_ceiling < coalesce(delivered, 0) THEN parked_ceiling
             ELSE coalesce(delivered, 0) END AS ceiling
CALL (l, ceiling) {
  MATCH (c:Change)
  WHERE c.seq > 0 AND (ceiling IS NULL OR c.seq <= ceiling)
  WITH c ORDER BY c.seq LIMIT $limit  // index-backed order (change_seq): the oldest first, no sort
  WITH collect(c) AS oldest
  // Only the leading run of old-enough events: one younger than $before ends the batch.
  WITH oldest, coalesce(head([k IN range(0, size(oldest) - 1) WHERE NOT oldest[k].at < $before]), size(oldest)) AS n
  UNWIND oldest[0..n] AS c
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
