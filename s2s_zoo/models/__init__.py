"""Encoders, decoders, the model that joins them, and the catalog that names models."""

from s2s_zoo.models.registry import (
    CATALOG,
    build_from_catalog,
    build_from_json,
    build_model,
    catalog_names,
)
from s2s_zoo.models.seq2seq import Seq2SeqModel

__all__ = [
    "CATALOG",
    "Seq2SeqModel",
    "build_from_catalog",
    "build_from_json",
    "build_model",
    "catalog_names",
]
