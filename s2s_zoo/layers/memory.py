"""End-to-end memory network blocks (Sukhbaatar et al. 2015) for dialogue models.

A dialogue model reads the conversation so far and the knowledge-base facts as a set of
sentences; an end-to-end memory network embeds each sentence as one memory slot and
lets the current user turn attend over the slots for a few hops. Bordes et al. (2017)
showed this solves most of the bAbI-dialog tasks. Keras ships no such layer, and the
encoder runs inside the exported serving graph, so everything here is core TF ops.

- :func:`position_encoding`: the paper's word-position weights for a bag of words.
- :class:`MemoryEncoder`: K hops of attention over memory slots with adjacent weight
  tying, temporal (slot index) and speaker features.
- :func:`dialogue_memory`: turns the serving inputs (context turns and KB facts as token
  ids) into memory slots, speakers and the query, most recent turn first.

Token id 0 is padding: a slot whose ids are all 0 is a padding slot; its attention and
memory vector are exactly zero, so padding a batch to more slots (or tokens) changes no
output beyond float rounding (TF's vectorised exp and sum kernels round the last bit
differently for different tensor lengths, so bit-for-bit equality cannot be promised).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

SPEAKER_PAD, SPEAKER_USER, SPEAKER_BOT, SPEAKER_KB = 0, 1, 2, 3
HOP_UPDATES = ("add", "linear")


def _position_formula(j_over_len: tf.Tensor, embedding_dim: int, dtype) -> tf.Tensor:
    """(1 - j/J) - (k/d)(1 - 2j/J) for j/J [..., L] and k = 1..d -> [..., L, d]."""
    # in float32, then cast: tf.range has no float16 kernel (mixed_float16 policies)
    k = tf.range(1, embedding_dim + 1, dtype=tf.float32) / float(embedding_dim)
    ratio = tf.cast(j_over_len, tf.float32)[..., None]
    return tf.cast((1.0 - ratio) - k * (1.0 - 2.0 * ratio), dtype)


def position_encoding(sentence_len: int | tf.Tensor, embedding_dim: int) -> tf.Tensor:
    """Position weights l_kj = (1 - j/J) - (k/d)(1 - 2j/J) of a J-word sentence, [J, d].

    j (word, 1..J) and k (embedding dimension, 1..d) are 1-based (Sukhbaatar et al. 2015,
    section 4.1). A sentence embeds as sum_j l_j * A x_j, so word order matters.

    >>> import numpy as np
    >>> np.round(position_encoding(3, 4).numpy() * 12, 4)
    array([[ 7.,  6.,  5.,  4.],
           [ 5.,  6.,  7.,  8.],
           [ 3.,  6.,  9., 12.]], dtype=float32)
    """
    length = tf.cast(sentence_len, tf.float32)
    j = tf.range(1, tf.cast(sentence_len, tf.int32) + 1, dtype=tf.float32)
    return _position_formula(j / length, embedding_dim, tf.float32)


def _bag_weights(present: tf.Tensor, embedding_dim: int, use_position: bool) -> tf.Tensor:
    """Per-token weights [..., L, d] for sentences whose real tokens are `present` [..., L].

    Each sentence uses its own length J (its count of non-padding tokens) and each token
    its rank among them, so trailing padding changes nothing; padding tokens weigh 0.
    """
    if not use_position:
        return present[..., None]
    j = tf.cumsum(present, axis=-1)
    length = tf.maximum(tf.reduce_sum(present, axis=-1, keepdims=True), 1.0)
    return _position_formula(j / length, embedding_dim, present.dtype) * present[..., None]


def _masked_softmax(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Softmax over the last axis where `mask`; exactly 0 elsewhere (all 0 if no slot)."""
    floor = tf.reduce_min(logits, axis=-1, keepdims=True)
    top = tf.reduce_max(tf.where(mask, logits, floor), axis=-1, keepdims=True)
    exp = tf.where(mask, tf.exp(tf.where(mask, logits - top, 0.0)), 0.0)
    total = tf.reduce_sum(exp, axis=-1, keepdims=True)
    return exp / tf.where(total > 0, total, 1.0)


