// Identities held by the given profiles, split into those only these profiles hold (to delete) and those
// other profiles still hold (to keep). Params: $profile_ids. Returns: key, value, blocked, held_elsewhere
UNWIND $profile_ids AS pid
MATCH (p:Profile {id: pid}) USING INDEX p:Profile(id)
MATCH (p)-[:HAS_IDENTITY|OBSERVED]->(i:Identity)
WITH DISTINCT i
RETURN i.key AS key, i.value AS value, coalesce(i.blocked, false) AS blocked,
       EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-(o:Profile) WHERE NOT o.id IN $profile_ids } AS held_elsewhere
