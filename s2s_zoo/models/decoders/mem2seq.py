"""Mem2Seq-style copying decoder (Madotto, Wu and Fung 2018) over a memory network.

A GRU reads the previous token; each step it reads the memory slots (one attention hop)
and points at the memory *words* (the current turn and every slot's pieces, flattened,
see `MemoryNetworkEncoder`). The output mixes generating from the vocabulary with copying
the pointed word's id (`CopyDistribution`, pointer-generator style, a learned gate), as
log-probabilities, so the shared greedy/beam search and its controls run it unchanged.

Entities are sequences of SentencePiece pieces (an OOV restaurant name can be 20 pieces).
Copying such a sequence means pointing at consecutive positions; to make that reliable
for entities never seen in training, the pointer gets a *run feature*: for each word
position j, how many of the last emitted tokens equal the pieces just before j in its
slot (Mem2Seq copies whole words; this is its piece-level equivalent). The run lengths are
a deterministic function of the emitted tokens, updated each step (a per-hypothesis
[B, P] state that beam search reorders like any other) and, under teacher forcing,
computed by a scan over the target. A learned bias per run length is added to the
pointer's logits, and the gate sees the attended run length, so "continue the entity"
is easy to learn and does not depend on the entity's pieces having been trained.

Training adds Mem2Seq's copy supervision (`copy_loss`) to the mixture likelihood: a
target token found in memory must be pointed at and copied, so the model learns to copy
entities rather than generate the ones it happens to know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from keras import layers

from s2s_zoo.layers.copy import CopyDistribution
from s2s_zoo.models.base import Decoder, EncoderOutput, TensorDict, register_decoder

_NEG = -1e9


@dataclass
class Mem2SeqDecoderConfig:
    """A copying GRU decoder over a memory network's slots and words."""

    vocab_size: int = 0
    embedding_dim: int = 64
    decoder_units: int = 128
    attention_units: int = 64
    max_run: int = 16  # run lengths above this share one bias
    dropout: float = 0.0
    copy_supervision: float = 1.0  # weight of Mem2Seq's pointer + gate loss (0: off)
    # every step also reads the encoder's summary (the current user turn after the hops),
    # which the GRU otherwise only gets as its initial state and forgets over a long
    # answer: "here it is <a 12-piece name>_address" is decided by "where is it" at the end
    summary_features: bool = False

    def __post_init__(self) -> None:
        if self.max_run < 1 or self.decoder_units < 1 or self.attention_units < 1:
            raise ValueError("max_run, decoder_units and attention_units must be positive")


def _shift(runs: tf.Tensor, follows: tf.Tensor) -> tf.Tensor:
    """runs[..., j - 1] where position j follows j - 1 in its slot, else 0."""
    previous = tf.pad(runs[..., :-1], [[0, 0]] * (len(runs.shape) - 1) + [[1, 0]])
    return tf.where(follows, previous, 0)


def update_runs(
    runs: tf.Tensor, tokens: tf.Tensor, word_ids: tf.Tensor, word_mask: tf.Tensor, follows
) -> tf.Tensor:
    """Run lengths ending at each word after emitting `tokens` [B]: [B, P] int32.

    run[j] = run_before[j - 1] + 1 if word j's id is the token (and j follows j - 1 in its
    slot; else 1), 0 if not.
    """
    match = tf.logical_and(tf.equal(word_ids, tokens[:, None]), word_mask)
    return tf.where(match, _shift(runs, follows) + 1, 0)


def continuation_runs(runs: tf.Tensor, follows: tf.Tensor) -> tf.Tensor:
    """For each word j, the run ending just before it in its slot (what j would continue)."""
    return _shift(runs, follows)


class RunFeatures(layers.Layer):
    """Teacher forcing: [B, T] input tokens -> [B, T, P] continuation run lengths.

    Step t sees the runs after consuming input token t (BOS first), exactly what the
    decoding step computes from its state.

    >>> word_ids = tf.constant([[7, 8, 9, 7]])  # one slot "7 8 9", then another "7"
    >>> follows = tf.constant([[False, True, True, False]])
    >>> runs = RunFeatures()(tf.constant([[2, 7, 8]]), word_ids, word_ids > 0, follows)
    >>> runs.numpy().tolist()  # after "7", word 1 continues a run of 1; after "7 8", 2
    [[[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0]]]
    """

    def call(self, tokens, word_ids, word_mask, follows):
        tokens = tf.cast(tokens, tf.int32)
        word_ids = tf.cast(word_ids, tf.int32)
        initial = tf.zeros_like(word_ids)
        runs = tf.scan(
            lambda r, tok: update_runs(r, tok, word_ids, word_mask, follows),
            tf.transpose(tokens),
            initializer=initial,
        )  # [T, B, P]
        runs = tf.transpose(runs, [1, 0, 2])
        return continuation_runs(runs, follows[:, None, :])

    def compute_output_spec(self, tokens, word_ids, word_mask, follows):
        return keras.KerasTensor((tokens.shape[0], tokens.shape[1], word_ids.shape[1]), "int32")


