// Which of the given keyed hashes are on the suppression list. Never writes.
// Params: $hashes [str]. Returns: hash
UNWIND $hashes AS h
MATCH (s:Suppression {hash: h})
RETURN s.hash AS hash
