// Deletes the replay record of a claim whose delivery did nothing (it failed, or was ambiguous), so a redelivery
// is decided afresh; a record another claim holds meanwhile (another time) is kept.
// Params: $event_id, $at (the time of the claim being released)
// Returns: released
OPTIONAL MATCH (e:WebhookEvent {event_id: $event_id})
WHERE e.at = $at
DETACH DELETE e
RETURN count(e) AS released
