// The database server's clock (the start times of its transactions are read against it).
// Params: none. Returns: now
RETURN datetime.realtime() AS now
