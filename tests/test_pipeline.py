"""make_dataset: batch structure, epoch coverage, length bucketing and seeded order."""

from __future__ import annotations

import bisect
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, train_sentencepiece
from s2s_zoo.tasks.translation.numbers import number_pair

# 0..60 plus a few long ones, and one duplicate pair: the epoch must be a multiset.
PAIRS = [number_pair(n) for n in [*range(61), 342, 777, 1971, 88_888, 342]]
BOUNDARIES = (5, 8, 12)
BATCH = 4


@pytest.fixture(scope="module")
def pre() -> TextPreprocessor:
    return TextPreprocessor(
        train_sentencepiece([s for s, _ in PAIRS], 50),
        train_sentencepiece([t for _, t in PAIRS], 50),
        max_source_length=32,
        max_target_length=32,
    )


def trim(row: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in row if i != PAD_ID)


def epoch(ds: tf.data.Dataset) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [(s.numpy(), ti.numpy(), to.numpy()) for (s, ti), to in ds]


def examples(batches) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(source ids, target_out ids) of every row, in order, padding removed."""
    return [(trim(s), trim(to)) for src, _, out in batches for s, to in zip(src, out, strict=True)]


def expected_examples(pre, pairs) -> Counter:
    sources = pre.source_ragged(tf.constant([s for s, _ in pairs])).to_list()
    _, target_out = pre.target_in_out_ragged(tf.constant([t for _, t in pairs]))
    return Counter(zip(map(tuple, sources), map(tuple, target_out.to_list()), strict=True))


def test_batch_structure(pre):
    ds = make_dataset(PAIRS, pre, BATCH, seed=0, bucket_boundaries=BOUNDARIES)
    (source_spec, target_in_spec), target_out_spec = ds.element_spec
    for spec in (source_spec, target_in_spec, target_out_spec):
        assert spec.dtype == tf.int32
        assert spec.shape.rank == 2
    for source, target_in, target_out in epoch(ds):
        assert source.dtype == target_in.dtype == target_out.dtype == np.int32
        assert 1 <= source.shape[0] <= BATCH
        assert source.shape[0] == target_in.shape[0] == target_out.shape[0]
        assert target_in.shape == target_out.shape
        for s, ti, to in zip(source, target_in, target_out, strict=True):
            src, tin, tout = trim(s), trim(ti), trim(to)
            assert src[-1] == EOS_ID
            assert tin[0] == BOS_ID and tout[-1] == EOS_ID
            assert tin[1:] == tout[:-1]
            # Padding only at the end of each row.
            assert np.all(s[len(src) :] == PAD_ID) and np.all(ti[len(tin) :] == PAD_ID)


def test_every_example_once_per_epoch(pre):
    ds = make_dataset(PAIRS, pre, BATCH, seed=1, bucket_boundaries=BOUNDARIES)
    expected = expected_examples(pre, PAIRS)
    assert sum(expected.values()) == len(PAIRS) and max(expected.values()) == 2
    first, second = epoch(ds), epoch(ds)
    for batches in (first, second):
        assert Counter(examples(batches)) == expected
    # Reshuffled between epochs.
    assert examples(first) != examples(second)


def test_sources_pair_with_their_own_targets(pre):
    """Shuffling and bucketing never separate a source from its target."""
    ds = make_dataset(PAIRS, pre, BATCH, seed=2, bucket_boundaries=BOUNDARIES)
    by_source = {}
    for source, target in expected_examples(pre, PAIRS):
        by_source.setdefault(source, set()).add(target)
    for source, target in examples(epoch(ds)):
        assert target in by_source[source]


def test_bucketing_keeps_padding_small(pre):
    ds = make_dataset(PAIRS, pre, BATCH, seed=0, bucket_boundaries=BOUNDARIES)
    buckets_seen = set()
    for source, target_in, _ in epoch(ds):
        source_lengths = [len(trim(s)) for s in source]
        target_lengths = [len(trim(t)) for t in target_in]
        lengths = [max(a, b) for a, b in zip(source_lengths, target_lengths, strict=True)]
        buckets = {bisect.bisect_right(BOUNDARIES, n) for n in lengths}
        assert len(buckets) == 1, lengths  # one bucket per batch
        bucket = buckets.pop()
        buckets_seen.add(bucket)
        # Padded to the longest row in the batch, which stays inside the bucket.
        assert source.shape[1] == max(source_lengths)
        assert target_in.shape[1] == max(target_lengths)
        upper = BOUNDARIES[bucket] if bucket < len(BOUNDARIES) else None
        lower = BOUNDARIES[bucket - 1] if bucket > 0 else 0
        assert all(lower <= n for n in lengths)
        if upper is not None:
            assert max(source.shape[1], target_in.shape[1]) < upper
    assert len(buckets_seen) >= 3  # the data really spreads over several buckets


def test_same_seed_same_order_different_seed_different_order(pre):
    def orders(seed):
        ds = make_dataset(PAIRS, pre, BATCH, seed=seed, bucket_boundaries=BOUNDARIES)
        return examples(epoch(ds)), examples(epoch(ds))

    a, b, c = orders(7), orders(7), orders(8)
    assert a == b  # both epochs reproduce
    assert a[0] != c[0]
    assert Counter(a[0]) == Counter(c[0])


def test_no_shuffle_is_deterministic_and_keeps_input_order(pre):
    ds = make_dataset(PAIRS, pre, BATCH, shuffle=False, bucket_boundaries=BOUNDARIES)
    assert examples(epoch(ds)) == examples(epoch(ds))

    # With one bucket (every example is shorter than the only boundary), the
    # batches are the input in order, cut every BATCH examples.
    one_bucket = make_dataset(PAIRS, pre, BATCH, shuffle=False, bucket_boundaries=(1000,))
    batches = epoch(one_bucket)
    expected = [
        (tuple(s), tuple(t))
        for s, t in zip(
            pre.source_ragged(tf.constant([s for s, _ in PAIRS])).to_list(),
            pre.target_in_out_ragged(tf.constant([t for _, t in PAIRS]))[1].to_list(),
            strict=True,
        )
    ]
    assert examples(batches) == expected
    assert [b[0].shape[0] for b in batches] == [BATCH] * (len(PAIRS) // BATCH) + [
        len(PAIRS) % BATCH
    ]

    dropped = make_dataset(
        PAIRS, pre, BATCH, shuffle=False, bucket_boundaries=(1000,), drop_remainder=True
    )
    sizes = [b[0].shape[0] for b in epoch(dropped)]
    assert sizes == [BATCH] * (len(PAIRS) // BATCH)


def test_no_pairs_is_an_error(pre):
    with pytest.raises(ValueError):
        make_dataset([], pre, BATCH)
