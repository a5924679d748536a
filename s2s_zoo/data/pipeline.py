"""tf.data input pipeline for text pairs: shuffle, tokenize, bucket by length, pad, prefetch.

Tokenization is the shared `TextPreprocessor`, applied in batches of raw strings
(one op call per 1,024 examples instead of per example) and then unbatched into
variable-length examples for bucketing. Batches hold a fixed number of examples,
or (`batch_tokens`) as many as fit a budget of padded tokens, so batches of short
sentences carry more of them and each step costs about the same.
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
    batch_tokens: int | None = None,
) -> tf.data.Dataset:
    """Yield `((source_ids, target_in), target_out)` batches for teacher-forced training.

    Deterministic for a given seed: the shuffle is seeded and element order is kept
    through the parallel map.

    batch_tokens: size batches by padded tokens instead: a bucket whose examples
    are at most L tokens long (source or target) batches `batch_tokens // L`
    examples, at most `batch_size`, so rows x padded length <= batch_tokens.
    """
    if not pairs:
        raise ValueError("no training pairs")
    boundaries = [b for b in bucket_boundaries if b > 1]
    if batch_tokens is None:
        batch_sizes = [batch_size] * (len(boundaries) + 1)
    else:
        boundaries, batch_sizes = token_batch_sizes(
            boundaries, batch_tokens, batch_size, _longest_example(preprocessor)
        )
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
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda s, ti, to: tf.maximum(tf.shape(s)[0], tf.shape(ti)[0]),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=batch_sizes,
        padding_values=(PAD_ID, PAD_ID, PAD_ID),
        drop_remainder=drop_remainder,
    )
    ds = ds.map(lambda s, ti, to: ((s, ti), to))
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _longest_example(preprocessor: TextPreprocessor) -> int:
    """Most tokens a source (EOS included) or target_in (BOS included) can have."""
    return max(preprocessor.max_source_length, preprocessor.max_target_length)


def token_batch_sizes(
    boundaries: Sequence[int], batch_tokens: int, max_rows: int, longest: int
) -> tuple[list[int], list[int]]:
    """Bucket boundaries and per-bucket batch sizes for a padded-token budget.

    Bucket i holds lengths in [boundaries[i-1], boundaries[i]), so at most
    `boundaries[i] - 1` tokens; the last bucket at most `longest`. Boundaries past
    `longest` would only add empty buckets and are dropped.
    """
    if max_rows < 1:
        raise ValueError("batch_size must be at least 1")
    if batch_tokens < longest:
        raise ValueError(
            f"batch_tokens={batch_tokens} cannot hold one example of the longest "
            f"length ({longest} tokens, the preprocessor's max length)"
        )
    kept = [b for b in boundaries if b <= longest]
    lengths = [b - 1 for b in kept] + [longest]
    return kept, [min(max_rows, batch_tokens // length) for length in lengths]
