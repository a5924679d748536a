"""Subword tokenizers that run as TF ops, in tf.data and in the exported graph alike.

We train SentencePiece models with the `sentencepiece` trainer and run them with
tf-text's `FastSentencepieceTokenizer` op, which stock TF Serving links (see
`SubwordTokenizer` for why not the other SentencePiece op, which keras-hub's
`SentencePieceTokenizer` wraps; keras-hub's layer also turns ragged outputs into
Python lists in eager mode, which our eager tests and CLI cannot use).

Lossless, precisely: for a model trained by `train_sentencepiece`,
`detokenize(tokenize(s)) == s` for every valid UTF-8 string `s`: every character,
every space (runs, leading, trailing) and every line break or tab. How:
- no normalization (`identity`, extra whitespace kept), so known characters pass
  through unchanged ("quarante-deux" stays "quarante-deux"; "ﬁ" is not turned into
  "fi", NFD accents are not composed);
- characters the model has no piece for (unseen in training: "€", a digit, an emoji),
  whitespace other than the plain space, "▁" and the escape marker itself are
  written as the marker "¤" plus 6 lowercase hex digits of the code point ("€" ->
  "¤0020ac") before tokenization, and turned back after detokenization. The marker
  and the hex digits are always in the vocabulary (`required_chars`), so no
  character becomes UNK; tf-text's fast op has no byte fallback, hence this escape.
Not preserved: invalid UTF-8 bytes (read as U+FFFD). A model may of course
generate text that was never tokenized; a marker not followed by 6 hex digits of
a valid code point is left as it is. The preprocessors strip surrounding
whitespace from sources and targets and truncate long ones (see TextPreprocessor).
Models trained before this escape (no marker in the vocabulary) tokenize as before.

Special ids are fixed across the zoo: 0 pad, 1 unk, 2 bos, 3 eos.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3

ESCAPE_MARKER = "\u00a4"  # "¤": rare in text, and escaped itself when it occurs
HEX_DIGITS = "0123456789abcdef"
ESCAPE_WIDTH = 6  # hex digits: every code point up to U+10FFFF
ESCAPE_ALPHABET = ESCAPE_MARKER + HEX_DIGITS
_SPACE_PIECE = "\u2581"  # "▁", SentencePiece's whitespace symbol


def train_sentencepiece(
    texts: Iterable[str],
    vocab_size: int,
    max_sentences: int = 2_000_000,
) -> bytes:
    """Train a SentencePiece model on `texts` and return its serialized proto.

    keras-hub's `compute_sentence_piece_proto` uses the same special ids but takes
    no `hard_vocab_limit`; small corpora (a few hundred distinct words) need it off,
    so that `vocab_size` is an upper bound instead of an error. Text is not
    normalized and the escape alphabet is always in the vocabulary, which makes
    `SubwordTokenizer` lossless (see the module docstring); `vocab_size` is raised
    to hold at least every character of `texts` and that alphabet.
    """
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("cannot train a tokenizer on no text")
    # every character is a piece (coverage 1.0), the escape alphabet too, plus 4 specials
    characters = set(ESCAPE_ALPHABET).union(*map(set, texts))
    vocab_size = max(vocab_size, len(characters) + 4)
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=writer,
        vocab_size=vocab_size,
        model_type="unigram",  # what FastSentencepieceTokenizer runs
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        required_chars=ESCAPE_ALPHABET,
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        minloglevel=2,
    )
    return writer.getvalue()


class SubwordTokenizer(tf.Module):
    """A SentencePiece model as resource-free TF ops (tf-text FastSentencepieceTokenizer).

    Why the "fast" op and not tf-text's `SentencepieceTokenizer`: the latter keeps its
    model in a kernel-owned resource, which (a) dies when eager kernel caches are
    cleared (any `tf.random.set_seed`, e.g. `keras.utils.set_random_seed`) and (b)
    is shared by node name, so two tokenizers in one SavedModel can load the same
    model. The fast op takes the converted model as a constant tensor instead. Its
    ids equal the `sentencepiece` library's for unigram models; both op libraries
    are linked into stock TF Serving (tf-text `ops_lib`).
    """

    def __init__(self, proto: bytes, name: str) -> None:
        super().__init__(name=name)
        processor = spm.SentencePieceProcessor(model_proto=proto)
        self.proto = proto
        self.vocab_size = processor.get_piece_size()
        pieces = [processor.id_to_piece(i) for i in range(self.vocab_size)]
        self._pieces = tf.constant(pieces)
        self._tokenizer = tf_text.FastSentencepieceTokenizer(proto)
        known = _known_characters(processor)
        self.escapes = set(ESCAPE_ALPHABET) <= known  # models from before the escape: off
        known -= {ESCAPE_MARKER}
        with tf.init_scope():  # constants even if built while tracing
            self._known = tf.constant(sorted(ord(c) for c in known) or [-1], tf.int32)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """[batch] strings -> ragged int32 ids (characters without a piece escaped)."""
        if self.escapes:
            texts = self.escape(texts)
        return tf.cast(self._tokenizer.tokenize(texts), tf.int32)

    def detokenize(self, ids: tf.RaggedTensor) -> tf.Tensor:
        """Ragged ids -> [batch] strings, escapes turned back into their characters."""
        texts = self._tokenizer.detokenize(ids)
        return self.unescape(texts) if self.escapes else texts

    def escape(self, texts: tf.Tensor) -> tf.Tensor:
        """Strings (any shape): each character without a piece -> marker + 6 hex digits."""
        texts = tf.convert_to_tensor(texts, tf.string)
        return tf.reshape(self._escape(tf.reshape(texts, [-1])), tf.shape(texts))

    def unescape(self, texts: tf.Tensor) -> tf.Tensor:
        """Inverse of `escape` (any shape): marker + 6 hex digits of a valid code point ->
        that character; anything else is left as it is."""
        texts = tf.convert_to_tensor(texts, tf.string)
        return tf.reshape(self._unescape(tf.reshape(texts, [-1])), tf.shape(texts))

    def _escape(self, texts: tf.Tensor) -> tf.Tensor:
        chars = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
        flat = chars.flat_values
        slot = tf.minimum(tf.searchsorted(self._known, flat), tf.size(self._known) - 1)
        known = tf.equal(tf.gather(self._known, slot), flat)
        shifts = tf.constant([4 * i for i in reversed(range(ESCAPE_WIDTH))], tf.int32)
        digits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(flat[:, None], shifts), 15)
        hex_table = tf.constant(list(HEX_DIGITS))
        escaped = ESCAPE_MARKER + tf.strings.reduce_join(tf.gather(hex_table, digits), axis=1)
        plain = tf.strings.unicode_encode(flat[:, None], "UTF-8")
        pieces = chars.with_flat_values(tf.where(known, plain, escaped))
        return tf.strings.reduce_join(pieces, axis=1)

    def _unescape(self, texts: tf.Tensor) -> tf.Tensor:
        # a hex digit is never a marker: escapes cannot overlap, one vectorised pass finds all
        chars = tf.strings.unicode_decode(texts, "UTF-8", errors="replace").to_tensor(-1)
        length = tf.shape(chars)[1]
        padded = tf.pad(chars, [[0, 0], [0, ESCAPE_WIDTH]], constant_values=-1)
        is_marker = tf.equal(chars, ord(ESCAPE_MARKER))
        value = tf.zeros_like(chars)
        for k in range(1, ESCAPE_WIDTH + 1):
            c = padded[:, k : k + length]
            digit = tf.where(
                (c >= ord("0")) & (c <= ord("9")),
                c - ord("0"),
                tf.where((c >= ord("a")) & (c <= ord("f")), c - ord("a") + 10, -1),
            )
            is_marker &= digit >= 0
            value = value * 16 + tf.maximum(digit, 0)
        surrogate = (value >= 0xD800) & (value <= 0xDFFF)
        start = is_marker & (value <= 0x10FFFF) & ~surrogate
        covered = tf.zeros_like(start)
        for k in range(1, ESCAPE_WIDTH + 1):  # the digits after each escape's marker
            covered |= tf.pad(start, [[0, 0], [k, 0]])[:, :length]
        kept = tf.ragged.boolean_mask(tf.where(start, value, chars), (chars >= 0) & ~covered)
        return tf.strings.unicode_encode(kept, "UTF-8")

    def id_to_string(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self._pieces, ids)


def _known_characters(processor: spm.SentencePieceProcessor) -> set[str]:
    """Characters the model has a one-character piece for, the plain space included.

    Whitespace other than " " is left out on purpose: tf-text's op treats it as a word
    break where the `sentencepiece` library keeps it (so it is escaped instead).
    """
    known = {" "}
    for i in range(processor.get_piece_size()):
        piece = processor.id_to_piece(i)
        special = processor.is_unknown(i) or processor.is_control(i) or processor.is_unused(i)
        if len(piece) == 1 and not special and piece != _SPACE_PIECE and not piece.isspace():
            known.add(piece)
    return known


def make_tokenizer(proto: bytes, name: str) -> SubwordTokenizer:
    """The in-graph tokenizer for a serialized SentencePiece (unigram) model."""
    return SubwordTokenizer(proto, name)
