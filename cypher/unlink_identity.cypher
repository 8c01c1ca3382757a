// Removes one profile's edge to an identity, and the identity itself when no profile holds it any more.
// Params: $profile_id, $key, $value. Returns: removed, identity_deleted
MATCH (i:Identity {key: $key, value: $value})
SET i.last_seen = i.last_seen
WITH i
OPTIONAL MATCH (:Profile {id: $profile_id})-[e:HAS_IDENTITY|OBSERVED]->(i)
DELETE e
WITH i, count(e) AS removed
CALL (i) {
  WITH i WHERE NOT EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-() }
  DELETE i
  RETURN 1 AS deleted
  UNION
  WITH i WHERE EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-() }
  RETURN 0 AS deleted
}
RETURN removed, deleted = 1 AS identity_deleted