def copy_loss(pointer, gate, word_ids, word_mask, targets) -> tf.Tensor:
    """Mem2Seq's copy supervision: when the next target token is in memory, point at it
    and close the gate (copy); otherwise open the gate (generate).

    The mixture likelihood alone lets a model generate every entity it saw in training,
    and then it never learns to copy the ones it did not; Madotto et al. train the
    pointer on the memory position of every target word found in memory. Here the pointer
    term is -log of the attention on all positions holding the token (any occurrence
    copies the same id) and the gate term a logistic loss; averaged over target tokens.
    `targets` [B, T] are the output tokens (0: padding, ignored).
    """
    targets = tf.cast(targets, tf.int32)
    valid = targets != 0
    hit = tf.logical_and(
        tf.equal(tf.cast(word_ids, tf.int32)[:, None, :], targets[..., None]),
        word_mask[:, None, :],
    )  # [B, T, P]
    copyable = tf.logical_and(tf.reduce_any(hit, axis=-1), valid)
    mass = tf.reduce_sum(tf.where(hit, tf.cast(pointer, tf.float32), 0.0), axis=-1)
    pointer_nll = -tf.math.log(tf.maximum(mass, 1e-9))
    gate = tf.cast(gate[..., 0], tf.float32)  # the generate logit
    gate_nll = tf.where(copyable, tf.nn.softplus(gate), tf.nn.softplus(-gate))
    total = tf.reduce_sum(tf.where(copyable, pointer_nll, 0.0))
    total += tf.reduce_sum(tf.where(valid, gate_nll, 0.0))
    return total / tf.maximum(tf.reduce_sum(tf.cast(valid, tf.float32)), 1.0)


