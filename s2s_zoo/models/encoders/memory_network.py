"""Memory-network encoder for dialogue: conversation + KB facts -> memory slots and words.

Wraps :class:`s2s_zoo.layers.memory.MemoryEncoder` (K hops, adjacent tying, time and
speaker features; Sukhbaatar et al. 2015, Bordes et al. 2017). Its `EncoderOutput`:

- ``memory`` / ``mask``: one vector per memory slot (earlier turns, then facts)
  ``[B, M, D]``, what an attention decoder (the "rnn" decoder: memn2n_dialog) reads;
- ``summary``: the final controller state u_K ``[B, D]`` (the query after K hops);
- ``extras``: the *words* of the current turn and of every slot, flattened over slots
  with padding removed, for a decoder that copies tokens (Mem2Seq, Madotto et al.
  2018): ``word_ids`` ``[B, P]``, ``words`` ``[B, P, D]``, ``word_mask`` ``[B, P]`` and
  ``word_follows`` ``[B, P]`` (True where the word continues the previous position's
  slot). Each word's vector is its piece embedding + the previous piece's (with
  ``next_piece`` the next one's too: the role of a word is in its neighbours, "in lima",
  "german food") + its position in the slot + its speaker + the slot's memory vector, and
  with ``said_ngrams`` N > 0 an
  embedding of how many of the pieces ending at it the bot has said (up to N,
  :mod:`s2s_zoo.layers.said_ngrams`: which options it has already proposed).

Padding slots and padding pieces are dropped or zero, so padding a batch further changes
no output (beyond float rounding); in training with `unk_rate`, which pieces are masked
depends on the padded shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from s2s_zoo.data.tokenizer import UNK_ID
from s2s_zoo.layers.memory import HOP_UPDATES, SPEAKER_BOT, SPEAKER_USER, MemoryEncoder
from s2s_zoo.layers.said_ngrams import said_ngram_lengths
from s2s_zoo.models.base import Encoder, EncoderOutput, register_encoder


@dataclass
class MemoryNetworkEncoderConfig:
    """A memory-network dialogue encoder (everything needed to rebuild it)."""

    vocab_size: int = 0
    embedding_dim: int = 64
    hops: int = 3
    max_slots: int = 128
    hop_update: str = "add"
    position_encoding: bool = True
    dropout: float = 0.0
    # training only: the share of real pieces whose *embedding* is UNK's (their ids, which
    # a copying decoder copies, stay): Mem2Seq's "unk mask", so that pointing relies on a
    # word's place and neighbours too and works on entities never seen in training
    unk_rate: float = 0.0
    # the longest n-gram ending at each word that a bot turn holds, up to this (0: off)
    said_ngrams: int = 0
    # each word also embeds the piece after it in its slot ("in lima", "german food")
    next_piece: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.unk_rate < 1.0:
            raise ValueError(f"unk_rate must be in [0, 1), got {self.unk_rate}")
        if self.hop_update not in HOP_UPDATES:
            raise ValueError(f"hop_update must be one of {HOP_UPDATES}, got {self.hop_update!r}")
        if self.said_ngrams < 0:
            raise ValueError(f"said_ngrams must be >= 0, got {self.said_ngrams}")
        if self.hops < 1 or self.embedding_dim < 1 or self.max_slots < 1:
            raise ValueError("hops, embedding_dim and max_slots must be positive")


@keras.saving.register_keras_serializable(package="s2s_zoo")
class UnkMasking(keras.layers.Layer):
    """Training only: each real (non-padding) piece id becomes `unk_id` with probability
    `rate`; padding stays 0. The identity in inference.

    >>> ids = tf.constant([[5, 6, 7, 0]])
    >>> UnkMasking(0.5)(ids).numpy().tolist()  # inference: unchanged
    [[5, 6, 7, 0]]
    >>> masked = UnkMasking(0.999, seed=1)(ids, training=True).numpy().tolist()
    >>> masked
    [[1, 1, 1, 0]]
    """

    def __init__(self, rate: float, unk_id: int = UNK_ID, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.unk_id, self.seed = rate, unk_id, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids, training=None):
        ids = tf.cast(ids, tf.int32)
        if not training or self.rate <= 0.0:
            return ids
        draw = keras.random.uniform(tf.shape(ids), seed=self.seed_generator)
        return tf.where(tf.logical_and(ids != 0, draw < self.rate), self.unk_id, ids)

    def compute_output_spec(self, ids, training=None):
        return keras.KerasTensor(ids.shape, "int32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "unk_id": self.unk_id, "seed": self.seed}


@keras.saving.register_keras_serializable(package="s2s_zoo")
class SlotWords(keras.layers.Layer):
    """The query turn's and every slot's pieces as one flat, padding-free word memory.

    Inputs: ``memory`` ids [B, M, L], ``speakers`` [B, M], ``query`` ids [B, L] and the
    slots' vectors [B, M, D]. Real pieces are gathered first (query first, then the slots
    in order; padding dropped), so everything after costs O(real pieces). Piece p of slot
    s (the query is a user turn with a zero slot vector) embeds as
    E[id] + E'[previous piece's id in the slot] + P[position in slot] + S[speaker] + W v_s
    (+ E''[next piece's id, 0 after the last] with `next_piece`, + N[said n-gram length]
    with `said_ngrams`).
    Returns ``(word_ids [B, P], words [B, P, D], word_mask [B, P], word_follows [B, P])``.

    >>> memory = tf.constant([[[3, 4, 0], [5, 0, 0]]])  # slots "3 4" and "5"
    >>> ids, words, mask, follows = SlotWords(vocab_size=10, dim=4)(
    ...     memory, tf.constant([[2, 3]]), tf.constant([[6, 0, 0]]), tf.zeros([1, 2, 4]))
    >>> ids.numpy().tolist(), tuple(words.shape), follows.numpy().tolist()
    ([[6, 3, 4, 5]], (1, 4, 4), [[False, False, True, False]])
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        max_positions: int = 64,
        said_ngrams: int = 0,
        next_piece: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.vocab_size, self.dim, self.max_positions = vocab_size, dim, max_positions
        self.said_ngrams, self.next_piece = said_ngrams, next_piece
        init = keras.initializers.RandomNormal(stddev=0.1)
        self.word_embedding = keras.layers.Embedding(vocab_size, dim, init, name="word_pieces")
        self.previous_embedding = keras.layers.Embedding(vocab_size, dim, init, name="word_prev")
        self.next_embedding = (
            keras.layers.Embedding(vocab_size, dim, init, name="word_next") if next_piece else None
        )
        self.position_embedding = keras.layers.Embedding(max_positions, dim, init, name="word_pos")
        self.speaker_embedding = keras.layers.Embedding(4, dim, init, name="word_speaker")
        self.slot_projection = keras.layers.Dense(dim, use_bias=False, name="word_slot")
        self.said_embedding = (
            keras.layers.Embedding(said_ngrams + 1, dim, init, name="word_said")
            if said_ngrams
            else None
        )

    def build(self, *args: Any, **kwargs: Any) -> None:
        for layer in (
            self.word_embedding,
            self.previous_embedding,
            self.position_embedding,
            self.speaker_embedding,
        ):
            layer.build((None,))
        if self.next_embedding is not None:
            self.next_embedding.build((None,))
        self.slot_projection.build((None, self.dim))
        if self.said_embedding is not None:
            self.said_embedding.build((None,))
        self.built = True

    def call(self, memory, speakers, query, slots, embedded_memory=None, embedded_query=None):
        """`embedded_memory`/`embedded_query`: the ids to *embed* when they differ from the
        ids (UNK-masked in training); padding must be where it is in `memory`/`query`."""
        memory = tf.cast(memory, tf.int32)
        query = tf.cast(query, tf.int32)
        ids = tf.concat([query[:, None, :], memory], axis=1)  # [B, S, L], S = M + 1
        if (embedded_memory is None) != (embedded_query is None):
            raise ValueError("SlotWords: pass both embedded_memory and embedded_query, or neither")
        if embedded_memory is None:
            seen = ids
        else:
            seen = tf.concat(
                [tf.cast(embedded_query, tf.int32)[:, None, :], tf.cast(embedded_memory, tf.int32)],
                axis=1,
            )
        shape = tf.shape(ids)
        batch, count, length = shape[0], shape[1], shape[2]
        keep = tf.reshape(ids != 0, [batch, count * length])
        slot = tf.broadcast_to(tf.range(count)[None, :, None], shape)
        position = tf.broadcast_to(tf.range(length)[None, None, :], shape)
        previous = tf.pad(seen[:, :, :-1], [[0, 0], [0, 0], [1, 0]])
        following = tf.pad(seen[:, :, 1:], [[0, 0], [0, 0], [0, 1]])

        def compact(t):  # [B, S, L] ints -> [B, P], real pieces only, 0-padded
            return tf.ragged.boolean_mask(tf.reshape(t, [batch, count * length]), keep).to_tensor()

        word_ids, word_slot = compact(ids), compact(slot)
        word_seen = word_ids if embedded_memory is None else compact(seen)
        word_position, word_previous = compact(position), compact(previous)
        word_next = compact(following)
        word_mask = word_ids != 0
        who = tf.concat([tf.fill([batch, 1], SPEAKER_USER), tf.cast(speakers, tf.int32)], 1)
        word_speaker = tf.gather(who, word_slot, batch_dims=1)
        vectors = tf.concat([tf.zeros_like(slots[:, :1]), slots], axis=1)  # [B, S, D]
        x = (
            self.word_embedding(word_seen)
            + self.previous_embedding(word_previous)
            + self.position_embedding(tf.minimum(word_position, self.max_positions - 1))
            + self.speaker_embedding(word_speaker)
            + self.slot_projection(tf.gather(vectors, word_slot, batch_dims=1))
        )
        if self.next_embedding is not None:
            x = x + self.next_embedding(word_next)
        follows = tf.logical_and(word_mask, word_position > 0)
        if self.said_embedding is not None:
            by_bot = tf.equal(word_speaker, SPEAKER_BOT)
            said = said_ngram_lengths(word_ids, follows, by_bot, self.said_ngrams)
            x = x + self.said_embedding(said)
        words = x * tf.cast(word_mask, x.dtype)[..., None]
        return word_ids, words, word_mask, follows

    def compute_output_spec(self, memory, speakers, query, slots, *args, **kwargs):
        batch = memory.shape[0]
        return (
            keras.KerasTensor((batch, None), "int32"),
            keras.KerasTensor((batch, None, self.dim), self.compute_dtype),
            keras.KerasTensor((batch, None), "bool"),
            keras.KerasTensor((batch, None), "bool"),
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "max_positions": self.max_positions,
            "said_ngrams": self.said_ngrams,
            "next_piece": self.next_piece,
        }


@register_encoder("memory_network")
class MemoryNetworkEncoder(Encoder):
    """See the module docstring.

    >>> enc = MemoryNetworkEncoder(MemoryNetworkEncoderConfig(vocab_size=30, embedding_dim=8))
    >>> out = enc(enc.inputs())
    >>> tuple(out.memory.shape), tuple(out.summary[0].shape), tuple(out.extras["words"].shape)
    ((None, None, 8), (None, 8), (None, None, 8))
    """

    config_class = MemoryNetworkEncoderConfig
    source_features = "dialogue"

    def __init__(self, config: MemoryNetworkEncoderConfig) -> None:
        super().__init__(config)
        c = config
        self.memory_encoder = MemoryEncoder(
            c.vocab_size,
            c.embedding_dim,
            hops=c.hops,
            max_slots=c.max_slots,
            hop_update=c.hop_update,
            use_position_encoding=c.position_encoding,
            name="memory_network",
        )
        self.words = SlotWords(
            c.vocab_size,
            c.embedding_dim,
            said_ngrams=c.said_ngrams,
            next_piece=c.next_piece,
            name="slot_words",
        )
        self.dropout = keras.layers.Dropout(c.dropout, name="memory_dropout")
        self.unk_masking = UnkMasking(c.unk_rate, name="unk_masking") if c.unk_rate else None

    @property
    def memory_dim(self) -> int:
        return self.config.embedding_dim

    def inputs(self) -> list:
        return [
            keras.Input((None, None), dtype="int32", name="memory_ids"),
            keras.Input((None,), dtype="int32", name="speakers"),
            keras.Input((None,), dtype="int32", name="query_ids"),
        ]

    def __call__(self, inputs: list) -> EncoderOutput:
        memory, speakers, query = inputs
        if self.unk_masking is None:
            seen_memory, seen_query = None, None
        else:
            seen_memory, seen_query = self.unk_masking(memory), self.unk_masking(query)
        state, slots, mask, _ = self.memory_encoder(
            memory if seen_memory is None else seen_memory,
            query if seen_query is None else seen_query,
            speakers,
        )
        word_ids, words, word_mask, follows = self.words(
            memory, speakers, query, slots, seen_memory, seen_query
        )
        extras = {
            "word_ids": word_ids,
            "words": self.dropout(words),
            "word_mask": word_mask,
            "word_follows": follows,
        }
        return EncoderOutput(self.dropout(slots), mask, [state], extras=extras)
