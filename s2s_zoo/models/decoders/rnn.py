"""Recurrent decoder: stacked SimpleRNN/LSTM/GRU with Bahdanau or Luong attention.

The decoder is written once as `_run` over a [batch, time] block of target ids;
the training graph calls it on the whole target (teacher forcing) and the step
graph on one position, so both share every layer. With input feeding (Luong et
al. 2015) the recurrence itself needs the previous attentional vector, so both
views go through `InputFeedingDecoder`.

A bridge maps the encoder's summary (its final states, or the mean of the memory
for encoders without one) to every decoder layer's initial states; it absorbs
bidirectional concatenation and any width, depth or cell-type mismatch, so this
decoder runs over any encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from s2s_zoo.layers.attention import ATTENTION_KINDS, MemoryAttention
from s2s_zoo.layers.recurrent import (
    InputFeedingDecoder,
    RecurrentStack,
    check_cell,
    states_per_layer,
)
from s2s_zoo.models.base import (
    Decoder,
    EncoderOutput,
    TensorDict,
    masked_mean,
    register_decoder,
)


@dataclass
class RNNDecoderConfig:
    """A recurrent attention decoder (everything needed to rebuild it)."""

    vocab_size: int = 0
    cell: str = "gru"
    embedding_dim: int = 128
    decoder_units: int = 256
    decoder_layers: int = 1
    attention: str = "bahdanau"
    attention_units: int = 128
    dropout: float = 0.0
    residual: bool = False
    input_feeding: bool = False  # Luong: feed the last attentional vector into the next step

    def __post_init__(self) -> None:
        check_cell(self.cell)
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        if self.decoder_layers < 1:
            raise ValueError("decoder_layers must be at least 1")
        if self.input_feeding and self.attention == "none":
            raise ValueError("input_feeding needs an attention mechanism")


@register_decoder("rnn")
class RNNDecoder(Decoder):
    """See the module docstring.

    >>> from s2s_zoo.models.encoders import RNNEncoder, RNNEncoderConfig
    >>> from s2s_zoo.models.seq2seq import Seq2SeqModel
    >>> enc = RNNEncoder(RNNEncoderConfig(vocab_size=40, encoder_units=8, embedding_dim=8))
    >>> dec = RNNDecoder(RNNDecoderConfig(vocab_size=30, decoder_units=16, embedding_dim=8),
    ...                  enc.memory_dim)
    >>> Seq2SeqModel(enc, dec).training_model.output.shape
    (None, None, 30)
    """

    config_class = RNNDecoderConfig

    def __init__(self, config: RNNDecoderConfig, memory_dim: int) -> None:
        super().__init__(config, memory_dim)
        c = config
        self.target_embedding = layers.Embedding(
            c.vocab_size, c.embedding_dim, mask_zero=True, name="target_embedding"
        )
        self.bridges = [
            [
                layers.Dense(
                    c.decoder_units, activation="tanh" if k == 0 else None, name=f"bridge_{i}_{k}"
                )
                for k in range(states_per_layer(c.cell))
            ]
            for i in range(c.decoder_layers)
        ]
        self.dropout = layers.Dropout(c.dropout, name="target_dropout")
        self.attention = None
        self.feeding = None
        if c.input_feeding:
            self.feeding = InputFeedingDecoder(
                c.cell, c.decoder_units, c.decoder_layers, c.dropout, c.residual,
                c.attention, c.attention_units, memory_dim, name="decoder",
            )  # fmt: skip
            self.attention = self.feeding.attention
        else:
            self.stack = RecurrentStack(
                c.cell, c.decoder_units, c.decoder_layers, False, c.dropout, c.residual,
                name="decoder",
            )  # fmt: skip
            if c.attention != "none":
                self.attention = MemoryAttention(
                    c.attention, c.attention_units, c.decoder_units, memory_dim, name="attention"
                )
                self.attention_projection = layers.Dense(
                    c.decoder_units, activation="tanh", name="attention_projection"
                )
        self.output_projection = layers.Dense(
            c.vocab_size, dtype="float32", name="output_projection"
        )
        self.num_states = c.decoder_layers * states_per_layer(c.cell)
        self.step_model: keras.Model | None = None

    @property
    def has_attention(self) -> bool:
        return self.attention is not None

    def output_bias(self):
        # the runner starts it at log p(token): see s2s_zoo.training.priors for why
        return self.output_projection.bias

    # -- graph pieces ---------------------------------------------------------------------

    def _initial_states(self, encoded: EncoderOutput) -> list[list]:
        summary = encoded.summary or [masked_mean(encoded.memory, encoded.mask)]
        return [
            [bridge(summary[min(k, len(summary) - 1)]) for k, bridge in enumerate(row)]
            for row in self.bridges
        ]

    def _keys(self, memory):
        return self.attention.keys(memory) if self.attention is not None else memory

    def _run(self, target_ids, states, memory, keys, source_mask):
        """Non-feeding decoder over a block of target ids -> (logits, states, weights)."""
        target_mask = keras.ops.not_equal(target_ids, 0)
        y = self.dropout(self.target_embedding(target_ids))
        y, new_states = self.stack(y, initial_states=states)
        weights = None
        if self.attention is not None:
            context, weights = self.attention(y, memory, keys, target_mask, source_mask)
            y = self.attention_projection(keras.ops.concatenate([y, context], axis=-1))
            y = self.dropout(y)
        return self.output_projection(y), new_states, weights

    def teacher_forcing(self, target_ids, encoded: EncoderOutput):
        initial = self._initial_states(encoded)
        memory, mask = encoded.memory, encoded.mask
        keys = self._keys(memory)
        if self.feeding is not None:
            flat = [s for row in initial for s in row]
            y = self.dropout(self.target_embedding(target_ids))
            return self.output_projection(self.feeding(y, memory, keys, mask, flat))
        logits, _, _ = self._run(target_ids, initial, memory, keys, mask)
        return logits

    def encoder_tensors(self, encoded: EncoderOutput) -> list:
        keys = self._keys(encoded.memory)
        flat = [s for row in self._initial_states(encoded) for s in row]
        if self.feeding is None:
            self._build_step_model(keys.shape[-1])
        return [encoded.memory, keys, encoded.mask, *flat]

    def _build_step_model(self, keys_dim: int) -> None:
        """The one-position view of `_run`, as a Keras model sharing its layers."""
        c = self.config
        token = keras.Input((1,), dtype="int32", name="token_ids")
        memory_in = keras.Input((None, self.memory_dim), name="memory")
        keys_in = keras.Input((None, keys_dim), name="keys")
        mask_in = keras.Input((None,), dtype="bool", name="source_mask")
        state_in = [
            keras.Input((c.decoder_units,), name=f"state_{i}") for i in range(self.num_states)
        ]
        n = states_per_layer(c.cell)
        nested = [state_in[i * n : (i + 1) * n] for i in range(c.decoder_layers)]
        logits, states, weights = self._run(token, nested, memory_in, keys_in, mask_in)
        outputs = [logits[:, 0, :], *[s for row in states for s in row]]
        if weights is not None:
            outputs.append(weights[:, 0, :])
        self.step_model = keras.Model(
            [token, memory_in, keys_in, mask_in, *state_in], outputs, name="rnn_step"
        )

    # -- the decoder-step interface -------------------------------------------------------

    def start(self, tensors, max_length=None) -> tuple[TensorDict, TensorDict]:
        # tf.identity drops the Keras mask eager tensors carry; the step graph takes the
        # source mask as an explicit input instead.
        memory, keys, mask, *states = [tf.identity(t) for t in tensors]
        state = {f"state_{i}": s for i, s in enumerate(states)}
        if self.attention is not None:  # attention weights of the last step, for inspection
            state["attention"] = tf.zeros(tf.shape(mask), memory.dtype)
        if self.feeding is not None:
            state["feed"] = tf.zeros([tf.shape(mask)[0], self.config.decoder_units], memory.dtype)
        return {"memory": memory, "keys": keys, "mask": mask}, state

    def step(self, token_ids, state, memory) -> tuple[tf.Tensor, TensorDict]:
        states = [state[f"state_{i}"] for i in range(self.num_states)]
        if self.feeding is not None:
            attentional, new_states, weights = self.feeding.step(
                self.target_embedding(token_ids),
                state["feed"],
                states,
                memory["memory"],
                memory["keys"],
                memory["mask"],
                training=False,
            )
            new_state = {f"state_{i}": s for i, s in enumerate(new_states)}
            new_state["attention"] = tf.cast(weights, state["attention"].dtype)
            new_state["feed"] = tf.cast(attentional, state["feed"].dtype)
            return self.output_projection(attentional), new_state
        out = self.step_model(
            [token_ids[:, None], memory["memory"], memory["keys"], memory["mask"], *states],
            training=False,
        )
        new_state = {f"state_{i}": s for i, s in enumerate(out[1 : 1 + self.num_states])}
        if self.attention is not None:
            new_state["attention"] = tf.cast(out[-1], state["attention"].dtype)
        return out[0], new_state
