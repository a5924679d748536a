"""Shared fixtures: one tiny model trained briefly on the number task and exported once."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_catalog
from s2s_zoo.tasks.translation.numbers import make_number_splits
from s2s_zoo.training.fit import TrainConfig, compile_model, fit

TINY = {"embedding_dim": 16, "encoder_units": 16, "decoder_units": 32, "attention_units": 16}


def make_tiny_inference(pairs, seed: int = 0, cap: int = 24) -> Seq2SeqInference:
    keras.utils.set_random_seed(seed)
    pre = TextPreprocessor(
        train_sentencepiece([s for s, _ in pairs], 200),
        train_sentencepiece([t for _, t in pairs], 200),
        max_source_length=48,
        max_target_length=48,
    )
    model = build_from_catalog("gru_bahdanau", pre.source_vocab_size, pre.target_vocab_size, **TINY)
    decoding = DecodingConfig(beam_size=3, length_penalty=0.6, num_hypotheses=2, max_length_cap=cap)
    return Seq2SeqInference(pre, model, decoding)


@pytest.fixture(scope="session")
def number_splits():
    return make_number_splits(1500, 50, 50, seed=0)


@pytest.fixture(scope="session")
def trained_inference(number_splits):
    """A tiny GRU+Bahdanau model after one short epoch: not good, but not random."""
    inference = make_tiny_inference(number_splits["train"])
    config = TrainConfig(epochs=1, batch_size=32, learning_rate=5e-3, patience=0)
    compile_model(inference.model.training_model, config)
    fit(
        inference.model.training_model,
        make_dataset(number_splits["train"], inference.preprocessor, 32),
        None,
        config,
        verbose=0,
    )
    return inference


@pytest.fixture(scope="session")
def exported(trained_inference, tmp_path_factory):
    """(inference, path of exported version 1)."""
    base = tmp_path_factory.mktemp("exported") / "tiny_numbers"
    return trained_inference, export_saved_model(trained_inference, base)


def strings(tensor: tf.Tensor) -> list:
    return [s.decode("utf-8") for s in tensor.numpy().reshape(-1)]


TINY_BY_ENCODER = {
    "rnn": {"embedding_dim": 8, "encoder_units": 8, "decoder_units": 16, "attention_units": 8},
    "image_cnn": {
        "embedding_dim": 8,
        "decoder_units": 16,
        "attention_units": 8,
        "feature_dim": 16,
        "image_height": 32,
        "image_width": 64,
    },
    "speech_conv_rnn": {
        "embedding_dim": 8,
        "encoder_units": 8,
        "decoder_units": 16,
        "attention_units": 8,
        "conv_channels": 2,
        "feature_dim": 16,
    },
    "memory_network": {"embedding_dim": 8, "hops": 2, "decoder_units": 16, "attention_units": 8},
    "transformer": {
        "hidden_dim": 16,
        "intermediate_dim": 32,
        "num_heads": 2,
        "max_positions": 64,
        "dropout": 0.0,
        # tiny also in depth (transformer_base has 6 + 6); 2 decoder layers keep the
        # per-layer caches exercised
        "encoder_layers": 1,
        "decoder_layers": 2,
    },
}


def tiny_overrides(name: str) -> dict:
    """Tiny config overrides for catalog entry `name`, by its encoder type."""
    from s2s_zoo.models.registry import entry

    return TINY_BY_ENCODER[entry(name).encoder]


@pytest.fixture(scope="session")
def tiny_preprocessor():
    from s2s_zoo.tasks.translation.numbers import number_pair

    pairs = [number_pair(n) for n in range(0, 1000, 7)]
    return pairs, TextPreprocessor(
        train_sentencepiece([s for s, _ in pairs], 80),
        train_sentencepiece([t for _, t in pairs], 80),
        max_source_length=32,
        max_target_length=32,
    )


@pytest.fixture(scope="session")
def tiny_joint_preprocessor(tiny_preprocessor):
    """The same pairs with ONE SentencePiece model for both sides (copying decoders)."""
    pairs, _ = tiny_preprocessor
    proto = train_sentencepiece([s for s, _ in pairs] + [t for _, t in pairs], 120)
    return pairs, TextPreprocessor(proto, proto, max_source_length=32, max_target_length=32)
