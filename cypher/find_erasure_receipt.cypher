// An erasure receipt by request id. Params: $request_id. Returns: receipt
MATCH (r:ErasureReceipt {request_id: $request_id})
RETURN r {.*} AS receipt
