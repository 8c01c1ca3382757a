// A few profiles holding an identity (candidates for an identity that stopped linking). Never writes.
// Params: $key, $value, $limit
// Returns: profile_id
MATCH (:Identity {key: $key, value: $value})<-[:HAS_IDENTITY|OBSERVED]-(p:Profile)
RETURN p.id AS profile_id
LIMIT $limit
