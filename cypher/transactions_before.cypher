// How many transactions on this database began before $before (server time): a rotation waits until none is left,
// since they may have checked the erasure key before it was marked rotating.
// Params: $database, $before
// Returns: older
SHOW TRANSACTIONS YIELD database, startTime
WHERE database = $database AND datetime(startTime) < $before
RETURN count(*) AS older
