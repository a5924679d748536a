"""No character is lost: tokenize -> detokenize is the identity on any Unicode string,
with characters the model never saw escaped into pieces it has (no byte fallback in
tf-text's fast SentencePiece op)."""

from __future__ import annotations

import io

import pytest
import sentencepiece as spm
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import (
    ESCAPE_MARKER,
    UNK_ID,
    SubwordTokenizer,
    train_sentencepiece,
)
from s2s_zoo.tasks.translation.numbers import number_pair

STRINGS = tf.TensorSpec([None], tf.string)
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
# trained words, odd spacing, unseen characters, the marker, hex-looking tails
PIECES = st.sampled_from(
    ["forty", "-", "two", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2581", "€",
     "5", "é", "e\u0301", "ﬁ", "🙂", "\x00", "\x7f", ESCAPE_MARKER, "0020ac", "ff", "日本"]
)  # fmt: skip
TEXTS = st.one_of(st.text(max_size=30), st.lists(PIECES, max_size=12).map("".join))


@pytest.fixture(scope="module")
def tokenizer() -> SubwordTokenizer:
    pairs = [number_pair(n) for n in range(0, 1000, 7)]
    return SubwordTokenizer(train_sentencepiece([s for s, _ in pairs], 80), "tok")


@pytest.fixture(scope="module")
def escaping(tokenizer):
    escape = tf.function(tokenizer.escape, input_signature=[STRINGS])
    unescape = tf.function(tokenizer.unescape, input_signature=[STRINGS])
    return escape, unescape


@pytest.fixture(scope="module")
def round_trip(tokenizer):
    @tf.function(input_signature=[STRINGS])
    def run(texts):
        ids = tokenizer.tokenize(texts)
        return ids, tokenizer.detokenize(ids)

    return run


def decoded(tensor: tf.Tensor) -> list[str]:
    return [t.decode("utf-8") for t in tensor.numpy().reshape(-1)]


@SETTINGS
@given(st.lists(TEXTS, min_size=1, max_size=4))
def test_detokenize_inverts_tokenize_on_any_unicode(round_trip, texts):
    ids, back = round_trip(tf.constant(texts))
    assert decoded(back) == texts
    assert UNK_ID not in ids.flat_values.numpy().tolist()


@SETTINGS
@given(st.lists(TEXTS, max_size=4))
def test_unescape_inverts_escape(tokenizer, escaping, texts):
    escape, unescape = escaping
    escaped = escape(tf.constant(texts, tf.string))
    assert decoded(unescape(escaped)) == texts
    known = {chr(c) for c in tokenizer._known.numpy()} | {ESCAPE_MARKER}
    for text in decoded(escaped):  # only characters the model has a piece for remain
        assert set(text) <= known


@SETTINGS
@given(st.text(max_size=40))
def test_unescape_never_fails_on_generated_text(escaping, text):
    """A model can emit any piece sequence: malformed escapes stay as they are."""
    out = decoded(escaping[1](tf.constant([text])))[0]
    if ESCAPE_MARKER not in text:
        assert out == text


def test_escape_format_and_malformed_escapes(tokenizer):
    # digits are always pieces (they spell escapes); "€" and "日" were never seen
    assert decoded(tokenizer.escape(["42 €", ESCAPE_MARKER, "日"])) == [
        "42 \u00a40020ac",
        "\u00a40000a4",
        "\u00a40065e5",
    ]
    # too few digits, past U+10FFFF, a surrogate, a trailing marker: left as they are
    malformed = "\u00a4zz \u00a400004g \u00a4110000 \u00a400d800 \u00a4"
    assert decoded(tokenizer.unescape(["\u00a40020ac" + malformed])) == ["€" + malformed]
    # shapes: scalars and empty batches
    assert tokenizer.escape("€").shape == () and tokenizer.unescape(
        tf.constant([], tf.string)
    ).shape == (0,)
    assert decoded(tokenizer.detokenize(tokenizer.tokenize(["", " "]))) == ["", " "]


def test_ids_are_the_sentencepiece_library_ids_of_the_escaped_text(tokenizer):
    library = spm.SentencePieceProcessor(model_proto=tokenizer.proto)
    texts = ["forty-two", "  forty  two ", "42 € ¤", "tab\there", "日本 ﬁ"]
    escaped = decoded(tokenizer.escape(texts))
    ids = tokenizer.tokenize(texts).to_list()
    assert ids == [library.encode(t) for t in escaped]


def test_models_without_the_escape_alphabet_tokenize_as_before():
    """Tokenizers trained before the escape existed (NFKC, no marker) are unchanged."""
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["forty two", "seventy one"] * 20), model_writer=writer,
        vocab_size=20, pad_id=0, unk_id=1, bos_id=2, eos_id=3, hard_vocab_limit=False,
        minloglevel=2,
    )  # fmt: skip
    old = SubwordTokenizer(writer.getvalue(), "old")
    assert not old.escapes
    assert UNK_ID in old.tokenize(["forty €"]).flat_values.numpy().tolist()


def test_the_preprocessor_round_trips_targets_after_stripping():
    pairs = [number_pair(n) for n in range(0, 1000, 7)]
    pre = TextPreprocessor(
        train_sentencepiece([s for s, _ in pairs], 80),
        train_sentencepiece([t for _, t in pairs], 80),
        max_source_length=256,
        max_target_length=256,
    )
    texts = ["  quarante-deux €  ", "1 234,5 °C", "trois\tcent", "\u00a4 ¤0020ac"]
    _, target_out = pre.target_in_out(tf.constant(texts))
    lengths = tf.reduce_sum(tf.cast(target_out > 0, tf.int32), axis=1) - 1  # no EOS
    assert decoded(pre.detokenize(target_out, lengths)) == [t.strip() for t in texts]


def test_escaping_uses_only_core_and_tf_text_ops(tokenizer):
    types = set()
    for fn in (tokenizer.tokenize, tokenizer.detokenize):
        spec = STRINGS if fn == tokenizer.tokenize else tf.RaggedTensorSpec([None, None], tf.int32)
        graph = tf.function(fn).get_concrete_function(spec).graph.as_graph_def()
        types |= {n.op for n in graph.node}
        types |= {n.op for f in graph.library.function for n in f.node_def}
    assert {"UnicodeDecode", "UnicodeEncode", "LowerBound"} <= types
    assert not types & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


def test_tiny_corpora_get_room_for_every_character_and_the_escape_alphabet():
    tokenizer = SubwordTokenizer(train_sentencepiece(["a b c"], 10), "tiny")
    # 4 specials + "▁" (the space) + the 17 escape characters, which include a, b and c
    assert tokenizer.escapes and tokenizer.vocab_size == 4 + 1 + 17
    assert tokenizer.detokenize(tokenizer.tokenize(["z 9 €"])).numpy().tolist() == [
        b"z 9 \xe2\x82\xac"
    ]
