"""The catalog: named models (encoder + decoder + their settings + training defaults).

Recipes, `s2s-zoo train --model NAME`, the CLI and the tests iterate over
`CATALOG`, so a new entry is trained, decoded, exported and conformance-checked by
the test suite automatically. Entries carry training and decoding defaults
(OpenNMT-tf's `auto_config`), so every entry is trainable without a recipe.

Config overrides are flat: a key goes to the encoder and/or the decoder config
that has a field of that name (`dropout`, `cell` reach both); `encoder.KEY` or
`decoder.KEY` targets one side only. Unknown keys are an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# importing the packages registers the built-in encoders and decoders
import s2s_zoo.models.decoders  # noqa: F401
import s2s_zoo.models.encoders  # noqa: F401
from s2s_zoo.models.base import DECODERS, ENCODERS, config_fields, make_config
from s2s_zoo.models.seq2seq import Seq2SeqModel


@dataclass(frozen=True)
class CatalogEntry:
    """A named architecture with its own training and decoding defaults."""

    encoder: str
    decoder: str
    config: dict[str, Any] = field(default_factory=dict)  # flat overrides, see module doc
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    decoding: dict[str, Any] = field(default_factory=dict)  # DecodingConfig fields
    about: str = ""
    # why some recurrent layers cannot use the fused cuDNN kernels on a GPU ("" = all can)
    not_cudnn: str = ""


_RNN_TRAIN = {"epochs": 10, "batch_size": 64, "learning_rate": 3e-3, "patience": 2}
# Transformers: linear warmup then inverse square root decay (Vaswani et al. 2017)
_TRANSFORMER_TRAIN = {
    "epochs": 10,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "patience": 2,
    "warmup_steps": 400,
}
# See et al. 2017 sizes halved for CPUs: BiLSTM 128 per direction, LSTM 256, embedding 128
# shared by both sides (one joint vocabulary); summaries of at most 40 tokens.
_SUMM = {"cell": "lstm", "bidirectional": True, "encoder_units": 128, "embedding_dim": 128,
         "decoder_units": 256, "attention_units": 128}  # fmt: skip
_SUMM_TRAIN = {"epochs": 20, "batch_size": 64, "learning_rate": 2e-3, "patience": 2}
_SUMM_DECODING = {"beam_size": 4, "length_penalty": 0.6, "num_hypotheses": 4,
                  "max_length_ratio": 0.0, "max_length_offset": 40}  # fmt: skip

_DIALOGUE_TRAIN = {"epochs": 30, "batch_size": 32, "learning_rate": 2e-3, "patience": 3}
# Responses are short whatever the conversation's length: a fixed output budget.
_DIALOGUE_DECODING = {"max_length_ratio": 0.0, "max_length_offset": 64, "max_length_cap": 64}

CATALOG: dict[str, CatalogEntry] = {
    "rnn_plain": CatalogEntry(
        "rnn", "rnn",
        {"cell": "lstm", "attention": "none", "bidirectional": False, "encoder_layers": 2,
         "decoder_layers": 2, "reverse_source": True},
        _RNN_TRAIN,
        about="Sutskever et al. 2014: stacked LSTMs, no attention, source read backwards",
    ),
    "simple_rnn_bahdanau": CatalogEntry(
        "rnn", "rnn", {"cell": "simple_rnn", "attention": "bahdanau"}, _RNN_TRAIN,
        about="SimpleRNN encoder-decoder with additive attention",
        not_cudnn="SimpleRNN has no cuDNN kernel",
    ),
    "gru_bahdanau": CatalogEntry(
        "rnn", "rnn", {"cell": "gru", "attention": "bahdanau", "bidirectional": True}, _RNN_TRAIN,
        about="Bahdanau et al. 2015: bidirectional GRU encoder, additive attention",
    ),
    "lstm_luong": CatalogEntry(
        "rnn", "rnn", {"cell": "lstm", "attention": "luong_general", "input_feeding": True},
        _RNN_TRAIN,
        about="Luong et al. 2015: general (bilinear) score with input feeding",
        not_cudnn="input feeding runs the decoder cells step by step (the encoder is fused)",
    ),
    "lstm_luong_dot": CatalogEntry(
        "rnn", "rnn", {"cell": "lstm", "attention": "luong_dot"}, _RNN_TRAIN,
        about="Luong et al. 2015: dot score (decoder width = encoder output width)",
    ),
    "lstm_residual": CatalogEntry(
        "rnn", "rnn",
        {"cell": "lstm", "attention": "bahdanau", "encoder_layers": 3, "decoder_layers": 2,
         "residual": True, "dropout": 0.1, "encoder_units": 128, "decoder_units": 256},
        _RNN_TRAIN,
        about="GNMT-style deeper stack with residual connections between layers",
    ),
    "transformer_tiny": CatalogEntry(
        "transformer", "transformer",
        {"hidden_dim": 128, "intermediate_dim": 512, "num_heads": 4, "encoder_layers": 2,
         "decoder_layers": 2},
        _TRANSFORMER_TRAIN,
        about="Small pre-LN Transformer (keras-hub layers)",
    ),
    "transformer_base": CatalogEntry(
        "transformer", "transformer",
        {"hidden_dim": 512, "intermediate_dim": 2048, "num_heads": 8, "encoder_layers": 6,
         "decoder_layers": 6, "positions": "sinusoidal"},
        {**_TRANSFORMER_TRAIN, "learning_rate": 7e-4, "warmup_steps": 4000},
        about="Vaswani et al. 2017 base size",
    ),
    "show_attend_tell": CatalogEntry(
        "image_cnn", "rnn",
        {"backbone": "mobilenet_v3_small", "cell": "lstm", "attention": "bahdanau"},
        {"epochs": 30, "batch_size": 32, "learning_rate": 2e-3, "patience": 4},
        # captions do not grow with the (fixed) grid: a flat budget
        {"max_length_ratio": 0.0, "max_length_offset": 24},
        about="Xu et al. 2015: MobileNetV3 grid (stride 16) + LSTM decoder with attention",
    ),
    "speech_las": CatalogEntry(
        "speech_conv_rnn", "rnn",
        {"cell": "lstm", "encoder_layers": 2, "bidirectional": True, "attention": "bahdanau"},
        {"epochs": 20, "batch_size": 32, "learning_rate": 2e-3, "patience": 3},
        {"max_length_ratio": 1.0, "max_length_offset": 10},  # a token per 40 ms position
        about="Listen, Attend and Spell style: 4x conv subsampling, BiLSTM, attention",
    ),
    "seq2seq_attention_summ": CatalogEntry(
        "rnn", "pointer_generator", {**_SUMM, "copy_source": False}, _SUMM_TRAIN,
        _SUMM_DECODING,
        about="See et al. 2017 baseline: BiLSTM + LSTM with additive attention, no copying",
    ),
    "pointer_generator": CatalogEntry(
        "rnn", "pointer_generator", _SUMM, _SUMM_TRAIN, _SUMM_DECODING,
        about="See et al. 2017: the same network mixing generation with copying source tokens",
    ),
    "pointer_generator_coverage": CatalogEntry(
        "rnn", "pointer_generator", {**_SUMM, "coverage": True, "coverage_loss_weight": 1.0},
        _SUMM_TRAIN, _SUMM_DECODING,
        about="See et al. 2017 with coverage attention and coverage loss (weight 1.0)",
    ),
    "memn2n_dialog": CatalogEntry(
        "memory_network", "rnn",
        {"embedding_dim": 64, "hops": 3, "cell": "gru", "attention": "bahdanau",
         "decoder_units": 128, "attention_units": 64},
        _DIALOGUE_TRAIN, _DIALOGUE_DECODING,
        about="Bordes et al. 2017: end-to-end memory network (3 hops) + GRU decoder attending "
        "over the slots; generates, never copies",
    ),
    "mem2seq_dialog": CatalogEntry(
        "memory_network", "mem2seq",
        {"embedding_dim": 64, "hops": 3, "decoder_units": 128, "attention_units": 64,
         "said_ngrams": 8, "next_piece": True, "summary_features": True},
        _DIALOGUE_TRAIN, _DIALOGUE_DECODING,
        about="Madotto et al. 2018: memory network + GRU decoder that copies memory words "
        "(pointer with a generate/copy gate, run features for multi-piece entities and "
        "said n-gram features: what the bot already proposed)",
    ),
}  # fmt: skip


def source_features(name: str) -> str:
    """What catalog entry `name` reads: "token_ids", "image", "audio_features", ..."""
    return ENCODERS[entry(name).encoder].source_features


def catalog_names(source: str | None = None) -> list[str]:
    """Catalog entries, optionally only those whose encoder reads `source` features."""
    return sorted(n for n in CATALOG if source is None or source_features(n) == source)


def entry(name: str) -> CatalogEntry:
    if name not in CATALOG:
        raise KeyError(f"unknown model {name!r}; the catalog has {sorted(CATALOG)}")
    return CATALOG[name]


def split_overrides(
    encoder: str, decoder: str, overrides: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Route flat config keys to the encoder and/or decoder (see the module docstring)."""
    enc_cls, dec_cls = ENCODERS[encoder], DECODERS[decoder]
    enc, dec = {}, {}
    for key, value in overrides.items():
        side, _, name = key.rpartition(".")
        if side == "encoder":
            enc[name] = value
        elif side == "decoder":
            dec[name] = value
        elif side:
            raise ValueError(f"config key {key!r}: the prefix must be 'encoder.' or 'decoder.'")
        else:
            targets = [
                d for cls, d in ((enc_cls, enc), (dec_cls, dec)) if key in config_fields(cls)
            ]
            if not targets:
                raise ValueError(
                    f"config key {key!r} is neither an encoder field of {encoder!r} "
                    f"({sorted(config_fields(enc_cls))}) nor a decoder field of {decoder!r} "
                    f"({sorted(config_fields(dec_cls))})"
                )
            for target in targets:
                target[key] = value
    return enc, dec


