"""Recurrent building blocks shared by the RNN encoders and the RNN decoder.

- `RecurrentStack`: stacked SimpleRNN/LSTM/GRU layers (optionally bidirectional,
  residual, with dropout between layers) applied in a functional graph.
- `ReverseSource`: Sutskever et al. (2014) source reversal that keeps padding last.
- `InputFeedingDecoder`: Luong et al. (2015) input feeding, which forces the
  decoder to run step by step even under teacher forcing.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import layers

from s2s_zoo.layers.attention import MemoryAttention

CELLS = {"gru": layers.GRU, "lstm": layers.LSTM, "simple_rnn": layers.SimpleRNN}
CELL_CLASSES = {"gru": layers.GRUCell, "lstm": layers.LSTMCell, "simple_rnn": layers.SimpleRNNCell}


def check_cell(cell: str) -> None:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")


def states_per_layer(cell: str) -> int:
    """LSTMs carry (h, c); GRU and SimpleRNN carry h."""
    return 2 if cell == "lstm" else 1


class RecurrentStack:
    """Stacked recurrent layers applied in a functional graph; owns its Keras layers.

    Not a Keras layer itself: Keras' RNN layers take masks and initial states as call
    arguments, which pass through a functional graph unchanged, so the stack is a
    helper that creates the layers once and wires them wherever it is called (the
    training graph and the one-step decoding graph share them).

    >>> stack = RecurrentStack("gru", units=8, num_layers=2, name="enc")
    >>> x = keras.Input((None, 4))
    >>> seq, states = stack(x)  # seq: [batch, time, 8]; states: per layer, [h]
    """

    def __init__(
        self,
        cell: str,
        units: int,
        num_layers: int,
        bidirectional: bool = False,
        dropout: float = 0.0,
        residual: bool = False,
        name: str = "rnn",
    ) -> None:
        check_cell(cell)
        self.cell, self.units, self.bidirectional = cell, units, bidirectional
        self.residual = residual
        self.dropout = layers.Dropout(dropout, name=f"{name}_dropout")
        self.layers = []
        for i in range(num_layers):
            rnn = CELLS[cell](units, return_sequences=True, return_state=True, name=f"{name}_{i}")
            if bidirectional:
                rnn = layers.Bidirectional(rnn, name=f"{name}_bi_{i}")
            self.layers.append(rnn)

    @property
    def output_dim(self) -> int:
        return self.units * (2 if self.bidirectional else 1)

    def __call__(self, x, mask=None, initial_states=None):
        """-> (top sequence, [per layer: list of final states])."""
        final_states = []
        for i, rnn in enumerate(self.layers):
            kwargs: dict[str, Any] = {}
            if initial_states is not None:
                kwargs["initial_state"] = initial_states[i]
            if mask is not None:
                kwargs["mask"] = mask
            out = rnn(x, **kwargs)
            seq, states = self.dropout(out[0]), list(out[1:])
            if self.residual and i > 0 and seq.shape[-1] == x.shape[-1]:
                seq = layers.Add()([seq, x])  # a Keras layer, so the padding mask carries on
            x = seq
            final_states.append(states)
        return x, final_states

    def summary(self, final_states) -> list:
        """The top layer's final states, directions concatenated per state kind."""
        top = final_states[-1]
        if not self.bidirectional:
            return top
        k = states_per_layer(self.cell)  # Bidirectional returns [fw_1..fw_k, bw_1..bw_k]
        return [keras.ops.concatenate([top[j], top[k + j]], axis=-1) for j in range(k)]


class ReverseSource(layers.Layer):
    """Reverse each sequence's non-padding prefix (Sutskever et al. 2014 source reversal).

    >>> ReverseSource()(tf.constant([[5, 6, 7, 0]])).numpy().tolist()
    [[7, 6, 5, 0]]
    """

    def call(self, ids):
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1)
        return tf.reverse_sequence(ids, lengths, seq_axis=1, batch_axis=0)

    def compute_output_spec(self, ids):
        return keras.KerasTensor(ids.shape, ids.dtype)


