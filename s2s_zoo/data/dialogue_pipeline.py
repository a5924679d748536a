"""tf.data pipeline for dialogue: (turns, facts, response) -> padded model batches.

Each example keeps its turns and facts as variable-length string vectors; batches are
formed by bucketing on turns + facts (a long conversation next to a short one would pad
the short one to hundreds of empty slots), padded with "" exactly as serving requests
are, and turned into model inputs by the preprocessor's own `encode_source` (the same
function the export runs) and its target tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from s2s_zoo.data.preprocessor import TargetText

DEFAULT_BOUNDARIES = (4, 8, 16, 24, 32, 48, 64, 96)


def _dense(x):
    return x.to_tensor() if isinstance(x, tf.RaggedTensor) else x


def _ragged_strings(rows: Sequence[Sequence[str]]) -> tf.RaggedTensor:
    values = [item for row in rows for item in row]
    lengths = [len(row) for row in rows]
    return tf.RaggedTensor.from_row_lengths(
        tf.constant(values, tf.string, shape=[len(values)]), tf.constant(lengths, tf.int64)
    )


def make_dialogue_dataset(
    examples: Sequence[tuple[Sequence[str], Sequence[str], str]],
    preprocessor: TargetText,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    bucket_boundaries: Sequence[int] = DEFAULT_BOUNDARIES,
) -> tf.data.Dataset:
    """Yield `((*source tensors, target_in), target_out)` from (context, kb, response) triples.

    Deterministic for a given seed (seeded shuffle, order kept through the maps).
    """
    if not examples:
        raise ValueError("no dialogue examples")
    contexts = _ragged_strings([e[0] for e in examples])
    facts = _ragged_strings([e[1] for e in examples])
    responses = tf.constant([e[2] for e in examples], tf.string)
    ds = tf.data.Dataset.from_tensor_slices((contexts, facts, responses))
    if shuffle:
        ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    # Slices of a ragged tensor are rank-0-ragged specs; padded batching needs plain ones.
    ds = ds.map(lambda c, k, r: (_dense(c), _dense(k), r))
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda c, k, r: tf.shape(c)[0] + tf.shape(k)[0],
        bucket_boundaries=list(bucket_boundaries),
        bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
        padding_values=("", "", ""),
    )

    def to_model(context, kb, response):
        source, _, _ = preprocessor.encode_source(context, kb)
        target_in, target_out = preprocessor.target_in_out(response)
        source = tuple(source) if isinstance(source, tuple | list) else (source,)
        return (*source, target_in), target_out

    ds = ds.map(to_model, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
