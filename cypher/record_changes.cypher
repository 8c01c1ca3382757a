// Appends a transaction's events to the change log. Run it as the LAST statement of the write transaction: it
// write-locks the sequence node (SET), and that lock, held to commit, serializes every transaction that records
// events, so seq order is commit order and a reader paging by cursor never misses an event committed later with a
// lower seq. Being last keeps the lock for as short a time as possible. No row in $events: nothing written, no lock.
// Each event gets one (:ChangeProfile {id, seq}) per profile id and one (:ChangeCustomer {id, seq}) per distinct
// customer id (schema/008_change_log.cypher: the filters' index seeks). Ids only, never values.
// Params: $events [{type, profile_ids, customer_before, customer_after}], $actor, $request_id, $reason,
//   $now (null: the transaction's time)
// Returns one row when events were written: first, last (the seqs given)
WITH $events AS events
WHERE size(events) > 0
MERGE (s:ChangeSequence {name: 'changes'})
  ON CREATE SET s.last = 0
SET s.last = s.last + size(events)
WITH events, s.last - size(events) AS base, coalesce($now, datetime()) AS at
UNWIND range(0, size(events) - 1) AS k
WITH events[k] AS e, base + k + 1 AS seq, at
CREATE (c:Change {seq: seq, type: e.type, profile_ids: e.profile_ids, actor: $actor, at: at})
SET c.customer_before = e.customer_before, c.customer_after = e.customer_after, c.request_id = $request_id,
    c.reason = $reason
FOREACH (id IN e.profile_ids | CREATE (:ChangeProfile {id: id, seq: seq}))
FOREACH (id IN CASE WHEN e.customer_before = e.customer_after THEN [e.customer_before]
                    ELSE [x IN [e.customer_before, e.customer_after] WHERE x IS NOT NULL] END |
  CREATE (:ChangeCustomer {id: id, seq: seq}))
RETURN min(seq) AS first, max(seq) AS last
