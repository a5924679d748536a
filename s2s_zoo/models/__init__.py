"""Encoder-decoder families and the catalog that names them."""

from s2s_zoo.models.registry import CATALOG, build_from_catalog, build_from_json, build_model

__all__ = ["CATALOG", "build_from_catalog", "build_from_json", "build_model"]
