// Gets or creates the identities one renormalize batch touches (the values folded away and their targets) and
// write-locks them for the rest of the transaction. Rows arrive sorted by (key, value) to keep lock order
// consistent with the write path. A target on the blocked list is marked blocked (never unmarked).
// Params: $identities [{key, value, rule, rule_version, blocked}], $now
// Returns: key, value, blocked, saturated, linking (profiles linked through it), created
UNWIND $identities AS ident
MERGE (i:Identity {key: ident.key, value: ident.value})
  ON CREATE SET i.rule = ident.rule, i.rule_version = ident.rule_version, i.blocked = ident.blocked,
                i.saturated = false, i.created_at = $now, i.created_by_fold = true
SET i.blocked = coalesce(i.blocked, false) OR ident.blocked, i.saturated = coalesce(i.saturated, false)
WITH i, coalesce(i.created_by_fold, false) AS created
REMOVE i.created_by_fold
RETURN i.key AS key, i.value AS value, i.blocked AS blocked, i.saturated AS saturated,
       COUNT { (i)<-[:HAS_IDENTITY]-() } AS linking, created
