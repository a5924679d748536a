"""Dialogue requests -> model inputs: the conversation and its KB facts as token-id slots.

A dialogue export takes two string tensors, ``context`` [batch, turns] (user first,
alternating, ending with the current user turn) and ``kb`` [batch, facts]; empty strings
pad a row at the end. Both preprocessors here share one SentencePiece vocabulary over
turns, facts and responses, so an entity has the same ids wherever it appears.

Why entities are copyable without special symbols: SentencePiece pieces never cross
whitespace, and its default ``split_by_unicode_script`` also splits at ``_``, so a
whitespace word such as ``resto_oslo_cheap_thai_3stars_phone`` always becomes the same
piece sequence, in a KB fact, a turn or a response. An entity never seen in training
(bAbI's OOV test) becomes known pieces (down to single characters, all of which the
vocabulary covers) and a copying decoder reproduces it by copying that sequence piece by
piece. (KB entities as ``user_defined_symbols`` would make every *training* entity one
piece, so a model would never learn to copy multi-piece entities, which is all that OOV
entities are.)

- :class:`DialoguePreprocessor` ("dialogue" source features): context and facts as
  memory slots ``[B, M, L]``, their speakers ``[B, M]`` and the current user turn
  ``[B, L]`` (:func:`s2s_zoo.layers.memory.dialogue_memory`), for memory networks.
- :class:`FlatDialoguePreprocessor` ("token_ids"): the conversation flattened into one
  token sequence, truncated from the left, so any text encoder serves as a baseline.

Unusual requests are well defined: an empty conversation is all padding (the model
decodes from nothing), a conversation without facts has only turn slots, an empty string
*between* turns is read as ``<SILENCE>`` (bAbI's silent turn) so the user/bot alternation
holds, and only the most recent ``max_turns`` turns / ``max_facts`` facts are kept.
Everything is TF ops, so the exported graph runs on stock TF Serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf

from s2s_zoo.data.preprocessor import TargetText, TextPreprocessor, register_preprocessor
from s2s_zoo.data.tokenizer import PAD_ID
from s2s_zoo.layers.memory import dialogue_memory

SILENCE = "<SILENCE>"
# Speaker markers of the flattened conversation (Mem2Seq writes $u / $s as well).
USER_MARK, BOT_MARK, KB_MARK = "$u", "$s", "$kb"

DIALOGUE_INPUTS = [
    tf.TensorSpec([None, None], tf.string, name="context"),
    tf.TensorSpec([None, None], tf.string, name="kb"),
]


def _at_least_one_column(strings: tf.Tensor) -> tf.Tensor:
    """[B, N] -> [B, max(N, 1)]: a request with no turns (or no facts) gets one empty one."""
    missing = tf.maximum(1 - tf.shape(strings)[1], 0)
    return tf.pad(strings, [[0, 0], [0, missing]], constant_values="")


def keep_last(strings: tf.Tensor, real: tf.Tensor, limit: int) -> tf.Tensor:
    """The last `limit` real items of each row, in order, then "" padding: [B, min(N, limit)].

    Real items are moved before padding first (a stable sort), so padding may be anywhere.
    """
    order = tf.argsort(tf.cast(~real, tf.int32), axis=1, stable=True)
    real = tf.gather(real, order, batch_dims=1)
    strings = tf.where(real, tf.gather(strings, order, batch_dims=1), "")
    count = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
    width = tf.minimum(tf.shape(strings)[1], limit)
    start = tf.maximum(count - limit, 0)[:, None]
    index = start + tf.range(width)[None, :]
    last = tf.maximum(tf.shape(strings)[1] - 1, 0)
    kept = tf.gather(strings, tf.minimum(index, last), batch_dims=1)
    return tf.where(index < count[:, None], kept, "")


def conversation_turns(context: tf.Tensor, max_turns: int, silence: bool = True) -> tf.Tensor:
    """[B, T] turns -> [B, T'] with inner empty turns as <SILENCE>, the last `max_turns` kept.

    `max_turns` is odd, so dropping the oldest turns keeps a user turn first. With
    `silence=False` inner empty turns stay "" (the same turns, as the client sent them).
    """
    context = tf.strings.strip(_at_least_one_column(context))
    real = context != ""
    position = tf.range(tf.shape(context)[1])[None, :]
    last = tf.reduce_max(tf.where(real, position, -1), axis=1, keepdims=True)
    inner = position < last
    if silence:
        context = tf.where(inner & ~real, SILENCE, context)
    return keep_last(context, real | inner, max_turns)


def kb_facts(kb: tf.Tensor, max_facts: int) -> tf.Tensor:
    """[B, F] facts -> [B, F'] real facts first, the last `max_facts` kept."""
    kb = tf.strings.strip(_at_least_one_column(kb))
    return keep_last(kb, kb != "", max_facts)


_ALL = 2**30  # a turn/fact limit no request reaches: everything the client sent


def _pieces(tokenizer, strings: tf.Tensor, cap: int | None = None) -> tf.Tensor:
    """[B, N] strings -> [B] their pieces in all, each string's cut to `cap` if given."""
    lengths = tokenizer.tokenize(tf.reshape(strings, [-1])).row_lengths()
    if cap is not None:
        lengths = tf.minimum(lengths, cap)
    lengths = tf.reshape(tf.cast(lengths, tf.int32), tf.shape(strings))
    return tf.reduce_sum(lengths, axis=1)


def _check_limits(max_turns: int, max_facts: int, max_turn_length: int) -> None:
    if max_turns < 1 or max_turns % 2 != 1:
        raise ValueError(f"max_turns must be a positive odd number, got {max_turns}")
    if max_facts < 1 or max_turn_length < 1:
        raise ValueError("max_facts and max_turn_length must be positive")


@register_preprocessor("dialogue")
class DialoguePreprocessor(TargetText):
    """`context` and `kb` strings -> (memory slots, speakers, query) ids; responses as text.

    One SentencePiece model (`proto`) tokenizes turns, facts and responses, so source and
    target ids are the same vocabulary (`source_vocab_size == target_vocab_size`), which
    is what lets a decoder copy source ids into its output. Each turn or fact keeps its
    first `max_turn_length` pieces.
    """

    source_features = "dialogue"
    input_name = "context"

    def __init__(
        self,
        proto: bytes,
        max_turns: int = 63,
        max_facts: int = 64,
        max_turn_length: int = 48,
        max_target_length: int = 64,
    ) -> None:
        super().__init__(proto, max_target_length, name="dialogue_preprocessor")
        _check_limits(max_turns, max_facts, max_turn_length)
        self.max_turns = max_turns
        self.max_facts = max_facts
        self.max_turn_length = max_turn_length

    @property
    def source_vocab_size(self) -> int:
        return self.target_vocab_size

    def input_specs(self) -> list[tf.TensorSpec]:
        return list(DIALOGUE_INPUTS)

    def sentence_ids(self, strings: tf.Tensor) -> tf.Tensor:
        """[B, N] strings -> [B, N, L] ids (L >= 1), each row cut to `max_turn_length`."""
        shape = tf.shape(strings)
        ids = self.target_tokenizer.tokenize(tf.reshape(strings, [-1]))
        dense = ids[:, : self.max_turn_length].to_tensor(PAD_ID)
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(1 - tf.shape(dense)[1], 0)]])
        return tf.reshape(dense, tf.concat([shape, tf.shape(dense)[1:]], axis=0))

    def encode_source(self, context: tf.Tensor, kb: tf.Tensor):
        """-> ((memory [B, M, L], speakers [B, M], query [B, L]), real pieces [B], None)."""
        context_ids = self.sentence_ids(conversation_turns(context, self.max_turns))
        kb_ids = self.sentence_ids(kb_facts(kb, self.max_facts))
        memory, speakers, query = dialogue_memory(context_ids, kb_ids)
        lengths = tf.reduce_sum(tf.cast(memory != PAD_ID, tf.int32), axis=[1, 2])
        lengths += tf.reduce_sum(tf.cast(query != PAD_ID, tf.int32), axis=1)
        return (memory, speakers, query), lengths, None

    def encode_source_reporting(self, context: tf.Tensor, kb: tf.Tensor):
        """`encode_source`, plus the pieces of the request each conversation lost: turns and
        facts beyond `max_turns`/`max_facts` (the oldest go) and pieces past
        `max_turn_length` (a <SILENCE> put in for an empty turn is not the client's)."""
        source, lengths, errors = self.encode_source(context, kb)
        tokenizer, cap = self.target_tokenizer, self.max_turn_length
        turns = conversation_turns(context, _ALL, silence=False)
        kept_turns = conversation_turns(context, self.max_turns, silence=False)
        sent = _pieces(tokenizer, turns) + _pieces(tokenizer, kb_facts(kb, _ALL))
        kept = _pieces(tokenizer, kept_turns, cap) + _pieces(
            tokenizer, kb_facts(kb, self.max_facts), cap
        )
        return source, lengths, errors, sent - kept

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_turns": self.max_turns,
            "max_facts": self.max_facts,
            "max_turn_length": self.max_turn_length,
        }

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> DialoguePreprocessor:
        return cls(
            (directory / "target.spm.model").read_bytes(),
            max_turns=config["max_turns"],
            max_facts=config["max_facts"],
            max_turn_length=config["max_turn_length"],
            max_target_length=config["max_target_length"],
        )