def _masked_softmax(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Softmax over the last axis where `mask`, exactly 0 elsewhere (all 0 if none)."""
    logits = tf.where(mask, logits, _NEG)
    weights = tf.nn.softmax(logits, axis=-1)
    return tf.where(mask, weights, 0.0)


class Mem2SeqHead(layers.Layer):
    """One or more decoder positions -> (log-probs [B, T, V], pointer weights [B, T, P]).

    Inputs (T positions): GRU outputs h [B, T, U], input embeddings [B, T, E], run
    features [B, T, P] and the memory: slots [B, M, D] + mask, words [B, P, D], their
    pointer keys [B, P, A], ids and mask.

    >>> head = Mem2SeqHead(vocab_size=12, units=8, attention_units=4, max_run=3,
    ...                    memory_dim=6, embedding_dim=5)
    >>> log_probs, pointer = head(
    ...     tf.zeros([1, 2, 8]), tf.zeros([1, 2, 5]), tf.zeros([1, 2, 3], tf.int32),
    ...     tf.zeros([1, 2, 6]), tf.zeros([1, 2, 4]), tf.ones([1, 2], tf.bool),
    ...     tf.zeros([1, 3, 6]), tf.zeros([1, 3, 4]), tf.constant([[5, 6, 0]]),
    ...     tf.constant([[True, True, False]]))
    >>> tuple(log_probs.shape), pointer.numpy().tolist()  # no weight on the padding word
    ((1, 2, 12), [[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]])
    """

    def __init__(
        self,
        vocab_size: int,
        units: int,
        attention_units: int,
        max_run: int,
        memory_dim: int,
        embedding_dim: int,
        dropout: float = 0.0,
        copy_supervision: float = 0.0,
        summary_features: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.copy_supervision = copy_supervision
        self.summary_features = summary_features
        self.dropout_rate = dropout
        self.vocab_size, self.units = vocab_size, units
        self.memory_dim, self.embedding_dim = memory_dim, embedding_dim
        self.attention_units, self.max_run = attention_units, max_run
        self.slot_query = layers.Dense(attention_units, use_bias=False, name="slot_query")
        self.slot_key = layers.Dense(attention_units, use_bias=False, name="slot_key")
        self.word_query = layers.Dense(attention_units, use_bias=False, name="word_query")
        init = keras.initializers.Constant([[float(min(k, 4))] for k in range(max_run + 1)])
        self.run_bias = layers.Embedding(
            max_run + 1, 1, embeddings_initializer=init, name="run_bias"
        )
        self.combine = layers.Dense(units, activation="tanh", name="combine")
        self.vocab = layers.Dense(vocab_size, dtype="float32", name="vocab_logits")
        self.gate = layers.Dense(1, dtype="float32", name="copy_gate")
        self.dropout = layers.Dropout(dropout)
        self.copy = CopyDistribution(name="copy_distribution")

    def build(self, *args: Any, **kwargs: Any) -> None:
        u, d, e = self.units, self.memory_dim, self.embedding_dim
        s = d if self.summary_features else 0
        self.slot_query.build((None, None, u))
        self.slot_key.build((None, None, d))
        self.word_query.build((None, None, u + d + s))
        self.run_bias.build((None,))
        self.combine.build((None, None, u + 2 * d + s))
        self.vocab.build((None, None, u))
        self.gate.build((None, None, u + 2 * d + s + e + 2))
        self.built = True

    def slot_keys(self, slots):
        if not self.built:
            self.build()
        return self.slot_key(slots)

    def call(
        self,
        h,
        embedded,
        runs,
        slots,
        slot_keys,
        slot_mask,
        words,
        word_keys,
        word_ids,
        word_mask,
        targets=None,
        summary=None,
        training=None,
    ):
        """`summary` [B, D]: the encoder's summary, required with `summary_features`."""
        if self.summary_features and summary is None:
            raise ValueError("Mem2SeqHead(summary_features=True) needs the encoder summary")
        scale = 1.0 / float(self.attention_units) ** 0.5
        # one hop over the slots
        slot_logits = tf.einsum("bta,bma->btm", self.slot_query(h), slot_keys) * scale
        slot_weights = _masked_softmax(slot_logits, slot_mask[:, None, :])
        read = tf.einsum("btm,bmd->btd", slot_weights, slots)
        if self.summary_features:  # the same [B, D] at every position
            summary = tf.cast(summary, read.dtype)[:, None, :]
            read = tf.concat([read, tf.broadcast_to(summary, tf.shape(read))], axis=-1)
        # the pointer over words, with the run feature
        query = self.word_query(tf.concat([h, read], axis=-1))
        runs = tf.minimum(runs, self.max_run)
        bias = self.run_bias(runs)[..., 0]
        word_logits = tf.einsum("bta,bpa->btp", query, word_keys) * scale + bias
        pointer = _masked_softmax(word_logits, word_mask[:, None, :])
        context = tf.einsum("btp,bpd->btd", pointer, words)
        features = self.dropout(tf.concat([h, read, context], axis=-1), training=training)
        logits = self.vocab(self.combine(features))
        embedded = tf.cast(embedded, h.dtype)
        run_scale = tf.math.log1p(tf.cast(runs, h.dtype))
        attended_run = tf.reduce_sum(pointer * run_scale, axis=-1, keepdims=True)
        best_run = tf.reduce_max(tf.where(word_mask[:, None, :], run_scale, 0.0), -1, True)
        gate = self.gate(tf.concat([features, embedded, attended_run, best_run], axis=-1))
        log_probs = self.copy(logits, pointer, gate, word_ids)
        if training and targets is not None and self.copy_supervision:
            self.add_loss(
                self.copy_supervision * copy_loss(pointer, gate, word_ids, word_mask, targets)
            )
        return log_probs, pointer

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "units": self.units,
            "attention_units": self.attention_units,
            "max_run": self.max_run,
            "memory_dim": self.memory_dim,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout_rate,
            "copy_supervision": self.copy_supervision,
            "summary_features": self.summary_features,
        }

    def compute_output_spec(self, h, embedded, runs, *args, **kwargs):
        batch, steps = h.shape[0], h.shape[1]
        return (
            keras.KerasTensor((batch, steps, self.vocab_size), "float32"),
            keras.KerasTensor((batch, steps, runs.shape[2]), h.dtype),
        )


