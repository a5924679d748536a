"""Attention weights per decoded token: recorded by the searches, exported, drawn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import tensorflow as tf

from s2s_zoo.decoding import beam_search, greedy_search


def replay_attention(model, source_ids, tokens):
    """Attention of each step when the chosen tokens are fed back through `step`."""
    memory, state = model.encode(source_ids)
    rows, previous = [], tf.constant([2])
    for token in tokens:
        _, state = model.step(previous, state, memory)
        rows.append(state["attention"].numpy()[0])
        previous = tf.constant([token])
    return np.stack(rows)


def test_recorded_attention_is_the_attention_of_the_chosen_path(trained_inference):
    model, pre = trained_inference.model, trained_inference.preprocessor
    source = pre.source_ids(["six hundred and twelve thousand and four"])
    limits = tf.constant([12])
    for search, kwargs in ((greedy_search, {}), (beam_search, {"beam_size": 3})):
        memory, state = model.encode(source)
        result = search(model.step, state, memory, limits, 2, 3, record=("attention",), **kwargs)
        ids, length = result.ids.numpy()[0], int(result.lengths.numpy().reshape(-1)[0])
        recorded = result.records["attention"].numpy()[0]
        if search is beam_search:
            ids, recorded = ids[0], recorded[0]
        expected = replay_attention(model, source, ids[:length])
        np.testing.assert_allclose(recorded[:length], expected, atol=1e-5)
        np.testing.assert_allclose(recorded[:length].sum(-1), 1.0, atol=1e-5)


def test_alignment_signature_and_heatmap(exported, tmp_path):
    inference, path = exported
    out = inference.alignment(["three hundred and forty-two thousand"])
    length = int(out["lengths"].numpy()[0])
    sources = [p for p in out["source_tokens"].numpy()[0] if p]
    assert sources[-1] == b"</s>"
    assert out["attention"].shape[2] == len(sources)
    np.testing.assert_allclose(out["attention"].numpy()[0, :length].sum(-1), 1.0, atol=1e-5)

    png = tmp_path / "align.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "s2s_zoo.cli",
            "align",
            "--model",
            str(path),
            "--text",
            "three hundred and forty-two thousand",
            "--output",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000


def test_reverse_source_attention_columns_follow_the_source_pieces(tiny_preprocessor):
    """The memory of a reverse_source encoder holds token len-1-i at position i; the
    `alignment` signature must label column i with source piece i all the same."""
    import keras

    from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
    from s2s_zoo.models.registry import build_model

    _, pre = tiny_preprocessor
    keras.utils.set_random_seed(0)
    model = build_model(
        "rnn",
        {"vocab_size": pre.source_vocab_size, "embedding_dim": 8, "encoder_units": 8,
         "reverse_source": True},
        "rnn",
        {"vocab_size": pre.target_vocab_size, "embedding_dim": 8, "decoder_units": 16,
         "attention_units": 8, "attention": "luong_general"},
    )  # fmt: skip
    for weight, scale in (
        (model.encoder.token_embedding.embeddings, 10.0),
        (model.decoder.attention.key_projection.kernel, 300.0),
    ):
        weight.assign(weight * scale)  # peaked attention from an untrained model  # fmt: skip
    inference = Seq2SeqInference(pre, model, DecodingConfig(beam_size=2, num_hypotheses=1,
                                                            max_length_cap=6))  # fmt: skip
    texts = ["three hundred and forty-two", "seven"]
    out = inference.alignment(texts)
    source_ids = pre.source_ids(texts)
    for row in range(len(texts)):
        pieces = [p for p in out["source_tokens"].numpy()[row] if p]
        n, length = len(pieces), int(out["lengths"].numpy()[row])
        assert pieces[-1] == b"</s>"
        ids = out["output_tokens"].numpy()[row][:length]
        tokens = [pre.target_tokenizer._pieces.numpy().tolist().index(p) for p in ids] + [3]
        steps = min(len(tokens), out["attention"].shape[1])  # the EOS step unless cut off
        by_memory = replay_attention(model, source_ids[row : row + 1, :n], tokens[:steps])
        got = out["attention"].numpy()[row, :steps, :n]
        np.testing.assert_allclose(got, by_memory[:, ::-1], atol=1e-5)  # column i = len-1-i
        assert not out["attention"].numpy()[row, :steps, n:].any()  # padding columns
        assert got.max() > 0.5 and not np.allclose(got, by_memory, atol=0.05)  # not uniform


def test_alignment_gives_the_beam_one_best_on_a_trained_model(trained_inference, number_splits):
    """`alignment` searches with one hypothesis, `beam` with num_hypotheses > 1: the 1-best
    must not depend on that (issue 10: an early stop rule made them differ)."""
    inference = trained_inference
    assert inference.decoding.num_hypotheses > 1 and inference.decoding.length_penalty > 0
    texts = [s for s, _ in number_splits["test"][:40]]
    beam = inference.signatures["beam"](tf.constant(texts))
    aligned = inference.signatures["alignment"](tf.constant(texts))
    assert aligned["outputs"].numpy().tolist() == beam["outputs"].numpy().tolist()
    np.testing.assert_allclose(aligned["scores"].numpy(), beam["scores"].numpy(), atol=1e-5)
