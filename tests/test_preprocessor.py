"""TextPreprocessor: SentencePiece ids for sources and targets, and the way back to text."""

from __future__ import annotations

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, train_sentencepiece
from s2s_zoo.tasks.translation.numbers import number_pair

NUMBERS = [*range(0, 41), 42, 57, 71, 80, 91, 99, 100, 342, 1000]
PAIRS = [number_pair(n) for n in NUMBERS]
ENGLISH = [en for en, _ in PAIRS]
FRENCH = [fr for _, fr in PAIRS]


@pytest.fixture(scope="module")
def protos() -> tuple[bytes, bytes]:
    return train_sentencepiece(ENGLISH, 60), train_sentencepiece(FRENCH, 60)


@pytest.fixture(scope="module")
def pre(protos) -> TextPreprocessor:
    return TextPreprocessor(*protos, max_source_length=64, max_target_length=64)


def rows(tensor: tf.Tensor) -> list[list[int]]:
    return tensor.numpy().tolist()


def strings(tensor: tf.Tensor) -> list[str]:
    return [s.decode("utf-8") for s in tensor.numpy().reshape(-1)]


def content_length(row: list[int]) -> int:
    """Length up to the first padding id."""
    return row.index(PAD_ID) if PAD_ID in row else len(row)


def test_number_words_contain_hyphens_and_accents():
    # The round-trip tests below rely on these characters being in the data.
    assert "quarante-deux" in FRENCH
    assert "zéro" in FRENCH
    assert "trois cent quarante-deux" in FRENCH


def test_ids_match_the_sentencepiece_library(pre, protos):
    """The TF op and the reference SentencePiece processor agree, per side."""
    source_sp = spm.SentencePieceProcessor(model_proto=protos[0])
    target_sp = spm.SentencePieceProcessor(model_proto=protos[1])
    assert pre.source_vocab_size == source_sp.get_piece_size()
    assert pre.target_vocab_size == target_sp.get_piece_size()
    for ids, text in zip(rows(pre.source_ids(tf.constant(ENGLISH))), ENGLISH, strict=True):
        assert ids[: content_length(ids)] == [*source_sp.encode(text), EOS_ID]
    target = pre.target_ragged(tf.constant(FRENCH)).to_list()
    assert target == [target_sp.encode(text) for text in FRENCH]
    # The two sides are different models: the same word gets different ids.
    assert source_sp.encode("seventy") != target_sp.encode("seventy")


def test_source_ids_are_eos_terminated_and_zero_padded(pre):
    texts = ["one", "three hundred and forty-two", "twenty-one", "zero"]
    ids = pre.source_ids(tf.constant(texts))
    assert ids.dtype == tf.int32
    lengths = []
    for row in rows(ids):
        n = content_length(row)
        lengths.append(n)
        assert n >= 2
        assert row[n - 1] == EOS_ID
        assert EOS_ID not in row[: n - 1]
        assert all(i == PAD_ID for i in row[n:])
        assert all(0 < i < pre.source_vocab_size for i in row[:n])
    assert ids.shape[1] == max(lengths)
    assert len(set(lengths)) > 1  # some rows are padded
    ragged = pre.source_ragged(tf.constant(texts)).to_list()
    assert ragged == [row[: content_length(row)] for row in rows(ids)]


def test_target_in_and_out_are_shifted_copies(pre):
    texts = ["un", "quarante-deux", "trois cent quarante-deux", "soixante et onze"]
    target_in, target_out = pre.target_in_out(tf.constant(texts))
    assert target_in.dtype == target_out.dtype == tf.int32
    assert target_in.shape == target_out.shape
    plain = pre.target_ragged(tf.constant(texts)).to_list()
    for tin, tout, ids in zip(rows(target_in), rows(target_out), plain, strict=True):
        n = len(ids) + 1
        assert tin[:n] == [BOS_ID, *ids]
        assert tout[:n] == [*ids, EOS_ID]
        assert tin[1:n] == tout[: n - 1]
        assert all(i == PAD_ID for i in tin[n:] + tout[n:])
    ragged_in, ragged_out = pre.target_in_out_ragged(tf.constant(texts))
    assert ragged_in.to_tensor().numpy().tolist() == rows(target_in)
    assert ragged_out.to_tensor().numpy().tolist() == rows(target_out)


def test_detokenize_round_trips_the_targets(pre):
    held_out = [number_pair(n)[1] for n in (43, 56, 77, 322)]  # unseen numbers, seen pieces
    texts = FRENCH + held_out
    _, target_out = pre.target_in_out(tf.constant(texts))
    # Content lengths exclude EOS; the ids past them (EOS, padding) must be ignored.
    content = tf.reduce_sum(tf.cast(target_out != PAD_ID, tf.int32), axis=1) - 1
    assert strings(pre.detokenize(target_out, content)) == texts

    # n-best shaped input: [batch, hypotheses, time] ids with [batch, hypotheses] lengths.
    half = len(texts) // 2
    nbest = tf.reshape(target_out[: 2 * half], [half, 2, -1])
    out = pre.detokenize(nbest, tf.reshape(content[: 2 * half], [half, 2]))
    assert out.shape == (half, 2)
    assert strings(out) == texts[: 2 * half]


