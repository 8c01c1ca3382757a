// Gets or creates the identities one renormalize batch touches (the values folded away and their targets) and
// write-locks them for the rest of the transaction. Rows arrive sorted by (key, value) to keep lock order
// consistent with the write path. A target on the blocked list is marked blocked (never unmarked).
// The suppression list is read for each target after its lock (as the write path does): an erasure commits either
// before this transaction (its hash is seen here, and the caller does not fold onto the target) or after it (and
// then finds the folded edges under its own locks).
// Params: $identities [{key, value, rule, rule_version, blocked, hash}] (hash: the target's keyed suppression hash;
//   null for the values folded away), $now
// Returns: key, value, blocked, saturated, linking (profiles linked through it), created, suppressed
UNWIND $identities AS ident
MERGE (i:Identity {key: ident.key, value: ident.value})
  ON CREATE SET i.rule = ident.rule, i.rule_version = ident.rule_version, i.blocked = ident.blocked,
                i.saturated = false, i.created_at = $now, i.created_by_fold = true
SET i.blocked = coalesce(i.blocked, false) OR ident.blocked, i.saturated = coalesce(i.saturated, false)
WITH i, ident, coalesce(i.created_by_fold, false) AS created
REMOVE i.created_by_fold
RETURN i.key AS key, i.value AS value, i.blocked AS blocked, i.saturated AS saturated,
       COUNT { (i)<-[:HAS_IDENTITY]-() } AS linking, created,
       ident.hash IS NOT NULL AND EXISTS { (:Suppression {hash: ident.hash}) } AS suppressed
