// The seq of the newest event of the change log (0: none yet). Params: none. Returns: last
OPTIONAL MATCH (s:ChangeSequence {name: 'changes'})
RETURN coalesce(s.last, 0) AS last
