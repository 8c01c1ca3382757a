// A page of the change log: events with seq > $after in seq order. $types (null: all) keeps those types.
// $profile_ids and $customer_id (both null: every event) keep the events naming one of those profiles or with
// that customer before or after (either, when both are given); they are index seeks on (:ChangeProfile {id, seq})
// and (:ChangeCustomer {id, seq}) (schema/008_change_log.cypher).
// $through (null: no bound) keeps seq <= $through: a filtered poller reads the last seq first, then up to it.
// Params: $after, $limit, $types, $profile_ids, $customer_id, $through
// Returns: change {seq, type, profile_ids, customer_before, customer_after, actor, request_id, reason, at}
CALL () {
  WITH 1 AS _ WHERE $profile_ids IS NULL AND $customer_id IS NULL
  MATCH (c:Change) WHERE c.seq > $after AND ($through IS NULL OR c.seq <= $through)
    AND ($types IS NULL OR c.type IN $types)
  RETURN c ORDER BY c.seq LIMIT $limit
  UNION
  WITH 1 AS _ WHERE $profile_ids IS NOT NULL OR $customer_id IS NOT NULL
  CALL () {
    UNWIND coalesce($profile_ids, []) AS id
    MATCH (r:ChangeProfile {id: id}) WHERE r.seq > $after
    RETURN r.seq AS seq
    UNION
    MATCH (r:ChangeCustomer {id: $customer_id}) WHERE r.seq > $after
    RETURN r.seq AS seq
  }
  WITH DISTINCT seq
  MATCH (c:Change {seq: seq}) WHERE ($through IS NULL OR seq <= $through) AND ($types IS NULL OR c.type IN $types)
  RETURN c ORDER BY c.seq LIMIT $limit
}
RETURN c {.seq, .type, .profile_ids, .customer_before, .customer_after, .actor, .request_id, .reason, .at} AS change
ORDER BY change.seq
