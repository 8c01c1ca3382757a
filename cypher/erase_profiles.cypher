// Deletes profiles (with all their edges) and the given identities once no profile holds them.
// Params: $profile_ids, $identities [{key, value}]. Returns: profiles_deleted, identities_deleted
CALL () {
  UNWIND $profile_ids AS pid
  MATCH (p:Profile {id: pid}) USING INDEX p:Profile(id)
  DETACH DELETE p
  RETURN count(*) AS profiles_deleted
}
CALL () {
  UNWIND $identities AS ident
  MATCH (i:Identity {key: ident.key, value: ident.value}) USING INDEX i:Identity(key, value)
  WHERE NOT EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-() }
  DELETE i
  RETURN count(*) AS identities_deleted
}
RETURN profiles_deleted, identities_deleted
