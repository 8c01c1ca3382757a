// Looks up identities by normalized (key, value). Never writes.
// Params: $identities [{key, value}]
// Returns: key, value, rule, rule_version, blocked, saturated, profile_count
UNWIND $identities AS ident
MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
RETURN i.key AS key, i.value AS value, i.rule AS rule, i.rule_version AS rule_version,
       coalesce(i.blocked, false) AS blocked, coalesce(i.saturated, false) AS saturated,
       COUNT { (i)<-[:HAS_IDENTITY|OBSERVED]-() } AS profile_count
