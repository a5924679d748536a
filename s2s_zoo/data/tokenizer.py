"""Subword tokenizers that run as TF ops, in tf.data and in the exported graph alike.

We train SentencePiece models with the `sentencepiece` trainer and run them with
tf-text's `SentencepieceTokenizer` op, which stock TF Serving links. (keras-hub's
`SentencePieceTokenizer` wraps the same op, but in eager mode it turns ragged
outputs into Python lists, which our eager tests and CLI cannot use.)
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
    model_type: str = "unigram",
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
        model_type=model_type,
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


def make_tokenizer(proto: bytes, name: str) -> tf_text.SentencepieceTokenizer:
    """A tf-text tokenizer (a trackable TF resource) over a serialized SentencePiece model.

    `name` must differ between tokenizers of one model: the SentencepieceOp kernel
    shares its model by node name, so two unnamed tokenizers in one SavedModel
    would both load whichever model is created first.
    """
    return tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32, name=name)
