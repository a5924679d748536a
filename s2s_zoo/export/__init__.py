"""SavedModel export (versioned, atomic) and the TF Serving conformance check."""
