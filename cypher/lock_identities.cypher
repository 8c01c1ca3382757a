// Gets or creates identities and write-locks them for the rest of the transaction, so that link counts and
// edge existence read next are stable. Rows arrive sorted by (key, value) to keep lock order consistent.
// Params: $identities [{key, value, rule, rule_version, blocked}], $now
// Returns: key, value, blocked, saturated, linking (profiles linked through it)
UNWIND $identities AS ident
MERGE (i:Identity {key: ident.key, value: ident.value})
  ON CREATE SET i.rule = ident.rule, i.rule_version = ident.rule_version, i.blocked = ident.blocked,
                i.saturated = false, i.created_at = $now
SET i.last_seen = $now, i.blocked = i.blocked OR ident.blocked
RETURN i.key AS key, i.value AS value, i.blocked AS blocked, i.saturated AS saturated,
       COUNT { (i)<-[:HAS_IDENTITY]-() } AS linking
