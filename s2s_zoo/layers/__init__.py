"""Layer blocks the model families are built from."""
