"""Subword tokenizers that run as TF ops, in tf.data and in the exported graph alike.

We train SentencePiece models with the `sentencepiece` trainer and run them with
tf-text's `FastSentencepieceTokenizer` op, which stock TF Serving links (see
`SubwordTokenizer` for why not the other SentencePiece op, which keras-hub's
`SentencePieceTokenizer` wraps; keras-hub's layer also turns ragged outputs into
Python lists in eager mode, which our eager tests and CLI cannot use).
SentencePiece is lossless (whitespace is a piece), so detokenized output is exactly
the text the model produced: "quarante-deux" stays "quarante-deux".

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


def train_sentencepiece(
    texts: Iterable[str],
    vocab_size: int,
    max_sentences: int = 2_000_000,
) -> bytes:
    """Train a SentencePiece model on `texts` and return its serialized proto.

    keras-hub's `compute_sentence_piece_proto` uses the same special ids but takes
    no `hard_vocab_limit`; small corpora (a few hundred distinct words) need it off,
    so that `vocab_size` is an upper bound instead of an error.
    """
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("cannot train a tokenizer on no text")
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
        self._pieces = tf.constant([processor.id_to_piece(i) for i in range(self.vocab_size)])
        self._tokenizer = tf_text.FastSentencepieceTokenizer(proto)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        return tf.cast(self._tokenizer.tokenize(texts), tf.int32)

    def detokenize(self, ids: tf.RaggedTensor) -> tf.Tensor:
        return self._tokenizer.detokenize(ids)

    def id_to_string(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self._pieces, ids)


def make_tokenizer(proto: bytes, name: str) -> SubwordTokenizer:
    """The in-graph tokenizer for a serialized SentencePiece (unigram) model."""
    return SubwordTokenizer(proto, name)
