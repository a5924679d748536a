"""The catalog: model names -> (family, default config), and families -> builders.

Recipes, the CLI and the tests iterate over `CATALOG`, so a new entry is trained,
decoded, exported and conformance-checked by the test suite automatically.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from s2s_zoo.models.base import Seq2SeqModel
from s2s_zoo.models.media import ImageCaptioner, SpeechRecognizer
from s2s_zoo.models.rnn import RNNSeq2Seq
from s2s_zoo.models.transformer import TransformerSeq2Seq

FAMILIES: dict[str, type[Seq2SeqModel]] = {
    "rnn": RNNSeq2Seq,
    "transformer": TransformerSeq2Seq,
    "image_rnn": ImageCaptioner,
    "speech_rnn": SpeechRecognizer,
}
# what each family reads: text (token ids), image (pixels) or audio (log-mel frames)
SOURCE_KIND = {"rnn": "text", "transformer": "text", "image_rnn": "image", "speech_rnn": "audio"}

# name -> (family, config overrides on top of the family's defaults)
CATALOG: dict[str, tuple[str, dict[str, Any]]] = {
    # Sutskever et al. 2014: stacked LSTMs, no attention, source read backwards.
    "rnn_plain": (
        "rnn",
        {
            "cell": "lstm",
            "attention": "none",
            "bidirectional": False,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "reverse_source": True,
        },
    ),
    "simple_rnn_bahdanau": ("rnn", {"cell": "simple_rnn", "attention": "bahdanau"}),
    "gru_bahdanau": ("rnn", {"cell": "gru", "attention": "bahdanau", "bidirectional": True}),
    # Luong et al. 2015: general (bilinear) score with input feeding.
    "lstm_luong": ("rnn", {"cell": "lstm", "attention": "luong_general", "input_feeding": True}),
    "lstm_luong_dot": ("rnn", {"cell": "lstm", "attention": "luong_dot"}),
    # deeper stack with residual connections between layers (GNMT-style)
    "lstm_residual": (
        "rnn",
        {
            "cell": "lstm",
            "attention": "bahdanau",
            "encoder_layers": 3,
            "decoder_layers": 2,
            "residual": True,
            "dropout": 0.1,
            "encoder_units": 128,
            "decoder_units": 256,
        },
    ),
    "transformer_tiny": (
        "transformer",
        {
            "hidden_dim": 128,
            "intermediate_dim": 512,
            "num_heads": 4,
            "encoder_layers": 2,
            "decoder_layers": 2,
        },
    ),
    "transformer_base": (
        "transformer",
        {
            "hidden_dim": 512,
            "intermediate_dim": 2048,
            "num_heads": 8,
            "encoder_layers": 6,
            "decoder_layers": 6,
            "positions": "sinusoidal",
        },
    ),
    # Show, Attend and Tell: MobileNetV3 grid (stride 16) + LSTM decoder with additive attention
    "show_attend_tell": (
        "image_rnn",
        {"backbone": "mobilenet_v3_small", "cell": "lstm", "attention": "bahdanau"},
    ),
    # Listen, Attend and Spell style: 4x conv subsampling, 2 BiLSTM layers, additive attention
    "speech_las": (
        "speech_rnn",
        {"cell": "lstm", "encoder_layers": 2, "bidirectional": True, "attention": "bahdanau"},
    ),
}


def source_kind(name: str) -> str:
    """'text', 'image' or 'audio': what catalog entry `name` takes as its source."""
    return SOURCE_KIND[CATALOG[name][0]]


def catalog_names(kind: str | None = None) -> list[str]:
    """Catalog entries, optionally only those reading `kind` sources; sorted."""
    return sorted(n for n in CATALOG if kind is None or source_kind(n) == kind)


def build_model(family: str, config: dict[str, Any]) -> Seq2SeqModel:
    """Build a model of `family` from a config dict (unknown keys are an error)."""
    if family not in FAMILIES:
        raise KeyError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    cls = FAMILIES[family]
    known = {f.name for f in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown config fields for family {family!r}: {unknown}")
    return cls(cls.config_class(**config))


def build_from_catalog(
    name: str, source_vocab_size: int, target_vocab_size: int, **overrides: Any
) -> Seq2SeqModel:
    """Build catalog entry `name` for the given vocabularies, with optional overrides."""
    if name not in CATALOG:
        raise KeyError(f"unknown model {name!r}; the catalog has {sorted(CATALOG)}")
    family, defaults = CATALOG[name]
    config = {
        **defaults,
        **overrides,
        "source_vocab_size": source_vocab_size,
        "target_vocab_size": target_vocab_size,
    }
    return build_model(family, config)


def build_from_json(text: str) -> Seq2SeqModel:
    """Rebuild a model from `Seq2SeqModel.config_json()` output."""
    spec = json.loads(text)
    return build_model(spec["family"], spec["config"])
