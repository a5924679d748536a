"""Recurrent building blocks the RNN family needs beyond Keras' own layers."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

CELL_CLASSES = {"gru": layers.GRUCell, "lstm": layers.LSTMCell, "simple_rnn": layers.SimpleRNNCell}


class ReverseSource(layers.Layer):
    """Reverse each sequence's non-padding prefix (Sutskever et al. 2014 source reversal)."""

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
    """

    def __init__(
        self,
        cell: str,
        units: int,
        num_layers: int,
        dropout: float,
        residual: bool,
        attention,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True  # the target mask passes through to the logits
        self.units = units
        self.residual = residual
        self.cells = [CELL_CLASSES[cell](units, name=f"cell_{i}") for i in range(num_layers)]
        self.states_per_layer = 2 if cell == "lstm" else 1
        self.attention = attention
        self.attention_projection = layers.Dense(
            units, activation="tanh", name="attention_projection"
        )
        self.dropout = layers.Dropout(dropout)

    def step(self, inputs, feed, states, memory, keys, memory_mask, training=None):
        """One position: ([B, E] input, [B, U] previous attentional vector, flat states)."""
        x = keras.ops.concatenate([inputs, feed], axis=-1)
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
        outputs = tf.TensorArray(embedded.dtype, size=steps).write(0, first)

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
