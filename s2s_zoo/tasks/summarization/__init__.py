"""Summarization: headline generation from Debian package descriptions (description -> synopsis)."""
