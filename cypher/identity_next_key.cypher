// The smallest identity key after $after, read in the order of the (key, value) constraint's index. Never writes.
// Params: $after. Returns: key (no row when there is none)
MATCH (i:Identity) USING INDEX i:Identity(key, value)
WHERE i.key > $after AND i.value IS NOT NULL
RETURN i.key AS key
ORDER BY i.key
LIMIT 1
