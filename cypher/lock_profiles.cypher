// Write-locks profiles (version bump) for the rest of the transaction; returns those that still exist once locked
// (a profile deleted by the transaction this one waited for reads back without properties).
// Params: $profile_ids [str] (sorted, to keep lock order consistent)
// Returns: profile_id
UNWIND $profile_ids AS pid
MATCH (p:Profile {id: pid}) USING INDEX p:Profile(id)
SET p.version = coalesce(p.version, 0) + 1
WITH p WHERE p.id IS NOT NULL
RETURN p.id AS profile_id