def build_model(
    encoder: str, encoder_config: dict[str, Any], decoder: str, decoder_config: dict[str, Any]
) -> Seq2SeqModel:
    """Build an encoder and a decoder by registered name from config dicts, and join them."""
    for what, name, known in (("encoder", encoder, ENCODERS), ("decoder", decoder, DECODERS)):
        if name not in known:
            raise KeyError(f"unknown {what} {name!r}; registered: {sorted(known)}")
    enc = ENCODERS[encoder](make_config(ENCODERS[encoder], encoder_config, "encoder"))
    dec_cls = DECODERS[decoder]
    dec = dec_cls(make_config(dec_cls, decoder_config, "decoder"), enc.memory_dim)
    return Seq2SeqModel(enc, dec)


def build_from_catalog(
    name: str, source_vocab_size: int, target_vocab_size: int, **overrides: Any
) -> Seq2SeqModel:
    """Build catalog entry `name` for the given vocabularies, with optional overrides.

    `source_vocab_size` is ignored by encoders that read no tokens (images, audio).
    """
    e = entry(name)
    enc, dec = split_overrides(e.encoder, e.decoder, {**e.config, **overrides})
    if "vocab_size" in config_fields(ENCODERS[e.encoder]):
        enc["vocab_size"] = source_vocab_size
    dec["vocab_size"] = target_vocab_size
    return build_model(e.encoder, enc, e.decoder, dec)


def requires_joint_vocabulary(name: str, **overrides: Any) -> bool:
    """Whether catalog entry `name` (with overrides) shares token ids across sides, so its
    task must train one joint vocabulary; decided from the configs, before any build."""
    e = entry(name)
    _, dec = split_overrides(e.encoder, e.decoder, {**e.config, **overrides})
    decoder = DECODERS[e.decoder]
    return decoder.requires_joint_vocabulary(make_config(decoder, dec, "decoder"))


def build_from_json(text: str) -> Seq2SeqModel:
    """Rebuild a model from `Seq2SeqModel.config_json()` output."""
    spec = json.loads(text)
    if "encoder" not in spec or "decoder" not in spec:
        raise ValueError(
            "model.json has no 'encoder'/'decoder' entries: it was written by an older "
            "s2s-zoo (a single 'family'); retrain, or export again with that version"
        )
    return build_model(
        spec["encoder"]["type"], spec["encoder"]["config"],
        spec["decoder"]["type"], spec["decoder"]["config"],
    )  # fmt: skip
