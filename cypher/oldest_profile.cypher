// The customer id of a set of profiles (one whole component): the id of the oldest, ties by id, as
// app/domain/customer.py computes it. For the change log's customer_before of an erasure.
// Params: $profile_ids. Returns: profile_id (no row when none exists)
MATCH (p:Profile)
WHERE p.id IN $profile_ids
RETURN p.id AS profile_id
ORDER BY p.created_at, p.id
LIMIT 1
