// Which of the given (profile, identity) pairs already have an edge, and of which kind.
// Params: $pairs [{profile_id, key, value}]
// Returns: profile_id, key, value, linking
UNWIND $pairs AS pair
MATCH (p:Profile {id: pair.profile_id})-[e:HAS_IDENTITY|OBSERVED]->(i:Identity {key: pair.key, value: pair.value})
USING INDEX p:Profile(id)
RETURN pair.profile_id AS profile_id, pair.key AS key, pair.value AS value, type(e) = 'HAS_IDENTITY' AS linking
