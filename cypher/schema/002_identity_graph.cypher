// Profiles: stable ids, idempotent upserts on (source, source_id).
CREATE CONSTRAINT profile_id IF NOT EXISTS
FOR (p:Profile) REQUIRE p.id IS UNIQUE;

CREATE CONSTRAINT profile_source_record IF NOT EXISTS
FOR (p:Profile) REQUIRE (p.source, p.source_id) IS UNIQUE;

// One node per normalized (key, value): concurrent writers cannot duplicate an identity.
// Community edition has no existence constraints, so the application always sets both properties.
CREATE CONSTRAINT identity_key_value IF NOT EXISTS
FOR (i:Identity) REQUIRE (i.key, i.value) IS UNIQUE;

// Retention purge and "recently changed" scans.
CREATE INDEX profile_updated_at IF NOT EXISTS
FOR (p:Profile) ON (p.updated_at);
