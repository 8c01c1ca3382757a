// Whether the database holds any profile (the demo data set is loaded only into an empty one). Never writes.
// Params: none. Returns: profile_id (no row when there is no profile)
MATCH (p:Profile)
RETURN p.id AS profile_id
LIMIT 1
