"""How much of what ends at each memory piece a speaker has already said (n-gram lengths).

A restaurant name is a dozen SentencePiece pieces. Which options the bot has proposed is
in the memory (its earlier turns), but a pointer that compares pieces one at a time sees
"resto_seoul_cheap_korean_6stars" in a KB fact and in a bot turn only as two unrelated
runs of pieces; Mem2Seq, whose memory cells are whole words, gets that match for free.
This feature gives it back at the piece level: for each piece, the longest n (up to a
cap) such that the n pieces ending at it, within its slot, occur consecutively in some
slot of the given speaker. Proposed restaurants' names then differ from the others' at
their rating piece, whatever the pieces are, seen in training or not.

Written with TF ops (rolling hashes, a sort and `LowerBound` per n) because it runs
inside the served graph; no library computes it.
"""

from __future__ import annotations

import tensorflow as tf

# (hash * _BASE + id) stays below 2**63 for hashes below _PRIME and ids below 2**31
_PRIME = 2_147_483_629
_BASE = 1_000_003


def _shift_right(t: tf.Tensor) -> tf.Tensor:
    """t[:, j - 1] at j (0 or False at 0)."""
    return tf.concat([tf.zeros_like(t[:, :1]), t[:, :-1]], axis=1)


def said_ngram_lengths(
    word_ids: tf.Tensor, follows: tf.Tensor, spoken: tf.Tensor, max_ngram: int
) -> tf.Tensor:
    """Words [B, P] (pieces of every slot, flattened; 0: padding), `follows` [B, P] (True
    where a piece continues the previous one's slot) and `spoken` [B, P] (True on the
    pieces of the speaker's slots) -> [B, P] int32: the largest n <= `max_ngram` such that
    the n pieces ending at each piece, within its slot, occur consecutively in a spoken
    slot (0 if not even the piece does; padding: 0).

    Two different n-grams could share a hash in principle; with a 31-bit prime modulus and
    a few thousand pieces that is negligible. The pieces of the speaker's own slots match
    themselves: for them the feature is min(position in the slot + 1, `max_ngram`).

    >>> ids = tf.constant([[3, 4, 5, 9, 3, 4, 5, 7, 0]])  # a bot turn "3 4 5", a fact
    >>> follows = tf.constant([[0, 1, 1, 0, 1, 1, 1, 1, 0]]) > 0
    >>> spoken = tf.constant([[1, 1, 1, 0, 0, 0, 0, 0, 0]]) > 0
    >>> said_ngram_lengths(ids, follows, spoken, max_ngram=4).numpy()
    array([[1, 2, 3, 0, 1, 2, 3, 0, 0]], dtype=int32)
    """
    if max_ngram < 1:
        raise ValueError(f"max_ngram must be positive, got {max_ngram}")
    ids = tf.cast(word_ids, tf.int64)
    real = ids != 0
    spoken = tf.logical_and(spoken, real)
    sentinel = tf.fill([tf.shape(ids)[0], 1], tf.constant(-1, tf.int64))  # never a query
    said = tf.zeros(tf.shape(ids), tf.int32)
    hashes, valid = ids, real
    for n in range(1, max_ngram + 1):
        if n > 1:  # the n-gram ending at j: the (n - 1)-gram ending at j - 1, then piece j
            hashes = tf.math.floormod(_shift_right(hashes) * _BASE + ids, _PRIME)
            valid = tf.logical_and(tf.logical_and(_shift_right(valid), follows), real)
        keys = tf.where(tf.logical_and(valid, spoken), hashes, -1)
        keys = tf.sort(tf.concat([keys, sentinel], axis=1), axis=1)
        queries = tf.where(valid, hashes, -2)
        # LowerBound itself: tf.searchsorted reshapes its values to [-1, P], which turns a
        # [0, 0] batch (an empty request) into [1, 0] and fails
        index = tf.raw_ops.LowerBound(sorted_inputs=keys, values=queries, out_type=tf.int32)
        index = tf.minimum(index, tf.shape(keys)[1] - 1)
        found = tf.equal(tf.gather(keys, index, batch_dims=1), queries)
        # an n-gram counts only if it extends a shorter one that was found, so a hash
        # collision cannot make a match where not even the (n - 1)-gram matched
        said = tf.where(tf.logical_and(found, tf.equal(said, n - 1)), n, said)
    return said
