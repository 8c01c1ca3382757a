// The profiles holding more identities (linking and observed edges alike) than the limit per profile. Run by an
// upsert after its write, in the same transaction: it holds the profiles' write locks, and a new edge needs the lock
// of its profile, so the counts include every other transaction's edges and stay true until commit. Never writes.
// Params: $profile_ids [str], $limit
// Returns: profile_id, identities (only the profiles over $limit)
UNWIND $profile_ids AS profile_id
MATCH (p:Profile {id: profile_id}) USING INDEX p:Profile(id)
WITH p, COUNT { (p)-[:HAS_IDENTITY|OBSERVED]->() } AS identities
WHERE identities > $limit
RETURN p.id AS profile_id, identities
