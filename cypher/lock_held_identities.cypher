// Write-locks, in (key, value) order, every identity the given profiles hold (linking or not), so no other
// transaction can add or remove an edge to them until this one ends. Call it with profiles already locked.
// Params: $profile_ids [str]. Returns: locked
UNWIND $profile_ids AS pid
MATCH (p:Profile {id: pid}) USING INDEX p:Profile(id)
MATCH (p)-[:HAS_IDENTITY|OBSERVED]->(i:Identity)
WITH DISTINCT i
ORDER BY i.key, i.value
SET i.last_seen = i.last_seen
RETURN count(i) AS locked
