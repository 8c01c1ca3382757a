// Parks a batch that failed every attempt and moves the delivered cursor past it, in one transaction fenced by the
// lease (as advance_change_delivery). A batch parked again (same cursor range) keeps one node, its counts updated.
// Params: $lease, $delivery, $replica, $now, $id, $first_seq, $last_seq, $events, $attempts, $last_error
// Returns: parked (false: the lease is not ours; nothing was written)
OPTIONAL MATCH (l:RetentionLease {name: $lease})
SET l.version = coalesce(l.version, 0) + 1
WITH coalesce(l.holder = $replica AND l.expires_at > $now, false) AS parked
FOREACH (_ IN CASE WHEN parked THEN [1] ELSE [] END |
  MERGE (b:ParkedChangeBatch {id: $id})
  SET b.first_seq = $first_seq, b.last_seq = $last_seq, b.events = $events, b.attempts = $attempts,
      b.last_error = $last_error, b.parked_at = $now
  MERGE (d:ChangeDelivery {name: $delivery})
  SET d.delivered_seq = CASE WHEN coalesce(d.delivered_seq, 0) < $last_seq THEN $last_seq ELSE d.delivered_seq END,
      d.delivered_at = $now
)
RETURN parked
