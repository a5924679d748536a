"""Text encoder: token + position embeddings and keras-hub TransformerEncoder layers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import keras_hub
from keras import layers

from s2s_zoo.models.base import Encoder, EncoderOutput, register_encoder

POSITIONS = ("sinusoidal", "learned")


@dataclass
class TransformerEncoderConfig:
    """A Transformer text encoder (pre-LN by default)."""

    vocab_size: int = 0
    hidden_dim: int = 256
    intermediate_dim: int = 1024
    num_heads: int = 4
    encoder_layers: int = 3
    dropout: float = 0.1
    positions: str = "sinusoidal"
    max_positions: int = 512
    normalize_first: bool = True

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.hidden_dim % self.num_heads:
            raise ValueError("hidden_dim must be divisible by num_heads")


def position_layer(positions: str, max_positions: int, name: str) -> layers.Layer:
    """Learned position embeddings, or the fixed sinusoidal encoding."""
    if positions == "learned":
        return keras_hub.layers.PositionEmbedding(max_positions, name=name)
    return keras_hub.layers.SinePositionEncoding(name=name)


def embed_tokens(ids, embedding, positions, dropout, hidden_dim: int, start_index=0):
    """Scaled token embeddings plus positions, then dropout (Vaswani et al. 2017)."""
    x = embedding(ids) * math.sqrt(hidden_dim)
    x = x + keras.ops.cast(positions(x, start_index=start_index), x.dtype)
    return dropout(x)


@register_encoder("transformer")
class TransformerEncoder(Encoder):
    """keras-hub encoder layers over embedded tokens.

    >>> enc = TransformerEncoder(TransformerEncoderConfig(vocab_size=50, hidden_dim=8,
    ...                          intermediate_dim=16, num_heads=2, encoder_layers=1))
    >>> tuple(enc(enc.inputs()).memory.shape)
    (None, None, 8)
    """

    config_class = TransformerEncoderConfig
    source_features = "token_ids"

    def __init__(self, config: TransformerEncoderConfig) -> None:
        super().__init__(config)
        c = config
        # replaced by the decoder's embedding when the model shares all embeddings
        self.token_embedding = layers.Embedding(c.vocab_size, c.hidden_dim, name="source_embedding")
        self.positions = position_layer(c.positions, c.max_positions, "source_positions")
        self.dropout = layers.Dropout(c.dropout, name="source_dropout")
        self.layers = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim=c.intermediate_dim,
                num_heads=c.num_heads,
                dropout=c.dropout,
                normalize_first=c.normalize_first,
                name=f"encoder_{i}",
            )
            for i in range(c.encoder_layers)
        ]
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")

    @property
    def memory_dim(self) -> int:
        return self.config.hidden_dim

    @property
    def max_source_positions(self) -> int:
        """The position table's size (learned positions end there)."""
        return self.config.max_positions

    def inputs(self) -> list:
        return [keras.Input((None,), dtype="int32", name="source_ids")]

    def __call__(self, inputs: list) -> EncoderOutput:
        c = self.config
        source_ids = inputs[0]
        mask = keras.ops.not_equal(source_ids, 0)
        x = embed_tokens(source_ids, self.token_embedding, self.positions, self.dropout,
                         c.hidden_dim)  # fmt: skip
        for layer in self.layers:
            x = layer(x, padding_mask=mask)
        if c.normalize_first:
            x = self.norm(x)
        return EncoderOutput(x, mask, None, source_ids=source_ids)