@keras.saving.register_keras_serializable(package="s2s_zoo")
class MemoryEncoder(keras.layers.Layer):
    """K-hop end-to-end memory network over sentence slots (Sukhbaatar et al. 2015).

    Inputs: ``memory`` int ids [B, M, L] (one sentence per slot, all-zero = padding
    slot), ``query`` int ids [B, L] and optionally ``speakers`` int [B, M] (1 user,
    2 bot, 3 kb, 0 padding). Slot i embeds as a position-weighted bag of words plus a
    learned time embedding of its index i (clipped to ``max_slots - 1``) plus a speaker
    embedding. K+1 tables are shared by adjacent weight tying: hop k attends with
    table k-1 (A_k) and reads with table k (C_k = A_{k+1}); the query uses table 0
    (B = A_1). Between hops u <- u + o (``hop_update="add"``) or u <- H(u + o)
    (``"linear"``, a learned matrix shared by the hops, as in Bordes et al. 2017).

    Returns ``(state, slots, mask, attention)``: the final controller state u_K [B, d],
    the slots read by the last hop (C_K embeddings, zero on padding) [B, M, d] for a
    decoder to attend over, the slot mask [B, M] and the last hop's attention [B, M].

    >>> encoder = MemoryEncoder(vocab_size=10, embedding_dim=8, hops=2)
    >>> memory = tf.constant([[[3, 4, 0], [5, 0, 0], [0, 0, 0]]])  # 2 real slots + 1 pad
    >>> state, slots, mask, attention = encoder(memory, tf.constant([[3, 0, 0]]))
    >>> tuple(state.shape), tuple(slots.shape), mask.numpy().tolist()
    ((1, 8), (1, 3, 8), [[True, True, False]])
    >>> float(attention[0, 2]), round(float(tf.reduce_sum(attention)), 5)
    (0.0, 1.0)
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hops: int = 3,
        max_slots: int = 64,
        num_speakers: int = 4,
        hop_update: str = "add",
        use_position_encoding: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if hops < 1 or vocab_size < 1 or embedding_dim < 1 or max_slots < 1:
            raise ValueError("vocab_size, embedding_dim, hops and max_slots must be positive")
        if hop_update not in HOP_UPDATES:
            raise ValueError(f"hop_update must be one of {HOP_UPDATES}, got {hop_update!r}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hops = hops
        self.max_slots = max_slots
        self.num_speakers = num_speakers
        self.hop_update = hop_update
        self.use_position_encoding = use_position_encoding

        def table(rows: int, name: str) -> keras.layers.Embedding:
            init = keras.initializers.RandomNormal(stddev=0.1)
            return keras.layers.Embedding(rows, embedding_dim, init, name=name)

        count = hops + 1
        self.word_tables = [table(vocab_size, f"words_{k}") for k in range(count)]
        self.time_tables = [table(max_slots, f"time_{k}") for k in range(count)]
        self.speaker_tables = (
            [table(num_speakers, f"speaker_{k}") for k in range(count)] if num_speakers else []
        )
        self.hop_projection = (
            keras.layers.Dense(embedding_dim, use_bias=False, name="hop_projection")
            if hop_update == "linear"
            else None
        )

    def build(self, *args: Any, **kwargs: Any) -> None:
        for layer in self.word_tables + self.time_tables + self.speaker_tables:
            layer.build((None,))
        if self.hop_projection is not None:
            self.hop_projection.build((None, self.embedding_dim))
        self.built = True

    def _bag(self, k: int, ids: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        """Position-weighted bag of words of table k: [..., L] ids -> [..., d]."""
        return tf.reduce_sum(self.word_tables[k](ids) * weights, axis=-2)

    def call(self, memory, query, speakers=None):
        memory = tf.convert_to_tensor(memory)
        query = tf.convert_to_tensor(query)
        dtype = self.compute_dtype
        present = tf.cast(tf.not_equal(memory, 0), dtype)  # [B, M, L]
        mask = tf.reduce_any(tf.not_equal(memory, 0), axis=-1)  # [B, M]
        slot_weight = tf.cast(mask, dtype)[..., None]
        weights = _bag_weights(present, self.embedding_dim, self.use_position_encoding)
        times = tf.minimum(tf.range(tf.shape(memory)[1]), self.max_slots - 1)

        def slots(k: int) -> tf.Tensor:
            embedded = self._bag(k, memory, weights) + self.time_tables[k](times)[None]
            if speakers is not None and self.speaker_tables:
                embedded += self.speaker_tables[k](speakers)
            return embedded * slot_weight  # padding slots are exactly zero

        tables = [slots(k) for k in range(self.hops + 1)]
        query_present = tf.cast(tf.not_equal(query, 0), dtype)
        state = self._bag(
            0, query, _bag_weights(query_present, self.embedding_dim, self.use_position_encoding)
        )
        attention = tf.zeros_like(mask, dtype)
        for k in range(self.hops):
            logits = tf.einsum("bmd,bd->bm", tables[k], state)
            attention = _masked_softmax(logits, mask)
            read = tf.einsum("bm,bmd->bd", attention, tables[k + 1])
            state = state + read
            if self.hop_projection is not None:
                state = self.hop_projection(state)
        return state, tables[-1], mask, attention

    def compute_output_spec(self, memory, query, speakers=None):
        batch, slots = memory.shape[0], memory.shape[1]
        dtype = self.compute_dtype
        return (
            keras.KerasTensor((batch, self.embedding_dim), dtype),
            keras.KerasTensor((batch, slots, self.embedding_dim), dtype),
            keras.KerasTensor((batch, slots), "bool"),
            keras.KerasTensor((batch, slots), dtype),
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "hops": self.hops,
            "max_slots": self.max_slots,
            "num_speakers": self.num_speakers,
            "hop_update": self.hop_update,
            "use_position_encoding": self.use_position_encoding,
        }


def dialogue_memory(
    context_ids: tf.Tensor, kb_ids: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Serving inputs -> (memory [B, T-1+F, L], speakers [B, T-1+F], query [B, L]).

    ``context_ids`` [B, T, Lc] holds the turns so far (user first, alternating, ending
    with the current user turn; all-zero rows pad at the end) and ``kb_ids`` [B, F, Lk]
    the KB facts (all-zero rows are padding, wherever they are); L = max(Lc, Lk). The
    query is the last real turn; memory holds the earlier turns most recent first, then the facts in
    order, then padding, so a slot's index (its time feature) counts back from now and
    does not depend on how far the batch is padded.

    >>> context = tf.constant([[[1, 0], [2, 2], [3, 0], [0, 0]]])  # user, bot, user, pad
    >>> kb = tf.constant([[[0, 0], [7, 8]]])  # pad, fact
    >>> memory, speakers, query = dialogue_memory(context, kb)
    >>> memory.numpy().tolist()
    [[[2, 2], [1, 0], [7, 8], [0, 0], [0, 0]]]
    >>> speakers.numpy().tolist(), query.numpy().tolist()
    ([[2, 1, 3, 0, 0]], [[3, 0]])
    """
    context_ids = tf.convert_to_tensor(context_ids)
    kb_ids = tf.cast(tf.convert_to_tensor(kb_ids), context_ids.dtype)
    # Context and facts may be tokenized to different lengths: pad both to the longer.
    length = tf.maximum(tf.shape(context_ids)[2], tf.shape(kb_ids)[2])
    context_ids = tf.pad(context_ids, [[0, 0], [0, 0], [0, length - tf.shape(context_ids)[2]]])
    kb_ids = tf.pad(kb_ids, [[0, 0], [0, 0], [0, length - tf.shape(kb_ids)[2]]])
    turns = tf.shape(context_ids)[1]
    facts = tf.shape(kb_ids)[1]
    real_turns = tf.reduce_any(tf.not_equal(context_ids, 0), axis=-1)  # [B, T]
    count = tf.reduce_sum(tf.cast(real_turns, tf.int32), axis=1)  # [B]
    query = tf.gather(context_ids, tf.maximum(count - 1, 0), batch_dims=1)
    # Earlier turns, most recent first: slot s holds turn count-2-s (if s < count-1).
    source = count[:, None] - 2 - tf.range(turns - 1)[None, :]  # [B, T-1]
    past = tf.gather(context_ids, tf.maximum(source, 0), batch_dims=1)
    # Speakers alternate from a user turn at index 0.
    turn_speaker = tf.where(source % 2 == 0, SPEAKER_USER, SPEAKER_BOT)
    # Real facts first, in order (a stable sort on "is padding").
    real_facts = tf.reduce_any(tf.not_equal(kb_ids, 0), axis=-1)  # [B, F]
    order = tf.argsort(tf.cast(~real_facts, tf.int32), axis=1, stable=True)
    kb_sorted = tf.gather(kb_ids, order, batch_dims=1)
    fact_count = tf.reduce_sum(tf.cast(real_facts, tf.int32), axis=1)
    # Slot s of the result: past turn s if s < count-1, else fact s-(count-1), else pad.
    both = tf.concat([past, kb_sorted], axis=1)  # [B, T-1+F, L]
    both_speakers = tf.concat([turn_speaker, tf.fill(tf.shape(kb_sorted)[:2], SPEAKER_KB)], 1)
    width = turns - 1 + facts
    slot = tf.range(width)[None, :]
    past_count = tf.maximum(count - 1, 0)[:, None]
    from_past = slot < past_count
    keep = tf.logical_or(from_past, slot < past_count + fact_count[:, None])
    index = tf.where(from_past, slot, slot - past_count + (turns - 1))
    index = tf.clip_by_value(index, 0, tf.maximum(width - 1, 0))
    memory = tf.gather(both, index, batch_dims=1)
    memory = tf.where(keep[..., None], memory, tf.zeros_like(memory))
    speakers = tf.where(keep, tf.gather(both_speakers, index, batch_dims=1), SPEAKER_PAD)
    return memory, speakers, query
