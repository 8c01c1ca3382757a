// The outbound delivery's state: the cursor delivered so far (0: nothing yet) and how many batches are parked.
// Never writes.
// Params: $delivery
// Returns: delivered_seq, parked
OPTIONAL MATCH (d:ChangeDelivery {name: $delivery})
CALL {
  MATCH (b:ParkedChangeBatch)
  RETURN count(b) AS parked
}
RETURN coalesce(d.delivered_seq, 0) AS delivered_seq, parked
