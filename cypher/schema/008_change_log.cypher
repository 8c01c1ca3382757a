// The change log (issue 18): one (:Change {seq, type, profile_ids, customer_before, customer_after, actor, request_id,
// reason, at}) per state change, written by cypher/record_changes.cypher in the transaction of the change. Ids only,
// never an identity value or an attribute value. `seq` is the cursor: unique, strictly increasing in commit order.
CREATE CONSTRAINT change_seq IF NOT EXISTS
FOR (c:Change) REQUIRE c.seq IS UNIQUE;

// Trimming old events ([audit] keep_days) walks them by time.
CREATE INDEX change_at IF NOT EXISTS
FOR (c:Change) ON (c.at);

// The sequence: one node holding the last seq given. Every writer of events increments it, and its write lock,
// held to commit, serializes them (see record_changes.cypher). The constraint makes a first MERGE of it safe.
CREATE CONSTRAINT change_sequence_name IF NOT EXISTS
FOR (s:ChangeSequence) REQUIRE s.name IS UNIQUE;

// Filters by id are index seeks: beside each event, one small unconnected node per profile id it names,
// (:ChangeProfile {id, seq}), and one per distinct customer id before or after, (:ChangeCustomer {id, seq}).
// A composite index on (id, seq) finds a profile's or customer's events after a cursor in seq order without
// reading any other event. They hold ids and seq only (like the event) and are created and trimmed with it.
CREATE INDEX change_profile_id_seq IF NOT EXISTS
FOR (r:ChangeProfile) ON (r.id, r.seq);

CREATE INDEX change_customer_id_seq IF NOT EXISTS
FOR (r:ChangeCustomer) ON (r.id, r.seq);
