"""Pointer-generator output layers (See, Liu and Manning 2017, "Get To The Point").

The decoder's output distribution mixes generating from the vocabulary with copying a
source token by attention:

    P(w) = p_gen * P_vocab(w) + (1 - p_gen) * sum_{i: source_i = w} a_i

Extended vocabulary: the paper gives each source OOV word a temporary id so it can be
copied. Here source and target share one SentencePiece vocabulary, so every source token
already has an id in it and no extended vocabulary is needed: copying is a scatter of the
attention onto the source ids. Caveat: the in-graph tokenizer (tf-text's
FastSentencepieceTokenizer) does not implement SentencePiece byte fallback, so a source
character unseen in tokenizer training becomes UNK (id 1); copying it copies UNK.

These layers run inside the exported decoding graph, so they use core TF ops only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Log-probability given to ids that can come from neither term; finite so that no
# inf - inf = NaN can appear in a later log_softmax or loss, small enough that exp() is 0.
_IMPOSSIBLE = -1e9


class CopyDistribution(keras.layers.Layer):
    """Log-probabilities of the pointer-generator mixture of generating and copying.

    Inputs (one decoding step drops the T axis everywhere):
      logits:     [B, T, V] vocabulary logits.
      attention:  [B, T, S] attention over the source positions.
      p_gen:      [B, T, 1] its logit (`p_gen_is_logit=True`, the stable default) or the
                  probability in (0, 1).
      source_ids: [B, S] int source token ids in the shared vocabulary (< V).

    Returns [B, T, V] float32 log P(w), computed in log space as
    logsumexp(log p_gen + log_softmax(logits), log(1 - p_gen) + log(copy)), where copy is
    the attention scattered onto the source ids (repeated ids add up). Positions holding
    `pad_id` get no copy mass: the attention is renormalised over the other positions,
    and a row without any such position generates only (p_gen taken as 1). Ids absent from
    the source have copy probability exactly 0; their copy term is replaced by a large
    negative constant through a `where` on a safe argument, so no log(0) enters the graph
    and gradients stay finite.

    The output is a normalised log-distribution, and log_softmax of log-probabilities is
    the identity, so it can be handed to the shared search (which applies log_softmax to
    "logits") and to sparse cross-entropy `from_logits=True` unchanged.

    Example:
        >>> layer = CopyDistribution()
        >>> logits = tf.zeros([1, 4])                    # uniform over 4 ids
        >>> attention = tf.constant([[0.75, 0.25, 0.0]])
        >>> source_ids = tf.constant([[3, 3, 0]])        # position 2 is padding
        >>> p = tf.exp(layer(logits, attention, tf.zeros([1, 1]), source_ids))
        >>> [round(float(x), 3) for x in p[0]]           # p_gen = sigmoid(0) = 0.5
        [0.125, 0.125, 0.125, 0.625]
    """

    def __init__(self, p_gen_is_logit: bool = True, pad_id: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.p_gen_is_logit = p_gen_is_logit
        self.pad_id = pad_id

    def call(self, logits, attention, p_gen, source_ids):
        one_step = len(logits.shape) == 2
        if one_step:
            logits, attention, p_gen = logits[:, None], attention[:, None], p_gen[:, None]
        logits = tf.cast(logits, tf.float32)
        attention = tf.cast(attention, tf.float32)
        p_gen = tf.cast(p_gen, tf.float32)
        if len(p_gen.shape) == 2:  # [B, T] -> [B, T, 1]
            p_gen = p_gen[..., None]
        source_ids = tf.cast(source_ids, tf.int64)
        vocab = tf.shape(logits, out_type=tf.int64)[-1]
        checks = [
            tf.debugging.assert_non_negative(source_ids, message="negative source id"),
            tf.debugging.assert_less(
                source_ids, vocab, message="source id outside the vocabulary of the logits"
            ),
        ]
        with tf.control_dependencies(checks):
            source_ids = tf.identity(source_ids)

        # attention on real (non-padding) positions, renormalised
        real = tf.cast(tf.not_equal(source_ids, self.pad_id), tf.float32)[:, None, :]
        attention = attention * real
        total = tf.reduce_sum(attention, axis=-1, keepdims=True)
        can_copy = total > 0.0  # [B, T, 1]
        attention = attention / tf.where(can_copy, total, 1.0)
        copy = _scatter_onto_ids(attention, source_ids, vocab)  # [B, T, V]

        if self.p_gen_is_logit:
            log_gen, log_copy_gate = tf.math.log_sigmoid(p_gen), tf.math.log_sigmoid(-p_gen)
        else:
            # keep p_gen inside (0, 1) so neither log is -inf
            eps = 1e-7
            p_gen = tf.clip_by_value(p_gen, eps, 1.0 - eps)
            log_gen, log_copy_gate = tf.math.log(p_gen), tf.math.log1p(-p_gen)
        log_gen = tf.where(can_copy, log_gen, 0.0)
        generate = log_gen + tf.nn.log_softmax(logits, axis=-1)
        present = copy > 0.0
        # double where: log() only ever sees positive values, so its gradient is finite
        log_copy = tf.where(present, tf.math.log(tf.where(present, copy, 1.0)), _IMPOSSIBLE)
        copied = tf.where(present & can_copy, log_copy_gate + log_copy, _IMPOSSIBLE)
        log_probs = tf.reduce_logsumexp(tf.stack([generate, copied], axis=0), axis=0)
        return log_probs[:, 0] if one_step else log_probs

    def compute_output_spec(self, logits, attention, p_gen, source_ids):
        return keras.KerasTensor(logits.shape, "float32")

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(p_gen_is_logit=self.p_gen_is_logit, pad_id=self.pad_id)
        return config


def _scatter_onto_ids(attention: tf.Tensor, source_ids: tf.Tensor, vocab: tf.Tensor):
    """[B, T, S] weights summed into [B, T, V] at each row's source ids (a batched scatter).

    One unsorted_segment_sum over flat (row, id) segments: memory O(B*T*S), not the
    O(B*T*S*V) of a one-hot matmul. Its gradient is a gather.
    """
    shape = tf.shape(attention, out_type=tf.int64)
    batch, steps, length = shape[0], shape[1], shape[2]
    ids = tf.broadcast_to(source_ids[:, None, :], [batch, steps, length])
    rows = tf.reshape(tf.range(batch * steps, dtype=tf.int64), [batch, steps, 1])
    segments = rows * vocab + ids
    flat = tf.math.unsorted_segment_sum(
        tf.reshape(attention, [-1]), tf.reshape(segments, [-1]), batch * steps * vocab
    )
    return tf.reshape(flat, [batch, steps, vocab])


class GenerationProbability(keras.layers.Layer):
    """p_gen = sigmoid(w_c . c_t + w_s . s_t + w_x . x_t + b), the pointer-generator switch.

    c_t is the attention context, s_t the decoder state, x_t the decoder input
    (embedding). One Dense(1) over their concatenation is exactly the paper's three
    dot products plus one bias. Returns the logit by default (`returns="logit"`), which
    `CopyDistribution(p_gen_is_logit=True)` turns into log p_gen and log(1 - p_gen)
    without rounding; `returns="probability"` applies the sigmoid. Works on [B, D] and
    [B, T, D] inputs alike.

    Example:
        >>> gate = GenerationProbability()
        >>> logit = gate(tf.ones([2, 8]), tf.ones([2, 16]), tf.ones([2, 4]))  # [2, 1]
    """

    def __init__(self, returns: str = "logit", **kwargs) -> None:
        super().__init__(**kwargs)
        if returns not in ("logit", "probability"):
            raise ValueError(f"returns must be 'logit' or 'probability', got {returns!r}")
        self.returns = returns
        self.dense = keras.layers.Dense(1, name="switch")

    def build(self, context_shape, state_shape, inputs_shape) -> None:
        width = context_shape[-1] + state_shape[-1] + inputs_shape[-1]
        self.dense.build((*context_shape[:-1], width))

    def call(self, context, state, inputs):
        logit = self.dense(keras.ops.concatenate([context, state, inputs], axis=-1))
        return logit if self.returns == "logit" else keras.ops.sigmoid(logit)

    def compute_output_spec(self, context, state, inputs):
        return keras.KerasTensor((*context.shape[:-1], 1), self.compute_dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(returns=self.returns)
        return config
