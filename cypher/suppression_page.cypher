// One page of the suppression list that the rotation to $target has not re-keyed yet, in hash order.
// Params: $after (the last hash of the previous page, "" first), $target (the new key's fingerprint), $limit
// Returns: hash
MATCH (s:Suppression)
WHERE s.hash > $after AND coalesce(s.rekeyed_for, '') <> $target
RETURN s.hash AS hash
ORDER BY s.hash
LIMIT $limit
