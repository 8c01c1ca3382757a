// One page of the profiles not updated since $before, in (updated_at, id) order, after the cursor
// ($after_at, $after_id): keyset pagination on the profile_updated_at index (a partial top-k, no full sort).
// Profiles without updated_at are never candidates. Never writes.
// Params: $before, $after_at, $after_id, $limit
// Returns: profile_id, updated_at
MATCH (p:Profile) USING INDEX p:Profile(updated_at)
WHERE p.updated_at >= $after_at AND p.updated_at < $before
  AND (p.updated_at > $after_at OR p.id > $after_id)
RETURN p.id AS profile_id, p.updated_at AS updated_at
ORDER BY p.updated_at, p.id
LIMIT $limit
