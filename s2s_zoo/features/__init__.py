"""In-graph front ends for non-text sources: images and audio (core TF ops only)."""
