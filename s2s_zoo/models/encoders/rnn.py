"""Text encoder: token embedding + stacked (bi)directional SimpleRNN/LSTM/GRU."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from s2s_zoo.layers.recurrent import RecurrentStack, ReverseSource, check_cell
from s2s_zoo.models.base import Encoder, EncoderOutput, register_encoder


@dataclass
class RNNEncoderConfig:
    """A recurrent text encoder (everything needed to rebuild it)."""

    vocab_size: int = 0
    cell: str = "gru"
    embedding_dim: int = 128
    encoder_units: int = 128  # per direction: a bidirectional memory is twice as wide
    encoder_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0
    residual: bool = False
    reverse_source: bool = False  # Sutskever et al. 2014: read the source backwards

    def __post_init__(self) -> None:
        check_cell(self.cell)
        if self.encoder_layers < 1:
            raise ValueError("encoder_layers must be at least 1")


@register_encoder("rnn")
class RNNEncoder(Encoder):
    """Embeds token ids and runs a recurrent stack; final states summarise the source.

    >>> enc = RNNEncoder(RNNEncoderConfig(vocab_size=50, encoder_units=8, embedding_dim=4))
    >>> out = enc(enc.inputs())
    >>> tuple(out.memory.shape)
    (None, None, 16)
    """

    config_class = RNNEncoderConfig
    source_features = "token_ids"

    def __init__(self, config: RNNEncoderConfig) -> None:
        super().__init__(config)
        c = config
        self.token_embedding = layers.Embedding(
            c.vocab_size, c.embedding_dim, mask_zero=True, name="source_embedding"
        )
        self.reverse = ReverseSource(name="reverse_source") if c.reverse_source else None
        self.dropout = layers.Dropout(c.dropout, name="source_dropout")
        self.stack = RecurrentStack(
            c.cell,
            c.encoder_units,
            c.encoder_layers,
            c.bidirectional,
            c.dropout,
            c.residual,
            name="encoder",
        )

    @property
    def memory_dim(self) -> int:
        return self.stack.output_dim

    def inputs(self) -> list:
        return [keras.Input((None,), dtype="int32", name="source_ids")]

    def memory_to_source(self, weights: tf.Tensor, source_lengths: tf.Tensor) -> tf.Tensor:
        """With `reverse_source`, memory position j holds source token length - 1 - j."""
        if not self.config.reverse_source:
            return weights
        lengths = tf.cast(source_lengths, tf.int64)
        return tf.reverse_sequence(weights, lengths, seq_axis=len(weights.shape) - 1, batch_axis=0)

    def __call__(self, inputs: list) -> EncoderOutput:
        source_ids = inputs[0]
        mask = keras.ops.not_equal(source_ids, 0)
        if self.reverse is not None:  # padding stays at the end, so the mask holds
            source_ids = self.reverse(source_ids)
        x = self.dropout(self.token_embedding(source_ids))
        memory, states = self.stack(x, mask=mask)
        # source_ids as the memory sees them (reversed too), so position i of both agree
        return EncoderOutput(memory, mask, self.stack.summary(states), source_ids=source_ids)
