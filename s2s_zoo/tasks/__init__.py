"""Tasks: what the data is (readers, source front end, default corpus, metrics)."""
