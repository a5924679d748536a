"""s2s-zoo: sequence-to-sequence models for TensorFlow/Keras that export to TF Serving."""

__version__ = "0.1.0"
