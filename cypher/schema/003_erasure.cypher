// Suppression list: HMAC-SHA256 of erased normalized values (the key lives outside the database).
CREATE CONSTRAINT suppression_hash IF NOT EXISTS
FOR (s:Suppression) REQUIRE s.hash IS UNIQUE;

// Erasure receipts carry no personal data; idempotent on request id.
CREATE CONSTRAINT erasure_receipt_request_id IF NOT EXISTS
FOR (r:ErasureReceipt) REQUIRE r.request_id IS UNIQUE;
