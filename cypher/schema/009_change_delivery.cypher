// Outbound delivery of the change feed: one (:ChangeDelivery {name, delivered_seq}) per delivery target holding the
// cursor delivered so far, and one (:ParkedChangeBatch {id, first_seq, last_seq, ...}) per batch given up after its
// attempts (cursor range, counts, error class; no personal data). The lease is a (:RetentionLease) of its own name.
CREATE CONSTRAINT change_delivery_name IF NOT EXISTS
FOR (d:ChangeDelivery) REQUIRE d.name IS UNIQUE;

CREATE CONSTRAINT parked_change_batch_id IF NOT EXISTS
FOR (b:ParkedChangeBatch) REQUIRE b.id IS UNIQUE;

// Listing parked batches in cursor order.
CREATE INDEX parked_change_batch_first_seq IF NOT EXISTS
FOR (b:ParkedChangeBatch) ON (b.first_seq);
