// Re-keys entries of the suppression list: each hash becomes HMAC(new key, hash), marked with the rotation's target
// fingerprint so that a resumed rotation skips it (run again, it changes nothing).
// Params: $target (the new key's fingerprint), $rows [{old, new}]
// Returns: rekeyed
UNWIND $rows AS row
MATCH (s:Suppression {hash: row.old})
WHERE coalesce(s.rekeyed_for, '') <> $target
SET s.hash = row.new, s.rekeyed_for = $target
RETURN count(s) AS rekeyed
