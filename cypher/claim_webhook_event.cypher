// Claims a CRM webhook event id for this delivery: creates its replay record, or takes over one older than
// $expired_before (its replay window is over). The record is write-locked (SET attempted_at) before its time is
// read, so of two replicas claiming the same event at once exactly one gets claimed = true.
// Params: $event_id, $now, $expired_before
// Returns: claimed, at (the time of the claim that holds the record)
MERGE (e:WebhookEvent {event_id: $event_id})
  ON CREATE SET e.at = $now, e.created_by_claim = true
SET e.attempted_at = $now
WITH e, coalesce(e.created_by_claim, false) AS created
REMOVE e.created_by_claim
WITH e, created OR e.at < $expired_before AS claimed
SET e.at = CASE WHEN claimed THEN $now ELSE e.at END
RETURN claimed, e.at AS at
