"""Transformer encoder-decoder built from keras-hub's TransformerEncoder/Decoder layers.

Decoding is incremental: the state carries each decoder layer's self-attention
key/value cache ([batch, 2, max_length, heads, head_dim], keras-hub's layout) and
the memory carries the cross-attention keys/values, computed once per source. A
step therefore costs one position, not the whole prefix. `uncached_step` re-runs
the full prefix instead; it exists so tests can prove both give the same output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import keras_hub
import tensorflow as tf
from keras import layers

from s2s_zoo.models.base import Seq2SeqModel, TensorDict

POSITIONS = ("sinusoidal", "learned")
SHARING = ("none", "decoder_output", "all")


@dataclass
class TransformerConfig:
    """Architecture of a Transformer encoder-decoder."""

    source_vocab_size: int
    target_vocab_size: int
    hidden_dim: int = 256
    intermediate_dim: int = 1024
    num_heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    dropout: float = 0.1
    positions: str = "sinusoidal"
    max_positions: int = 512
    # "decoder_output": target embedding tied with the output projection;
    # "all": also shared with the source embedding (needs a joint vocabulary).
    share_embeddings: str = "decoder_output"
    normalize_first: bool = True

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.share_embeddings not in SHARING:
            raise ValueError(f"share_embeddings must be one of {SHARING}")
        if self.share_embeddings == "all" and self.source_vocab_size != self.target_vocab_size:
            raise ValueError("share_embeddings='all' needs one joint vocabulary for both sides")
        if self.hidden_dim % self.num_heads:
            raise ValueError("hidden_dim must be divisible by num_heads")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads


class TransformerSeq2Seq(Seq2SeqModel):
    """Pre-LN (by default) Transformer; see the module docstring for the decoding cache."""

    family = "transformer"
    config_class = TransformerConfig

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        c = config
        tie = c.share_embeddings != "none"
        self.target_embedding = keras_hub.layers.ReversibleEmbedding(
            c.target_vocab_size, c.hidden_dim, tie_weights=tie, name="target_embedding"
        )
        self.source_embedding = (
            self.target_embedding
            if c.share_embeddings == "all"
            else layers.Embedding(c.source_vocab_size, c.hidden_dim, name="source_embedding")
        )
        if c.positions == "learned":
            self.source_positions = keras_hub.layers.PositionEmbedding(
                c.max_positions, name="source_positions"
            )
            self.target_positions = keras_hub.layers.PositionEmbedding(
                c.max_positions, name="target_positions"
            )
        else:
            self.source_positions = keras_hub.layers.SinePositionEncoding(name="source_positions")
            self.target_positions = keras_hub.layers.SinePositionEncoding(name="target_positions")
        self.dropout = layers.Dropout(c.dropout, name="dropout")
        common = {
            "intermediate_dim": c.intermediate_dim,
            "num_heads": c.num_heads,
            "dropout": c.dropout,
            "normalize_first": c.normalize_first,
        }
        self.encoders = [
            keras_hub.layers.TransformerEncoder(**common, name=f"encoder_{i}")
            for i in range(c.encoder_layers)
        ]
        self.decoders = [
            keras_hub.layers.TransformerDecoder(**common, name=f"decoder_{i}")
            for i in range(c.decoder_layers)
        ]
        self.encoder_norm = layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")
        self.decoder_norm = layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")
        self.output_projection = (
            None if tie else layers.Dense(c.target_vocab_size, name="output_projection")
        )
        self._build_views()

    # -- graph pieces ---------------------------------------------------------------------

    def _embed(self, ids, embedding, positions, start_index=0):
        x = embedding(ids) * math.sqrt(self.config.hidden_dim)
        x = x + keras.ops.cast(positions(x, start_index=start_index), x.dtype)
        return self.dropout(x)

    def _encode_graph(self, source_ids):
        mask = keras.ops.not_equal(source_ids, 0)
        x = self._embed(source_ids, self.source_embedding, self.source_positions)
        for encoder in self.encoders:
            x = encoder(x, padding_mask=mask)
        if self.config.normalize_first:
            x = self.encoder_norm(x)
        return x, mask

    def _logits(self, x):
        if self.config.normalize_first:
            x = self.decoder_norm(x)
        if self.output_projection is None:
            logits = self.target_embedding(x, reverse=True)
        else:
            logits = self.output_projection(x)
        return keras.ops.cast(logits, "float32")

    def _decode_full(self, target_ids, memory, source_mask):
        target_mask = keras.ops.not_equal(target_ids, 0)
        y = self._embed(target_ids, self.target_embedding, self.target_positions)
        for decoder in self.decoders:
            y = decoder(
                y,
                encoder_sequence=memory,
                decoder_padding_mask=target_mask,
                encoder_padding_mask=source_mask,
            )
        return self._logits(y)

    def _build_views(self) -> None:
        source_ids = keras.Input((None,), dtype="int32", name="source_ids")
        target_ids = keras.Input((None,), dtype="int32", name="target_ids")
        memory, mask = self._encode_graph(source_ids)
        logits = self._decode_full(target_ids, memory, mask)
        self.training_model = keras.Model(
            [source_ids, target_ids], logits, name="transformer_seq2seq"
        )
        self.encoder_model = keras.Model(source_ids, [memory, mask], name="transformer_encoder")

    # -- the decoding interface ------------------------------------------------------------

    def encode(
        self, source_ids: tf.Tensor, max_length: tf.Tensor | int | None = None
    ) -> tuple[TensorDict, TensorDict]:
        if max_length is None:
            max_length = self.config.max_positions
        memory, mask = (tf.identity(t) for t in self.encoder_model(source_ids, training=False))
        c = self.config
        batch = tf.shape(source_ids)[0]
        source_len = tf.shape(source_ids)[1]
        out: TensorDict = {"memory": memory, "mask": mask}
        # Fill each layer's cross-attention cache once, with a throwaway query position.
        probe = tf.zeros([batch, 1, c.hidden_dim], memory.dtype)
        for i, decoder in enumerate(self.decoders):
            _, _, cross = decoder(
                probe,
                encoder_sequence=memory,
                encoder_padding_mask=mask,
                self_attention_cache=tf.zeros([batch, 2, 1, c.num_heads, c.head_dim], memory.dtype),
                self_attention_cache_update_index=0,
                cross_attention_cache=tf.zeros(
                    [batch, 2, source_len, c.num_heads, c.head_dim], memory.dtype
                ),
                cross_attention_cache_update_index=0,
                training=False,
            )
            out[f"cross_{i}"] = cross
        state: TensorDict = {"index": tf.zeros([batch], tf.int32)}
        for i in range(c.decoder_layers):
            state[f"self_{i}"] = tf.zeros(
                [batch, 2, max_length, c.num_heads, c.head_dim], memory.dtype
            )
        return out, state

    def step(
        self, token_ids: tf.Tensor, state: TensorDict, memory: TensorDict
    ) -> tuple[tf.Tensor, TensorDict]:
        index = state["index"][0]  # every row of a search is at the same position
        y = self._embed(
            token_ids[:, None], self.target_embedding, self.target_positions, start_index=index
        )
        new_state: TensorDict = {"index": state["index"] + 1}
        for i, decoder in enumerate(self.decoders):
            y, new_state[f"self_{i}"], _ = decoder(
                y,
                encoder_sequence=memory["memory"],
                encoder_padding_mask=memory["mask"],
                self_attention_cache=state[f"self_{i}"],
                self_attention_cache_update_index=index,
                cross_attention_cache=memory[f"cross_{i}"],
                cross_attention_cache_update_index=None,
                training=False,
            )
        return self._logits(y)[:, 0, :], new_state

    def uncached_state(self, batch: tf.Tensor, max_length: int) -> TensorDict:
        """State for `uncached_step`: the prefix so far, padded."""
        return {
            "index": tf.zeros([batch], tf.int32),
            "prefix": tf.zeros([batch, max_length], tf.int32),
        }

    def uncached_step(
        self, token_ids: tf.Tensor, state: TensorDict, memory: TensorDict
    ) -> tuple[tf.Tensor, TensorDict]:
        """Reference step: decode the whole prefix again (quadratic; tests only)."""
        index = state["index"][0]
        width = tf.shape(state["prefix"])[1]
        prefix = state["prefix"] + token_ids[:, None] * tf.one_hot(index, width, dtype=tf.int32)
        logits = self._decode_full(prefix[:, : index + 1], memory["memory"], memory["mask"])
        return logits[:, -1, :], {"index": state["index"] + 1, "prefix": prefix}
