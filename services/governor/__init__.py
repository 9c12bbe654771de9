"""The send governor: each session's durable send queue and the pace it keeps."""
