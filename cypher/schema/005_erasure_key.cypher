// The erasure key's fingerprint (never the key): one (:ErasureKey {id, fingerprint, state, generation, wrapped})
// node. The constraint makes it a singleton, so writers racing on an empty database MERGE one node: the first wins.
CREATE CONSTRAINT erasure_key_id IF NOT EXISTS
FOR (k:ErasureKey) REQUIRE k.id IS UNIQUE;
