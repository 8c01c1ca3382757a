// How many identities are contested now (stopped linking: their holders hold too many values of a
// max_per_customer key), through the index of cypher/schema/010_contested_identities.cypher. Never writes.
// Params: none. Returns one row: contested
MATCH (i:Identity)
WHERE i.contested = true
RETURN count(i) AS contested
