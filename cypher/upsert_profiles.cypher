// Upserts profiles; locks each one (version bump) for the rest of the transaction.
// Params: $rows [{index, mode: "source"|"id"|"new", profile_id, new_id, source, source_id, attributes, nonce}],
// $now. Returns: index, profile_id, created (true only for the request that created it); no row for a
// mode "id" row whose profile does not exist.
UNWIND $rows AS row
CALL (row) {
  WITH row WHERE row.mode = 'source'
  MERGE (p:Profile {source: row.source, source_id: row.source_id})
    ON CREATE SET p.id = row.new_id, p.created_at = $now, p.created_by = row.nonce
  RETURN p
  UNION
  WITH row WHERE row.mode = 'new'
  MERGE (p:Profile {id: row.new_id})
    ON CREATE SET p.source = row.source, p.created_at = $now, p.created_by = row.nonce
  RETURN p
  UNION
  WITH row WHERE row.mode = 'id'
  MATCH (p:Profile {id: row.profile_id})
  RETURN p
}
SET p += row.attributes, p.updated_at = $now, p.version = coalesce(p.version, 0) + 1
RETURN row.index AS index, p.id AS profile_id, p.created_by = row.nonce AS created
