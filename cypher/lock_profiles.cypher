// Write-locks profiles (version bump) for the rest of the transaction; returns those that exist.
// Params: $profile_ids [str] (sorted, to keep lock order consistent)
// Returns: profile_id
UNWIND $profile_ids AS pid
MATCH (p:Profile {id: pid}) USING INDEX p:Profile(id)
SET p.version = coalesce(p.version, 0) + 1
RETURN p.id AS profile_id
