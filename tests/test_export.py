"""Export, versioning and the TF Serving (Session loader) path, in fresh processes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from s2s_zoo.bundle import load_bundle
from s2s_zoo.export.conformance import check_serving, run_in_session
from s2s_zoo.export.saved_model import existing_versions, export_saved_model

LONG = " ".join(["seven hundred and twelve thousand"] * 400)  # 2,000 words
ODD_INPUTS = ["", "   ", "héllo wörld ünïcödé 数字 🙂", LONG, "three hundred and forty-two"]


def test_session_round_trip_matches_in_process(exported, number_splits):
    inference, path = exported
    texts = [s for s, _ in number_splits["test"][:6]] + ["", "  "]
    report = check_serving(path, inference, texts=texts)
    assert report.ok, report.mismatches
    assert {"serving_default", "beam", "greedy", "nbest"} <= set(report.signatures)


def test_check_detects_a_different_model(exported, number_splits):
    _, path = exported
    untrained = load_bundle(path, load_weights=False)  # same vocab, random weights
    report = check_serving(path, untrained, texts=[s for s, _ in number_splits["test"][:4]])
    assert not report.ok
    assert any(m.startswith("greedy.scores") for m in report.mismatches)


def test_beam_size_one_equals_greedy_through_signatures(exported, number_splits):
    _, path = exported
    texts = [s for s, _ in number_splits["test"][:12]] + ODD_INPUTS
    out = run_in_session(
        path,
        [
            {"signature": "greedy", "inputs": {"inputs": texts}},
            {
                "signature": "nbest",
                "inputs": {"inputs": texts, "beam_size": 1, "num_hypotheses": 1, "max_length": 0},
            },
        ],
    )["results"]
    greedy, beam1 = out
    assert beam1["outputs"] == greedy["outputs"]
    assert beam1["lengths"] == greedy["lengths"]
    assert beam1["output_tokens"] == greedy["output_tokens"]


def test_every_signature_survives_odd_inputs(exported):
    inference, path = exported
    cap = inference.decoding.max_length_cap
    calls = [
        {"signature": name, "inputs": {"inputs": ODD_INPUTS}}
        for name in ("serving_default", "beam", "greedy")
    ] + [
        {
            "signature": "nbest",
            "inputs": {"inputs": ODD_INPUTS, "beam_size": 5, "num_hypotheses": 3, "max_length": 7},
        }
    ]
    results = run_in_session(path, calls)["results"]
    for call, result in zip(calls, results, strict=True):
        assert len(result["outputs"]) == len(ODD_INPUTS), call["signature"]
        assert len(result["scores"]) == len(ODD_INPUTS)
        assert all(np.isfinite(result["scores"]))
        limit = 7 if call["signature"] == "nbest" else cap
        assert max(result["lengths"]) <= limit
        if "nbest_outputs" in result:
            assert all(
                len(row) == (3 if call["signature"] == "nbest" else 2)
                for row in result["nbest_outputs"]
            )
            assert all(row == sorted(row, reverse=True) for row in result["nbest_scores"])


def test_truncated_sources_are_reported_per_item_on_the_session_path(exported):
    """A source over max_source_length is cut, and every signature says by how much:
    `source_truncated_tokens` is 0 for inputs read whole (invalid UTF-8 and NUL bytes
    included) and the exact count of pieces not read for over-long ones."""
    inference, path = exported
    keep = inference.preprocessor.max_source_length - 1  # one position is EOS
    sp = spm.SentencePieceProcessor(model_proto=inference.preprocessor.source_proto)
    word = "x" * 100_000  # one 100k-character word
    twenty_k = " ".join(["seven"] * 20_000)
    texts = ["three hundred", LONG, b"\xff\xfe bad utf-8", b"nul\x00byte", word, twenty_k, ""]
    want = [max(len(sp.encode(t.strip())) - keep, 0) if isinstance(t, str) else 0 for t in texts]
    assert want[0] == want[2] == want[3] == want[6] == 0 and min(want[1], want[4], want[5]) > 0
    calls = [{"signature": n, "inputs": {"inputs": texts}} for n in ("beam", "greedy", "alignment")]
    calls.append(
        {
            "signature": "nbest",
            "inputs": {"inputs": texts, "beam_size": 2, "num_hypotheses": 2, "max_length": 5},
        }
    )
    for call, result in zip(calls, run_in_session(path, calls)["results"], strict=True):
        assert result["source_truncated_tokens"] == want, call["signature"]
        assert len(result["outputs"]) == len(texts)
    raw = tf.constant([t.encode() if isinstance(t, str) else t for t in texts])
    assert inference.beam(raw)["source_truncated_tokens"].numpy().tolist() == want


def test_a_batch_of_256_mixed_requests_gives_256_rows(exported, number_splits):
    _, path = exported
    pool = [s for s, _ in number_splits["test"]] + ODD_INPUTS
    texts = [pool[i % len(pool)] for i in range(256)]
    (result,) = run_in_session(path, [{"signature": "beam", "inputs": {"inputs": texts}}])[
        "results"
    ]
    assert len(result["outputs"]) == len(result["source_truncated_tokens"]) == 256
    first = {t: o for t, o in zip(texts, result["outputs"], strict=True)}
    assert all(first[t] == o for t, o in zip(texts, result["outputs"], strict=True))


def test_output_pieces_come_from_the_target_vocabulary(exported, number_splits):
    """Guards against the two SentencePiece models being mixed up inside the SavedModel."""
    inference, path = exported
    texts = [s for s, _ in number_splits["test"][:5]]
    result = run_in_session(path, [{"signature": "greedy", "inputs": {"inputs": texts}}])
    target = spm.SentencePieceProcessor(model_proto=inference.preprocessor.target_proto)
    vocab = {target.id_to_piece(i) for i in range(target.get_piece_size())}
    pieces = [p for row in result["results"][0]["output_tokens"] for p in row if p]
    assert pieces and set(pieces) <= vocab
    for row, text in zip(
        result["results"][0]["output_tokens"], result["results"][0]["outputs"], strict=True
    ):
        assert target.decode_pieces([p for p in row if p]) == text


def test_nbest_rejects_bad_request_arguments(exported):
    _, path = exported
    loaded = tf.saved_model.load(str(path))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_hypotheses must not exceed"):
        loaded.signatures["nbest"](
            inputs=tf.constant(["one"]),
            beam_size=tf.constant(2),
            num_hypotheses=tf.constant(3),
            max_length=tf.constant(0),
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="beam_size must be at least 1"):
        loaded.signatures["nbest"](
            inputs=tf.constant(["one"]),
            beam_size=tf.constant(0),
            num_hypotheses=tf.constant(1),
            max_length=tf.constant(0),
        )


def test_versions_are_never_overwritten(exported, tmp_path):
    inference, _ = exported
    base = tmp_path / "model"
    first = export_saved_model(inference, base)
    stamp = os.stat(first / "saved_model.pb").st_mtime_ns
    second = export_saved_model(inference, base)
    assert (first.name, second.name) == ("1", "2")
    assert existing_versions(base) == [1, 2]
    assert os.stat(first / "saved_model.pb").st_mtime_ns == stamp
    with pytest.raises(FileExistsError):
        export_saved_model(inference, base, version=1)
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]  # no temporary dirs left


def test_bundle_in_export_rebuilds_identical_model(exported, number_splits):
    inference, path = exported
    rebuilt = load_bundle(path)
    texts = tf.constant([s for s, _ in number_splits["test"][:4]])
    a, b = inference.beam(texts), rebuilt.beam(texts)
    assert a["outputs"].numpy().tolist() == b["outputs"].numpy().tolist()
    np.testing.assert_allclose(a["scores"].numpy(), b["scores"].numpy(), atol=1e-6)
