// One page of the export's rows: profiles in id order (keyset: $after, $limit), as ONE record (one Bolt message per
// page: the driver's cost per record dominates an export otherwise); app/db/export.py adds each one's customer.
// Params: $after, $limit. Returns: rows [[profile_id, source, source_id]], last
MATCH (p:Profile)
WHERE p.id > $after
WITH p ORDER BY p.id LIMIT $limit
RETURN collect([p.id, p.source, p.source_id]) AS rows, max(p.id) AS last
