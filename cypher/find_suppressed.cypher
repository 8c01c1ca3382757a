// Which of the given keyed hashes are on the suppression list. Params: $hashes. Returns: hash
UNWIND $hashes AS h
MATCH (s:Suppression {hash: h}) USING INDEX s:Suppression(hash)
RETURN s.hash AS hash
