"""Data loading for s2s-zoo: user parallel-data readers and the built-in number task."""
