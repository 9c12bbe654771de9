"""RQ jobs: plain importable functions that take ids and call services."""
