// Calls off a rotation that has re-keyed nothing yet: the key node is active again under the old key.
// Params: $id, $new (the rotation's fingerprint)
// Returns: aborted (one row when called off; none when entries were already re-keyed or no such rotation runs)
MATCH (k:ErasureKey {id: $id})
WHERE k.state = 'rotating' AND k.rotating_to = $new
  AND NOT EXISTS { MATCH (s:Suppression) WHERE s.rekeyed_for = $new }
SET k.state = 'active'
REMOVE k.rotating_to, k.rotation_started_at
RETURN true AS aborted
