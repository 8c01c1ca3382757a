// Adds keyed hashes of erased values to the suppression list. Params: $hashes [str], $now, $request_id
UNWIND $hashes AS h
MERGE (s:Suppression {hash: h})
  ON CREATE SET s.at = $now, s.request_id = $request_id
