"""Coverage attention and coverage loss (See, Liu and Manning 2017, section 2.3).

Coverage c_t = sum_{t' < t} a_t' is how much attention each source position has received
BEFORE step t. The attention sees it (score = v^T tanh(W_h h_i + W_s s_t + w_c c_t,i + b))
and the loss sum_i min(a_t,i, c_t,i) penalises attending again to covered positions, which
is what stops the repetition of sequence-to-sequence summarizers.

The coverage must exclude the current step: OpenNMT-py once added a_t before computing the
loss (issue #2013), so min(a_t, c_t) = a_t and the "coverage loss" was a constant 1 per
step. Here step 0 always sees zero coverage and has zero coverage loss; the tests check it.

Teacher forcing runs the same `step` over time (tf.scan); decoding calls `step` once per
position with the coverage carried in the decoder state. Core TF ops only (the step runs
inside the exported decoding graph).
"""

from __future__ import annotations

import keras
import tensorflow as tf


class CoverageAttention(keras.layers.Layer):
    """Additive (Bahdanau) attention with a coverage feature, masking padding memory.

    `keys(memory)` computes W_h h once per source; `step(query, memory, keys, coverage,
    memory_mask)` attends for one decoder state and returns (context [B, Dm], weights
    [B, S], next coverage [B, S] = coverage + weights); `call(queries, memory, memory_mask)`
    runs every target position of [B, T, Dq] queries and returns (contexts [B, T, Dm],
    weights [B, T, S], coverages [B, T, S]: the coverage each step saw, step 0's being 0).
    Masked memory positions get weight exactly 0; a row with no real position gets all
    zeros (and a zero context).

    Example:
        >>> attention = CoverageAttention(units=8)
        >>> memory = tf.random.normal([2, 5, 6])
        >>> mask = tf.sequence_mask([5, 3], 5)
        >>> contexts, weights, coverages = attention(tf.random.normal([2, 4, 7]), memory, mask)
        >>> # one step at a time, the coverage carried by the caller:
        >>> keys = attention.keys(memory)
        >>> coverage = tf.zeros([2, 5])
        >>> context, w, coverage = attention.step(tf.random.normal([2, 7]), memory, keys,
        ...                                       coverage, mask)
    """

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.memory_projection = keras.layers.Dense(units, use_bias=False, name="W_h")
        self.query_projection = keras.layers.Dense(units, use_bias=True, name="W_s")  # b_attn

    def build(self, queries_shape, memory_shape, memory_mask_shape=None) -> None:
        # Keras passes the shapes of call()'s arguments by name; step() passes one query's.
        # keys() may have built the memory projection already.
        if not self.memory_projection.built:
            self.memory_projection.build(memory_shape)
        if not self.query_projection.built:
            self.query_projection.build(queries_shape)
        self.coverage_weight = self.add_weight(
            shape=(self.units,), initializer="glorot_uniform", name="w_c"
        )
        self.score_vector = self.add_weight(
            shape=(self.units,), initializer="glorot_uniform", name="v"
        )

    def keys(self, memory):
        """W_h h_i for every memory position, [B, S, units]; reuse it at every step."""
        return self.memory_projection(memory)

    def _attend(self, projected_query, memory, keys, coverage, memory_mask):
        # explicit casts: `step` runs outside __call__, where Keras' mixed-precision
        # autocasting of float32 variables to the compute dtype does not apply
        w_c = tf.cast(self.coverage_weight, keys.dtype)
        v = tf.cast(self.score_vector, keys.dtype)
        features = keys + projected_query[:, None, :] + coverage[..., None] * w_c
        scores = tf.reduce_sum(tf.tanh(features) * v, axis=-1)  # [B, S]
        real = tf.cast(memory_mask, scores.dtype)
        # the dtype's lowest value, not a constant: -1e9 is -inf in float16, and a row with
        # no real position would then give NaN instead of all-zero weights
        scores = tf.where(tf.cast(memory_mask, tf.bool), scores, scores.dtype.min)
        weights = tf.nn.softmax(scores, axis=-1) * real  # exact zeros on padding
        context = tf.einsum("bs,bsd->bd", weights, tf.cast(memory, weights.dtype))
        return context, weights

    def step(self, query, memory, keys, coverage, memory_mask=None):
        """One decoder state [B, Dq] -> (context [B, Dm], weights [B, S], next coverage)."""
        if not self.built:
            self.build(query.shape, memory.shape)
        if memory_mask is None:
            memory_mask = tf.ones(tf.shape(memory)[:2], tf.bool)
        coverage = tf.cast(coverage, keys.dtype)
        context, weights = self._attend(
            self.query_projection(query), memory, keys, coverage, memory_mask
        )
        return context, weights, coverage + weights

    def call(self, queries, memory, memory_mask=None):
        """[B, T, Dq] decoder states -> (contexts, weights, coverages), teacher forcing."""
        if memory_mask is None:
            memory_mask = tf.ones(tf.shape(memory)[:2], tf.bool)
        keys = self.keys(memory)
        projected = tf.transpose(self.query_projection(queries), [1, 0, 2])  # [T, B, U]
        initial = (
            tf.zeros([tf.shape(memory)[0], tf.shape(memory)[2]], keys.dtype),  # context
            tf.zeros(tf.shape(memory)[:2], keys.dtype),  # weights
            tf.zeros(tf.shape(memory)[:2], keys.dtype),  # coverage seen by this step
            tf.zeros(tf.shape(memory)[:2], keys.dtype),  # coverage after this step
        )

        def one_step(previous, projected_query):
            coverage = previous[3]
            context, weights = self._attend(projected_query, memory, keys, coverage, memory_mask)
            return context, weights, coverage, coverage + weights

        contexts, weights, coverages, _ = tf.scan(one_step, projected, initializer=initial)
        to_batch_major = [1, 0, 2]
        return (
            tf.transpose(contexts, to_batch_major),
            tf.transpose(weights, to_batch_major),
            tf.transpose(coverages, to_batch_major),
        )

    def compute_output_spec(self, queries, memory, memory_mask=None):
        batch, steps, length = queries.shape[0], queries.shape[1], memory.shape[1]
        return (
            keras.KerasTensor((batch, steps, memory.shape[2]), self.compute_dtype),
            keras.KerasTensor((batch, steps, length), self.compute_dtype),
            keras.KerasTensor((batch, steps, length), self.compute_dtype),
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(units=self.units)
        return config


def coverage_loss(attention, target_mask, coverage=None):
    """sum_t sum_i min(a_t,i, c_t,i), averaged over real target tokens (a scalar).

    attention: [B, T, S]; target_mask: [B, T] (1/True for real target tokens).
    coverage: [B, T, S], the coverage each step saw (CoverageAttention's third output);
    by default the exclusive cumulative sum of `attention` over T, i.e. c_0 = 0 and
    c_t = a_0 + ... + a_{t-1} (never including a_t itself). The weight lambda (1.0 in the
    paper) is applied by the caller. 0 when the mask is all zeros.
    """
    attention = tf.convert_to_tensor(attention)
    if coverage is None:
        coverage = tf.cumsum(attention, axis=1, exclusive=True)
    coverage = tf.cast(coverage, attention.dtype)
    mask = tf.cast(target_mask, attention.dtype)
    per_step = tf.reduce_sum(tf.minimum(attention, coverage), axis=-1)  # [B, T]
    return tf.math.divide_no_nan(tf.reduce_sum(per_step * mask), tf.reduce_sum(mask))
