// The ledger of applied migrations: one (:SchemaMigration {version, name, checksum, applied_at}) per file.
CREATE CONSTRAINT schema_migration_version IF NOT EXISTS
FOR (m:SchemaMigration) REQUIRE m.version IS UNIQUE;