class InputFeedingDecoder(layers.Layer):
    """Stacked RNN cells + attention with Luong et al. (2015) input feeding.

    The attentional vector of step t-1 is concatenated to the input at step t, so
    training has to run step by step; `call` loops over time with `tf.while_loop`
    and `step` is the very same computation for one position (used by decoding).

    >>> dec = InputFeedingDecoder("lstm", 8, 1, 0.0, False, "luong_general", 8, 6)
    >>> memory = tf.zeros([2, 5, 6]); mask = tf.ones([2, 5], tf.bool)
    >>> keys = dec.attention.keys(memory)
    >>> out = dec(tf.zeros([2, 3, 4]), memory, keys, mask, [tf.zeros([2, 8])] * 2)
    >>> out.shape
    TensorShape([2, 3, 8])
    """

    def __init__(
        self,
        cell: str,
        units: int,
        num_layers: int,
        dropout: float,
        residual: bool,
        attention_kind: str,
        attention_units: int,
        memory_dim: int,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True  # the target mask passes through to the logits
        self.cell_type, self.units, self.num_layers = cell, units, num_layers
        self.dropout_rate, self.residual = dropout, residual
        self.attention_kind, self.attention_units = attention_kind, attention_units
        self.memory_dim = memory_dim
        self.cells = [CELL_CLASSES[cell](units, name=f"cell_{i}") for i in range(num_layers)]
        self.states_per_layer = states_per_layer(cell)
        self.attention = MemoryAttention(
            attention_kind, attention_units, units, memory_dim, name="attention"
        )
        self.attention_projection = layers.Dense(
            units, activation="tanh", name="attention_projection"
        )
        self.dropout = layers.Dropout(dropout)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "cell": self.cell_type,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout_rate,
            "residual": self.residual,
            "attention_kind": self.attention_kind,
            "attention_units": self.attention_units,
            "memory_dim": self.memory_dim,
        }

    def step(self, inputs, feed, states, memory, keys, memory_mask, training=None):
        """One position: ([B, E] input, [B, U] previous attentional vector, flat states)."""
        x = keras.ops.concatenate([inputs, keras.ops.cast(feed, inputs.dtype)], axis=-1)
        n = self.states_per_layer
        new_states = []
        for i, cell in enumerate(self.cells):
            out, cell_states = cell(x, states[i * n : (i + 1) * n], training=training)
            cell_states = cell_states if isinstance(cell_states, (list, tuple)) else [cell_states]
            out = self.dropout(out, training=training)
            if self.residual and i > 0:
                out = out + x
            x = out
            new_states.extend(cell_states)
        query_mask = tf.ones_like(x[:, :1], dtype=tf.bool)
        context, weights = self.attention(x[:, None, :], memory, keys, query_mask, memory_mask)
        attentional = self.attention_projection(keras.ops.concatenate([x, context[:, 0]], -1))
        attentional = self.dropout(attentional, training=training)
        return attentional, new_states, weights[:, 0]

    def call(self, embedded, memory, keys, memory_mask, initial_states, training=None):
        """[B, T, E] target embeddings -> [B, T, U] attentional vectors (teacher forcing)."""
        batch, steps = tf.shape(embedded)[0], tf.shape(embedded)[1]
        feed = tf.zeros([batch, self.units], embedded.dtype)
        # Step 0 outside the loop: it builds the cells' weights outside the loop body.
        first, states, _ = self.step(
            embedded[:, 0], feed, list(initial_states), memory, keys, memory_mask, training
        )
        outputs = tf.TensorArray(first.dtype, size=steps).write(0, first)

        def body(t, feed, states, outputs):
            out, states, _ = self.step(
                embedded[:, t], feed, states, memory, keys, memory_mask, training
            )
            return t + 1, out, states, outputs.write(t, out)

        _, _, _, outputs = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(1), first, states, outputs)
        )
        return tf.transpose(outputs.stack(), [1, 0, 2])

    def compute_output_spec(self, embedded, *args, **kwargs):
        return keras.KerasTensor((embedded.shape[0], embedded.shape[1], self.units), embedded.dtype)
