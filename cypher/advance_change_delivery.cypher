// Records that the events up to $seq were delivered, fenced by the lease: only while $replica holds the unexpired
// lease $lease (locked before it is read, so it cannot change hands meanwhile). The cursor never goes back.
// Params: $lease, $delivery, $replica, $now, $seq
// Returns: advanced (false: the lease is not ours), delivered_seq
OPTIONAL MATCH (l:RetentionLease {name: $lease})
SET l.version = coalesce(l.version, 0) + 1
WITH l, coalesce(l.holder = $replica AND l.expires_at > $now, false) AS advanced
MERGE (d:ChangeDelivery {name: $delivery})
SET d.delivered_seq = CASE
      WHEN advanced AND coalesce(d.delivered_seq, 0) < $seq THEN $seq
      ELSE coalesce(d.delivered_seq, 0)
    END,
    d.delivered_at = CASE WHEN advanced THEN $now ELSE d.delivered_at END
RETURN advanced, d.delivered_seq AS delivered_seq
