"""Transformer decoder on keras-hub's TransformerDecoder layers, with incremental decoding.

The state carries each decoder layer's self-attention keys and values ([batch, heads,
positions so far, head_dim], growing by one a step) and the memory carries the
cross-attention keys/values, computed once per source. A step therefore costs one
position, not the whole prefix (see `step` for why it does not call keras-hub's cached
layer call). `uncached_step` re-runs the full prefix instead;
it exists so tests can prove both give the same output.

Memory of another width than `hidden_dim` (an RNN, image or speech encoder) is
projected to `hidden_dim` first, so this decoder runs over any encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import keras_hub
import tensorflow as tf
from keras import layers

from s2s_zoo.models.base import Decoder, Encoder, EncoderOutput, TensorDict, register_decoder
from s2s_zoo.models.encoders.transformer import POSITIONS, embed_tokens, position_layer

SHARING = ("none", "decoder_output", "all")


@dataclass
class TransformerDecoderConfig:
    """A Transformer decoder (pre-LN by default)."""

    vocab_size: int = 0
    hidden_dim: int = 256
    intermediate_dim: int = 1024
    num_heads: int = 4
    decoder_layers: int = 3
    dropout: float = 0.1
    positions: str = "sinusoidal"
    max_positions: int = 512
    # "decoder_output": target embedding tied with the output projection;
    # "all": also shared with the source embedding (needs one joint vocabulary).
    share_embeddings: str = "decoder_output"
    normalize_first: bool = True

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.share_embeddings not in SHARING:
            raise ValueError(f"share_embeddings must be one of {SHARING}")
        if self.hidden_dim % self.num_heads:
            raise ValueError("hidden_dim must be divisible by num_heads")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads


@register_decoder("transformer")
class TransformerDecoder(Decoder):
    """See the module docstring.

    >>> from s2s_zoo.models.encoders import TransformerEncoder, TransformerEncoderConfig
    >>> from s2s_zoo.models.seq2seq import Seq2SeqModel
    >>> small = dict(hidden_dim=8, intermediate_dim=16, num_heads=2)
    >>> enc = TransformerEncoder(TransformerEncoderConfig(vocab_size=40, encoder_layers=1,
    ...                                                   **small))
    >>> dec = TransformerDecoder(TransformerDecoderConfig(vocab_size=30, decoder_layers=1,
    ...                                                   **small), enc.memory_dim)
    >>> Seq2SeqModel(enc, dec).training_model.output.shape
    (None, None, 30)
    """

    config_class = TransformerDecoderConfig

    def __init__(self, config: TransformerDecoderConfig, memory_dim: int) -> None:
        super().__init__(config, memory_dim)
        c = config
        tie = c.share_embeddings != "none"
        self.token_embedding = keras_hub.layers.ReversibleEmbedding(
            c.vocab_size, c.hidden_dim, tie_weights=tie, name="target_embedding"
        )
        self.positions = position_layer(c.positions, c.max_positions, "target_positions")
        self.dropout = layers.Dropout(c.dropout, name="target_dropout")
        self.memory_projection = (
            None if memory_dim == c.hidden_dim else layers.Dense(c.hidden_dim, name="memory_proj")
        )
        self.layers = [
            keras_hub.layers.TransformerDecoder(
                intermediate_dim=c.intermediate_dim,
                num_heads=c.num_heads,
                dropout=c.dropout,
                normalize_first=c.normalize_first,
                name=f"decoder_{i}",
            )
            for i in range(c.decoder_layers)
        ]
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")
        self.output_projection = (
            None if tie else layers.Dense(c.vocab_size, name="output_projection")
        )

    @classmethod
    def requires_joint_vocabulary(cls, config: TransformerDecoderConfig) -> bool:
        return config.share_embeddings == "all"

    @property
    def max_target_positions(self) -> int:
        """The position table's size: learned positions end there, and sinusoidal ones
        were never trained past it either (targets are cut to fit, see
        `Seq2SeqInference`)."""
        return self.config.max_positions

    def share_source_embedding(self, encoder: Encoder) -> None:
        """With share_embeddings="all", the encoder reads tokens through our embedding."""
        if self.config.share_embeddings != "all":
            return
        source_vocab = getattr(encoder.config, "vocab_size", None)
        if source_vocab != self.config.vocab_size or not hasattr(encoder, "token_embedding"):
            raise ValueError(
                "share_embeddings='all' needs a token encoder with one joint vocabulary for "
                f"both sides; got source vocabulary {source_vocab} and target "
                f"{self.config.vocab_size}"
            )
        encoder.token_embedding = self.token_embedding

    # -- graph pieces ---------------------------------------------------------------------

    def _embed(self, ids, start_index=0):
        return embed_tokens(ids, self.token_embedding, self.positions, self.dropout,
                            self.config.hidden_dim, start_index)  # fmt: skip

    def _memory(self, memory):
        return memory if self.memory_projection is None else self.memory_projection(memory)

    def _logits(self, x):
        if self.config.normalize_first:
            x = self.norm(x)
        if self.output_projection is None:
            logits = self.token_embedding(x, reverse=True)
        else:
            logits = self.output_projection(x)
        return keras.ops.cast(logits, "float32")

    def _decode_full(self, target_ids, memory, source_mask):
        target_mask = keras.ops.not_equal(target_ids, 0)
        y = self._embed(target_ids)
        for layer in self.layers:
            y = layer(
                y,
                encoder_sequence=memory,
                decoder_padding_mask=target_mask,
                encoder_padding_mask=source_mask,
            )
        return self._logits(y)

    def teacher_forcing(self, target_ids, encoded: EncoderOutput):
        return self._decode_full(target_ids, self._memory(encoded.memory), encoded.mask)

    def encoder_tensors(self, encoded: EncoderOutput) -> list:
        return [self._memory(encoded.memory), encoded.mask]

    # -- the decoder-step interface -------------------------------------------------------

    def start(self, tensors, max_length=None) -> tuple[TensorDict, TensorDict]:
        """Cross-attention keys/values once per source; empty self-attention caches.

        Caches are [batch, heads, time, head_dim] and grow by one position a step
        (`max_length` is not needed: nothing is preallocated). See `step` for why.
        """
        memory, mask = (tf.identity(t) for t in tensors)
        batch = tf.shape(memory)[0]
        c = self.config
        out: TensorDict = {"memory": memory, "mask": mask}
        out["attention_mask"] = tf.cast(mask, tf.bool)[:, None, None, :]  # [B, 1, 1, S]
        for i, layer in enumerate(self.layers):
            attention = layer._cross_attention_layer
            out[f"cross_k_{i}"] = _heads_first(attention._key_dense(memory))
            out[f"cross_v_{i}"] = _heads_first(attention._value_dense(memory))
        state: TensorDict = {"index": tf.zeros([batch], tf.int32)}
        empty = tf.zeros([batch, c.num_heads, 0, c.head_dim], memory.dtype)
        for i in range(c.decoder_layers):
            state[f"self_k_{i}"] = empty
            state[f"self_v_{i}"] = empty
        return out, state

    def step(self, token_ids, state, memory) -> tuple[tf.Tensor, TensorDict]:
        """One target position through every layer, with the layers' own weights.

        Why not keras-hub's cached call: it keeps each layer's cache as one
        [batch, 2, max_length, heads, head_dim] tensor and, every step, slices keys
        and values out of it, writes the new position with `slice_update`, stacks
        them back and transposes them for its einsum: about eight copies of the
        whole preallocated cache per layer, plus our beam reorder. Profiled on the
        gettext transformer_tiny export (beam 4, batch 32) those copies were most
        of a 26 ms step. Here caches are heads-first and grow by concatenation (one
        copy of the positions so far), attention is two batched matmuls with the
        key transpose folded in, and the cross-attention keys/values are computed
        once in `start`. `uncached_step` (keras-hub's full call) is the reference
        the tests hold this to.
        """
        index = state["index"][0]  # every row of a search is at the same position
        y = self._embed(token_ids[:, None], start_index=index)  # [B, 1, hidden]
        new_state: TensorDict = {"index": state["index"] + 1}
        for i, layer in enumerate(self.layers):
            own = layer._self_attention_layer
            x = layer._self_attention_layer_norm(y) if layer.normalize_first else y
            keys = tf.concat([state[f"self_k_{i}"], _heads_first(own._key_dense(x))], axis=2)
            values = tf.concat([state[f"self_v_{i}"], _heads_first(own._value_dense(x))], 2)
            new_state[f"self_k_{i}"], new_state[f"self_v_{i}"] = keys, values
            y = _residual(layer, y, x, own, keys, values, None, layer._self_attention_layer_norm)
            cross = layer._cross_attention_layer
            x = layer._cross_attention_layer_norm(y) if layer.normalize_first else y
            y = _residual(
                layer, y, x, cross, memory[f"cross_k_{i}"], memory[f"cross_v_{i}"],
                memory["attention_mask"], layer._cross_attention_layer_norm,
            )  # fmt: skip
            x = layer._feedforward_layer_norm(y) if layer.normalize_first else y
            x = layer._feedforward_output_dense(layer._feedforward_intermediate_dense(x))
            y = x + y
            if not layer.normalize_first:
                y = layer._feedforward_layer_norm(y)
        return self._logits(y)[:, 0, :], new_state

    def uncached_state(self, batch: tf.Tensor, max_length: int) -> TensorDict:
        """State for `uncached_step`: the prefix so far, padded."""
        return {
            "index": tf.zeros([batch], tf.int32),
            "prefix": tf.zeros([batch, max_length], tf.int32),
        }

    def uncached_step(self, token_ids, state, memory) -> tuple[tf.Tensor, TensorDict]:
        """Reference step: decode the whole prefix again (quadratic; tests only)."""
        index = state["index"][0]
        width = tf.shape(state["prefix"])[1]
        prefix = state["prefix"] + token_ids[:, None] * tf.one_hot(index, width, dtype=tf.int32)
        logits = self._decode_full(prefix[:, : index + 1], memory["memory"], memory["mask"])
        return logits[:, -1, :], {"index": state["index"] + 1, "prefix": prefix}


def _heads_first(x: tf.Tensor) -> tf.Tensor:
    """[batch, time, heads, head_dim] (Keras' projection layout) -> [batch, heads, time, dim]."""
    return tf.transpose(x, [0, 2, 1, 3])


def _attend(attention, query, keys, values, mask) -> tf.Tensor:
    """Multi-head attention of one query position over heads-first keys/values, through
    `attention`'s (a Keras MultiHeadAttention) own projections and scaling.

    Masked positions get Keras' masked-softmax logit (-1e9) and weight exactly 0, so a
    row with no position left attends to nothing, as Keras' Softmax layer (its path for
    layers with dropout) does; its dropout-free path leaves such rows uniform. Text
    sources always hold EOS, so only an encoder with an empty memory meets the case. The
    softmax runs in float32 (Keras' Softmax layer runs it in the layer's dtype: under
    mixed precision decoding is a little more exact than teacher forcing)."""
    q = _heads_first(attention._query_dense(query)) * attention._inverse_sqrt_key_dim
    scores = tf.matmul(tf.cast(q, keys.dtype), keys, transpose_b=True)  # [B, H, 1, T]
    scores = tf.cast(scores, tf.float32)
    if mask is not None:
        scores = tf.where(mask, scores, -1e9)
    weights = tf.nn.softmax(scores, axis=-1)
    if mask is not None:
        weights *= tf.cast(mask, weights.dtype)
    weights = tf.cast(weights, values.dtype)
    context = _heads_first(tf.matmul(weights, values))  # [B, 1, H, D]
    return attention._output_dense(context)


def _residual(layer, y, x, attention, keys, values, mask, norm) -> tf.Tensor:
    """y + attention(x) (then the norm, for post-LN layers)."""
    y = _attend(attention, x, keys, values, mask) + y
    return y if layer.normalize_first else norm(y)
