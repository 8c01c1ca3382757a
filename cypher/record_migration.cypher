// Records one applied schema migration. Params: $version, $name, $checksum, $applied_at.
MERGE (m:SchemaMigration {version: $version})
ON CREATE SET m.name = $name, m.checksum = $checksum, m.applied_at = $applied_at
