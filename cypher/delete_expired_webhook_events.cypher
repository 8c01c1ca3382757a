// Deletes replay records older than the replay window, a bounded batch at a time.
// Params: $expired_before, $limit
// Returns: deleted
MATCH (e:WebhookEvent)
WHERE e.at < $expired_before
WITH e LIMIT $limit
DETACH DELETE e
RETURN count(*) AS deleted
