// Removes the merge edge from source to target. Params: $source_id, $target_id. Returns: removed
OPTIONAL MATCH (:Profile {id: $source_id})-[m:MERGED_INTO]->(:Profile {id: $target_id})
DELETE m
RETURN count(m) AS removed
