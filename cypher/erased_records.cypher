// The source records of profiles an erasure deletes, to put them on the suppression list (as keyed hashes).
// Params: $profile_ids [str]. Returns: profile_id, source, source_id
UNWIND $profile_ids AS pid
MATCH (p:Profile {id: pid}) USING INDEX p:Profile(id)
RETURN p.id AS profile_id, p.source AS source, p.source_id AS source_id
ORDER BY profile_id
