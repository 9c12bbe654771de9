"""Messages: sending, scheduling, the delivery lifecycle, inbound ones, history, bulk batches and stats."""
