"""SpecAugment (Park et al. 2019) for training batches of log-mel features.

Training-time only: the tf.data pipeline applies it, the exported front end never
does, so serving sees the features exactly as the model was evaluated on.
"""

from __future__ import annotations

import tensorflow as tf

_MAX_TIME_MASK_FRACTION = 0.2  # SpecAugment's p: one time mask covers <= 1/5 of an utterance


def spec_augment(
    features: tf.Tensor,
    frame_mask: tf.Tensor,
    *,
    freq_masks: int = 2,
    freq_width: int = 10,
    time_masks: int = 2,
    time_width: int = 20,
    seed: int | None = None,
) -> tf.Tensor:
    """SpecAugment-style masking for training batches: zero (the normalised mean)
    random mel bands and time spans, drawn per utterance.

    Time spans lie inside each utterance's valid frames and cover at most a fifth
    of them. Stateful random ops, so a tf.data `map` draws new masks per batch;
    `seed` makes the sequence of masks reproducible.
    """
    features = tf.convert_to_tensor(features)
    shape = tf.shape(features)
    batch, time, bins = shape[0], shape[1], shape[2]
    valid = tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1)
    draws = iter(range(2 * (freq_masks + time_masks)))

    def uniform(upper: tf.Tensor) -> tf.Tensor:
        """Per-utterance integers in [0, upper] (inclusive), upper >= 0."""
        op_seed = None if seed is None else seed + next(draws)
        u = tf.random.uniform([batch], 0.0, 1.0, seed=op_seed)
        return tf.minimum(tf.cast(u * tf.cast(upper + 1, tf.float32), tf.int32), upper)

    def span(length, max_width, limit):
        """[batch, length] bool: a random span of width <= max_width inside [0, limit)."""
        width = uniform(tf.minimum(max_width, limit))
        start = uniform(limit - width)
        steps = tf.range(length)[None, :]
        return (steps >= start[:, None]) & (steps < (start + width)[:, None])

    keep = tf.ones_like(features, dtype=tf.bool)
    for _ in range(freq_masks):
        band = span(bins, freq_width, tf.fill([batch], bins))
        keep &= ~band[:, None, :]
    longest = tf.cast(tf.cast(valid, tf.float32) * _MAX_TIME_MASK_FRACTION, tf.int32)
    for _ in range(time_masks):
        spell = span(time, tf.minimum(time_width, longest), valid)
        keep &= ~spell[:, :, None]
    return tf.where(keep, features, tf.zeros_like(features))
