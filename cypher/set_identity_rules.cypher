// Records the rule and rule version that normalize each identity under the current strategy.
// Params: $identities [{key, value, rule, rule_version}]. Returns: updated
UNWIND $identities AS ident
MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
SET i.rule = ident.rule, i.rule_version = ident.rule_version
RETURN count(*) AS updated
