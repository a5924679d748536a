"""tf.data input pipeline for text pairs: shuffle, tokenize, bucket by length, pad, prefetch.

Tokenization is the shared `TextPreprocessor`, applied in batches of raw strings
(one op call per 1,024 examples instead of per example) and then unbatched into
variable-length examples for bucketing.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import PAD_ID

DEFAULT_BOUNDARIES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192)


def _dense(x):
    return x.to_tensor() if isinstance(x, tf.RaggedTensor) else x


def make_dataset(
    pairs: Sequence[tuple[str, str]],
    preprocessor: TextPreprocessor,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    bucket_boundaries: Sequence[int] = DEFAULT_BOUNDARIES,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Yield `((source_ids, target_in), target_out)` batches for teacher-forced training.

    Deterministic for a given seed: the shuffle is seeded and element order is kept
    through the parallel map.
    """
    if not pairs:
        raise ValueError("no training pairs")
    sources = tf.constant([s for s, _ in pairs], tf.string)
    targets = tf.constant([t for _, t in pairs], tf.string)
    ds = tf.data.Dataset.from_tensor_slices((sources, targets))
    if shuffle:
        ds = ds.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)

    def tokenize(src, tgt):
        target_in, target_out = preprocessor.target_in_out_ragged(tgt)
        return preprocessor.source_ragged(src), target_in, target_out

    ds = ds.batch(1024).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    # Unbatched ragged rows are rank-0 ragged specs; padded batching needs plain tensors.
    ds = ds.map(lambda *row: tuple(_dense(x) for x in row))
    boundaries = [b for b in bucket_boundaries if b > 1]
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda s, ti, to: tf.maximum(tf.shape(s)[0], tf.shape(ti)[0]),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(PAD_ID, PAD_ID, PAD_ID),
        drop_remainder=drop_remainder,
    )
    ds = ds.map(lambda s, ti, to: ((s, ti), to))
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
