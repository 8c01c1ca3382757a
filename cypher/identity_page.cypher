// One page of the identities of one key in value order, after $after: keyset pagination on the (key, value)
// constraint's index, which also gives the order (no sort). Never writes.
// Params: $key, $after, $limit
// Returns: key, value, rule, rule_version, blocked, saturated
MATCH (i:Identity) USING INDEX i:Identity(key, value)
WHERE i.key = $key AND i.value > $after
RETURN i.key AS key, i.value AS value, i.rule AS rule, i.rule_version AS rule_version,
       coalesce(i.blocked, false) AS blocked, coalesce(i.saturated, false) AS saturated
ORDER BY i.key, i.value
LIMIT $limit
