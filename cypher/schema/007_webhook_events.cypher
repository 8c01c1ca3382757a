// Replay records of the CRM webhook: one (:WebhookEvent {event_id, at, attempted_at}) per processed delivery, shared
// by every replica. The uniqueness constraint makes a concurrent claim of the same event id wait for the first one.
CREATE CONSTRAINT webhook_event_id IF NOT EXISTS
FOR (e:WebhookEvent) REQUIRE e.event_id IS UNIQUE;

// Cleaning up the records older than the replay window.
CREATE INDEX webhook_event_at IF NOT EXISTS
FOR (e:WebhookEvent) ON (e.at);