def test_detokenize_respects_shorter_lengths(pre):
    _, target_out = pre.target_in_out(tf.constant(["quarante-deux", "soixante et onze"]))
    out = strings(pre.detokenize(target_out, tf.constant([0, 1])))
    assert out[0] == ""
    first_piece = pre.target_tokenizer.id_to_string(target_out[1, 0]).numpy().decode()
    assert out[1] == first_piece.replace("\u2581", " ").strip()
    assert "soixante et onze".startswith(out[1]) and out[1] != "soixante et onze"


def test_surrounding_whitespace_is_stripped(pre):
    ids = rows(pre.source_ids(tf.constant(["forty-two", "  forty-two \t", "\nforty-two"])))
    assert ids[0] == ids[1] == ids[2]
    target_in, _ = pre.target_in_out(tf.constant(["quarante-deux", " quarante-deux  "]))
    assert rows(target_in)[0] == rows(target_in)[1]


def test_truncation_to_max_lengths(protos):
    pre = TextPreprocessor(*protos, max_source_length=4, max_target_length=5)
    long_source = "three hundred and forty-two thousand and seventy-one"
    long_target = "trois cent quarante-deux mille soixante et onze"
    full_source = pre.source_tokenizer.tokenize(tf.constant(long_source)).numpy().tolist()
    full_target = pre.target_tokenizer.tokenize(tf.constant(long_target)).numpy().tolist()
    assert len(full_source) > 4 and len(full_target) > 5

    ids = rows(pre.source_ids(tf.constant([long_source, "one"])))
    assert ids[0] == [*full_source[:3], EOS_ID]
    assert ids[1][-1] == PAD_ID and EOS_ID in ids[1]
    # the cut is reported per item: every piece past the 3 kept, none for a short source
    *_, truncated = pre.encode_source_reporting(tf.constant([long_source, "one", ""]))
    assert truncated.numpy().tolist() == [len(full_source) - 3, 0, 0]

    target_in, target_out = pre.target_in_out(tf.constant([long_target]))
    assert rows(target_in) == [[BOS_ID, *full_target[:4]]]
    assert rows(target_out) == [[*full_target[:4], EOS_ID]]

    with pytest.raises(ValueError):
        TextPreprocessor(*protos, max_source_length=1)
    with pytest.raises(ValueError):
        TextPreprocessor(*protos, max_target_length=1)


def test_empty_and_whitespace_only_strings(pre):
    texts = tf.constant(["", " ", "   \t  ", "\n"])
    assert rows(pre.source_ids(texts)) == [[EOS_ID]] * 4
    target_in, target_out = pre.target_in_out(texts)
    assert rows(target_in) == [[BOS_ID]] * 4
    assert rows(target_out) == [[EOS_ID]] * 4
    assert strings(pre.detokenize(target_out, tf.zeros([4], tf.int32))) == [""] * 4
    # Mixed with real text, the empty row is just EOS then padding.
    ids = rows(pre.source_ids(tf.constant(["", "forty-two"])))
    assert ids[0][0] == EOS_ID and set(ids[0][1:]) == {PAD_ID}


def test_unseen_characters_are_escaped_not_lost(pre):
    """Characters never seen in training (digits, € and other scripts here) get no UNK:
    they are escaped into pieces the model has, and come back on detokenization."""
    texts = ["日本語", "ñandú 🙂 forty-two", "Ωμέγα quarante-deux", "42 €"]
    ids = rows(pre.source_ids(tf.constant(texts)))
    for row in ids:
        n = content_length(row)
        assert row[n - 1] == EOS_ID
        assert all(UNK_ID < i < pre.source_vocab_size for i in row[:n])
    target_in, target_out = pre.target_in_out(tf.constant(texts))
    assert UNK_ID not in sum(rows(target_out), [])
    content = tf.reduce_sum(tf.cast(target_out != PAD_ID, tf.int32), axis=1) - 1
    assert strings(pre.detokenize(target_out, content)) == texts
    assert target_in.shape == target_out.shape


def test_works_inside_tf_function(pre):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def encode(texts):
        target_in, target_out = pre.target_in_out(texts)
        return pre.source_ids(texts), target_in, target_out

    texts = tf.constant(["forty-two", "quarante-deux", ""])
    graph = encode(texts)
    eager = (pre.source_ids(texts), *pre.target_in_out(texts))
    for g, e in zip(graph, eager, strict=True):
        np.testing.assert_array_equal(g.numpy(), e.numpy())