def flatten_dialogue(context: tf.Tensor, kb: tf.Tensor) -> tf.Tensor:
    """[B, T] turns and [B, F] facts -> [B] strings: older turns, facts, current turn.

    ``$u hi $s hello ... $kb fact ... $kb fact $u current``: the current user turn comes
    last and the facts just before it, so cutting the oldest pieces (left truncation)
    drops the oldest turns first.
    """
    real = context != ""
    position = tf.range(tf.shape(context)[1])[None, :]
    count = tf.reduce_sum(tf.cast(real, tf.int32), axis=1, keepdims=True)
    marks = tf.broadcast_to(tf.where(position % 2 == 0, USER_MARK, BOT_MARK), tf.shape(context))
    turns = tf.where(real, tf.strings.join([marks, context], " "), "")
    older = tf.where(position < count - 1, turns, "")
    current = tf.where(position == count - 1, turns, "")
    facts = tf.where(kb != "", tf.strings.join([KB_MARK, kb], " "), "")
    parts = tf.concat([older, facts, current], axis=1)
    joined = tf.strings.reduce_join(parts, axis=1, separator=" ")
    return tf.strings.strip(tf.strings.regex_replace(joined, " +", " "))


@register_preprocessor("dialogue_flat")
class FlatDialoguePreprocessor(TextPreprocessor):
    """`context` and `kb` -> one token sequence (see `flatten_dialogue`) for text encoders.

    Keeps the *last* `max_source_length - 1` pieces (then EOS): a long conversation loses
    its oldest turns, never the current one. The source and target vocabulary is one
    SentencePiece model, as in `DialoguePreprocessor`.
    """

    input_name = "context"
    supports_alignment = False

    def __init__(
        self,
        proto: bytes,
        max_source_length: int = 256,
        max_target_length: int = 64,
        max_turns: int = 63,
        max_facts: int = 64,
    ) -> None:
        super().__init__(proto, proto, max_source_length, max_target_length)
        _check_limits(max_turns, max_facts, 1)
        self.max_turns = max_turns
        self.max_facts = max_facts

    def input_specs(self) -> list[tf.TensorSpec]:
        return list(DIALOGUE_INPUTS)

    def source_texts(self, *inputs: tf.Tensor) -> tf.Tensor:
        context, kb = inputs
        return flatten_dialogue(
            conversation_turns(context, self.max_turns), kb_facts(kb, self.max_facts)
        )

    def keep_pieces(self, ids: tf.RaggedTensor, keep: int) -> tf.RaggedTensor:
        """The last `keep` pieces of each row: the oldest turns go first."""
        start = tf.maximum(ids.row_lengths() - keep, 0)
        tail = tf.ragged.range(ids.row_starts() + start, ids.row_limits())
        return tf.gather(ids.values, tail)

    def encode_source_reporting(self, context: tf.Tensor, kb: tf.Tensor):
        """The base class's, with the count taken against the whole flattened conversation
        (its turn markers included): turns and facts beyond `max_turns`/`max_facts` are
        lost pieces too."""
        source_ids, lengths, errors, _ = super().encode_source_reporting(context, kb)
        whole = flatten_dialogue(conversation_turns(context, _ALL), kb_facts(kb, _ALL))
        sent = tf.cast(self.source_tokenizer.tokenize(whole).row_lengths(), tf.int32)
        kept = lengths - 1  # the pieces read: the real source positions less EOS
        return source_ids, lengths, errors, tf.maximum(sent - kept, 0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_turns": self.max_turns, "max_facts": self.max_facts}

    def save(self, directory: Path) -> None:
        TargetText.save(self, directory)  # one vocabulary: target.spm.model

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> FlatDialoguePreprocessor:
        return cls(
            (directory / "target.spm.model").read_bytes(),
            max_source_length=config["max_source_length"],
            max_target_length=config["max_target_length"],
            max_turns=config["max_turns"],
            max_facts=config["max_facts"],
        )
