"""Summarization: headline generation from Debian package descriptions (long description -> synopsis)."""