@register_decoder("mem2seq")
class Mem2SeqDecoder(Decoder):
    """See the module docstring. Needs an encoder that provides word extras
    (`memory_network`).

    >>> from s2s_zoo.models.encoders import MemoryNetworkEncoder, MemoryNetworkEncoderConfig
    >>> from s2s_zoo.models.seq2seq import Seq2SeqModel
    >>> enc = MemoryNetworkEncoder(MemoryNetworkEncoderConfig(vocab_size=30, embedding_dim=8))
    >>> dec = Mem2SeqDecoder(Mem2SeqDecoderConfig(vocab_size=30, decoder_units=16,
    ...                                           attention_units=8), enc.memory_dim)
    >>> Seq2SeqModel(enc, dec).training_model.output.shape
    (None, None, 30)
    """

    config_class = Mem2SeqDecoderConfig

    def __init__(self, config: Mem2SeqDecoderConfig, memory_dim: int) -> None:
        super().__init__(config, memory_dim)
        c = config
        self.embedding = layers.Embedding(c.vocab_size, c.embedding_dim, name="target_embedding")
        self.bridge = layers.Dense(c.decoder_units, activation="tanh", name="bridge")
        self.gru = layers.GRU(
            c.decoder_units, return_sequences=True, return_state=True, name="decoder_gru"
        )
        self.word_key = layers.Dense(c.attention_units, use_bias=False, name="word_key")
        self.runs = RunFeatures(name="run_features")
        self.head = Mem2SeqHead(
            c.vocab_size,
            c.decoder_units,
            c.attention_units,
            c.max_run,
            memory_dim,
            c.embedding_dim,
            c.dropout,
            c.copy_supervision,
            c.summary_features,
            name="mem2seq_head",
        )
        self.input_dropout = layers.Dropout(c.dropout, name="target_dropout")

    @property
    def has_attention(self) -> bool:
        return True  # state["attention"]: the pointer over memory words

    def _extras(self, encoded: EncoderOutput) -> dict:
        extras = encoded.extras or {}
        missing = {"word_ids", "words", "word_mask", "word_follows"} - set(extras)
        if missing:
            raise ValueError(
                f"the mem2seq decoder copies memory words; the encoder gives no {sorted(missing)}"
                " (use the memory_network encoder)"
            )
        return extras

    def teacher_forcing(self, target_ids, encoded: EncoderOutput):
        x = self._extras(encoded)
        embedded = self.embedding(target_ids)
        h0 = self.bridge(encoded.summary[0])
        h, _ = self.gru(self.input_dropout(embedded), initial_state=h0)
        runs = self.runs(target_ids, x["word_ids"], x["word_mask"], x["word_follows"])
        # the output tokens, for the copy supervision (the final EOS is never copied: 0)
        targets = keras.ops.pad(target_ids[:, 1:], [[0, 0], [0, 1]])
        log_probs, _ = self.head(
            h,
            embedded,
            runs,
            encoded.memory,
            self.head.slot_keys(encoded.memory),
            encoded.mask,
            x["words"],
            self.word_key(x["words"]),
            x["word_ids"],
            x["word_mask"],
            targets,
            summary=encoded.summary[0],
        )
        return log_probs

    def encoder_tensors(self, encoded: EncoderOutput) -> list:
        x = self._extras(encoded)
        return [
            encoded.memory,
            self.head.slot_keys(encoded.memory),
            encoded.mask,
            x["words"],
            self.word_key(x["words"]),
            x["word_ids"],
            x["word_mask"],
            x["word_follows"],
            encoded.summary[0],
            self.bridge(encoded.summary[0]),
        ]

    def start(self, tensors, max_length=None) -> tuple[TensorDict, TensorDict]:
        names = (
            "slots",
            "slot_keys",
            "slot_mask",
            "words",
            "word_keys",
            "word_ids",
            "word_mask",
            "word_follows",
            "summary",
        )
        *values, h0 = [tf.identity(t) for t in tensors]
        memory = dict(zip(names, values, strict=True))
        state = {
            "h": h0,
            "runs": tf.zeros_like(memory["word_ids"], tf.int32),
            "attention": tf.zeros(tf.shape(memory["word_ids"]), memory["words"].dtype),
        }
        return memory, state

    def step(self, token_ids, state, memory) -> tuple[tf.Tensor, TensorDict]:
        embedded = self.embedding(token_ids[:, None])
        h, h_last = self.gru(embedded, initial_state=state["h"], training=False)
        runs = update_runs(
            state["runs"],
            token_ids,
            memory["word_ids"],
            memory["word_mask"],
            memory["word_follows"],
        )
        features = continuation_runs(runs, memory["word_follows"])[:, None, :]
        log_probs, pointer = self.head(
            h,
            embedded,
            features,
            memory["slots"],
            memory["slot_keys"],
            memory["slot_mask"],
            memory["words"],
            memory["word_keys"],
            memory["word_ids"],
            memory["word_mask"],
            summary=memory["summary"],
            training=False,
        )
        new_state = {
            "h": h_last,
            "runs": runs,
            "attention": tf.cast(pointer[:, 0], state["attention"].dtype),
        }
        return log_probs[:, 0], new_state
