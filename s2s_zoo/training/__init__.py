"""Losses, metrics, strategies and the fit loop used by every recipe."""
