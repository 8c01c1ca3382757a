// Every edge of the identities a renormalize batch folds away, with the edge (if any) the same profile already
// has to the target value. Params: $folds [{key, from_value, to_value}]
// Returns: key, from_value, to_value, profile_id, raw, source, first_seen, last_seen,
//          target_edges [{raw, source, first_seen, last_seen}]
UNWIND $folds AS f
MATCH (old:Identity {key: f.key, value: f.from_value}) USING INDEX old:Identity(key, value)
MATCH (p:Profile)-[e:HAS_IDENTITY|OBSERVED]->(old)
RETURN f.key AS key, f.from_value AS from_value, f.to_value AS to_value, p.id AS profile_id,
       e.raw AS raw, e.source AS source, e.first_seen AS first_seen, e.last_seen AS last_seen,
       [(p)-[t:HAS_IDENTITY|OBSERVED]->(:Identity {key: f.key, value: f.to_value}) |
          {raw: t.raw, source: t.source, first_seen: t.first_seen, last_seen: t.last_seen}] AS target_edges
