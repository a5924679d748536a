"""CTranslate2 export: greedy outputs token for token equal to ours, log-probs within 1e-3.

The models have random weights, every one of them (biases and layer norms too) drawn
from a seeded normal distribution: any mistake in the weight mapping (a transposed
kernel, a wrong head split, a missing bias, the position table's layout, the
embedding scale) changes the tokens and the log-probabilities.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.bundle import save_bundle
from s2s_zoo.cli import main
from s2s_zoo.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from s2s_zoo.export.ctranslate2 import CTranslate2Inference, export_ctranslate2
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_catalog
from tests.conftest import TINY_BY_ENCODER

LONG = " ".join(["sept cent douze mille"] * 20)  # cut to max_source_length (32) pieces
ODD = ["héllo wörld 数字 🙂", "  trois  cent  ", LONG]


def random_transformer(
    pre, seed: int = 0, embedding_scale: float = 0.1, **overrides
) -> Seq2SeqInference:
    """A tiny catalog Transformer with every weight drawn from N(0, 0.5) (layer norm
    gains 1 + N(0, 0.15); embeddings scaled by `embedding_scale`: small, the residual
    stream is not just the previous token, whose tied logits would repeat it forever)."""
    keras.utils.set_random_seed(seed)
    config = {**TINY_BY_ENCODER["transformer"], **overrides}
    model = build_from_catalog(
        "transformer_tiny", pre.source_vocab_size, pre.target_vocab_size, **config
    )
    rng = np.random.default_rng(seed)
    for weight in model.training_model.weights:
        value = rng.normal(0.0, 0.5, weight.shape).astype("float32")
        if "gamma" in weight.path:
            value = 1.0 + 0.3 * value
        elif "embedding" in weight.path:
            value *= embedding_scale
        weight.assign(value)
    return Seq2SeqInference(
        pre, model, DecodingConfig(beam_size=3, num_hypotheses=2, max_length_cap=20)
    )


def our_greedy_tokens(inference: Seq2SeqInference, texts: list[str]) -> tuple[list, list]:
    """Our `greedy` signature's pieces and strings; run eagerly (the same Python as the
    traced signature, without a trace per model: the file's time budget)."""
    out = inference._greedy(tf.constant(texts))
    lengths = out["lengths"].numpy()
    pieces = [
        [p.decode("utf-8") for p in row[:n]]
        for row, n in zip(out["output_tokens"].numpy(), lengths, strict=True)
    ]
    return pieces, [s.decode("utf-8") for s in out["outputs"].numpy()]


def our_log_probs(inference: Seq2SeqInference, texts: list[str], targets: list[list[int]]):
    """Teacher-forced log-probabilities of each target id and then EOS (full softmax)."""
    pre = inference.preprocessor
    source = pre.source_ids(tf.constant(texts))
    width = max(len(t) for t in targets) + 1
    target_in = np.full((len(targets), width), PAD_ID, np.int32)
    target_out = np.full((len(targets), width), PAD_ID, np.int32)
    for i, ids in enumerate(targets):
        target_in[i, : len(ids) + 1] = [BOS_ID, *ids]
        target_out[i, : len(ids) + 1] = [*ids, EOS_ID]
    logits = inference.model.training_model([source, tf.constant(target_in)], training=False)
    log_probs = tf.nn.log_softmax(logits).numpy()
    return [
        [float(log_probs[i, t, target_out[i, t]]) for t in range(len(ids) + 1)]
        for i, ids in enumerate(targets)
    ]


CASES = {
    # the catalog's setting (transformer_tiny / transformer_base)
    "sinusoidal-tied": ({"positions": "sinusoidal", "share_embeddings": "decoder_output"}, False),
    "learned-untied": ({"positions": "learned", "share_embeddings": "none"}, False),
    "sinusoidal-all-shared": ({"positions": "sinusoidal", "share_embeddings": "all"}, True),
    # (random post-LN stacks are nearly constant with small embeddings)
    "learned-post-ln": (
        {
            "positions": "learned",
            "share_embeddings": "decoder_output",
            "normalize_first": False,
            "embedding_scale": 1.0,
        },
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_greedy_and_log_probs_match(case, tiny_preprocessor, tiny_joint_preprocessor, tmp_path):
    overrides, joint = CASES[case]
    pairs, pre = tiny_joint_preprocessor if joint else tiny_preprocessor
    inference = random_transformer(pre, **overrides)
    ct2 = CTranslate2Inference(export_ctranslate2(inference, tmp_path / "ct2"))
    texts = [s for s, _ in pairs[3:9]] + ODD

    want_pieces, want_texts = our_greedy_tokens(inference, texts)
    got = ct2.greedy(texts)
    got_pieces = [[ct2.target_vocab[i] for i in ids[0]] for ids in got.ids]
    assert got_pieces == want_pieces
    assert [t[0] for t in got.texts] == want_texts
    assert got.truncated[-1] > 0  # LONG is cut (and decoded the same: the same cut)
    # non-trivial outputs: none empty, they depend on the source, and vary within
    assert all(want_pieces) and len(set(want_texts)) >= 3
    assert len(set().union(*want_pieces)) >= 4

    # the math, token by token: CTranslate2's scoring against our teacher forcing, on the
    # greedy outputs and on the reference translations
    targets = [ids[0] for ids in got.ids] + [
        [int(i) for i in pre.target_tokenizer.tokenize(tf.constant([t]))[0].numpy()[:20]]
        for _, t in pairs[3:9]
    ]
    sources = texts + [s for s, _ in pairs[3:9]]
    ours = our_log_probs(inference, sources, targets)
    theirs = ct2.score(sources, targets)
    for want, have in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-3)


def test_output_controls_match(tiny_preprocessor, tmp_path):
    """min_length and no_repeat_ngram_size as ours; EOS made likely (output bias) so that
    outputs end early, at step 1 too (CTranslate2's default minimum length is 1, ours 0)."""
    pairs, pre = tiny_preprocessor
    inference = random_transformer(pre, seed=3, positions="learned", share_embeddings="none")
    bias = inference.model.decoder.output_projection.bias
    bias.assign(bias.numpy() + 4.0 * (np.arange(bias.shape[0]) == EOS_ID))
    texts = [s for s, _ in pairs[:8]]
    for controls in ({}, {"min_length": 3, "no_repeat_ngram_size": 2}):
        decoding = dataclasses.replace(inference.decoding, **controls)
        controlled = Seq2SeqInference(pre, inference.model, decoding)
        ct2 = CTranslate2Inference(export_ctranslate2(controlled, tmp_path / str(len(controls))))
        want, _ = our_greedy_tokens(controlled, texts)
        got = [[ct2.target_vocab[i] for i in ids[0]] for ids in ct2.greedy(texts).ids]
        assert got == want
        assert min(map(len, want)) == (3 if controls else 0) and max(map(len, want)) > 3


def test_empty_input_decodes_to_empty(tiny_preprocessor, tmp_path):
    """CTranslate2 skips a source of special tokens only (ours: EOS alone) and returns
    nothing for it, where our searches decode it; documented in the README."""
    _, pre = tiny_preprocessor
    ct2 = CTranslate2Inference(export_ctranslate2(random_transformer(pre), tmp_path / "ct2"))
    out = ct2.greedy(["", "   ", "trois"])
    assert [t[0] for t in out.texts][:2] == ["", ""]
    assert out.texts[2][0]


def test_beam_and_int8(tiny_preprocessor, tmp_path):
    pairs, pre = tiny_preprocessor
    inference = random_transformer(pre, seed=1)
    texts = [s for s, _ in pairs[:5]]
    float_dir = export_ctranslate2(inference, tmp_path / "float")
    ct2 = CTranslate2Inference(float_dir)
    greedy = ct2.greedy(texts)
    assert ct2.beam(texts, beam_size=1, num_hypotheses=1).ids == greedy.ids
    beam = ct2.beam(texts, beam_size=3, num_hypotheses=2)
    assert all(len(row) == 2 and row[0] >= row[1] for row in beam.scores)
    assert all(len(ids) <= 4 for row in ct2.beam(texts, max_length=4).ids for ids in row)

    # int8 at save time, and at load time: decodes (agreement with float32 not asserted)
    quantized = CTranslate2Inference(export_ctranslate2(inference, tmp_path / "int8", "int8"))
    at_load = CTranslate2Inference(float_dir, compute_type="int8")
    for model in (quantized, at_load):
        out = model.greedy(texts)
        assert len(out.texts) == len(texts)
        assert all(isinstance(t[0], str) for t in out.texts)
    assert (tmp_path / "int8" / "model.bin").stat().st_size < (
        float_dir / "model.bin"
    ).stat().st_size


def test_other_families_are_refused_by_name(tiny_preprocessor, tmp_path):
    _, pre = tiny_preprocessor
    model = build_from_catalog(
        "gru_bahdanau", pre.source_vocab_size, pre.target_vocab_size, **TINY_BY_ENCODER["rnn"]
    )
    inference = Seq2SeqInference(pre, model, DecodingConfig())
    with pytest.raises(
        ValueError, match="Transformer family only.*encoder 'rnn' \\+ decoder 'rnn'"
    ):
        export_ctranslate2(inference, tmp_path / "ct2")
    assert not (tmp_path / "ct2").exists()


def test_cli_export_and_predict(tiny_preprocessor, tmp_path, capsys):
    pairs, pre = tiny_preprocessor
    inference = random_transformer(pre, seed=2)
    checkpoint = save_bundle(inference, tmp_path / "checkpoint")
    out = tmp_path / "ct2"
    assert main(["export", "--format", "ctranslate2", "--from", str(checkpoint), str(out)]) == 0
    assert "greedy outputs equal" in capsys.readouterr().out
    assert {"model.bin", "source.spm.model", "target.spm.model", "s2s_zoo.json"} <= {
        p.name for p in out.iterdir()
    }
    with pytest.raises(SystemExit, match="exists"):
        main(["export", "--format", "ctranslate2", "--from", str(checkpoint), str(out)])

    texts = [s for s, _ in pairs[:4]]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    args = ["predict", "--engine", "ctranslate2", "--model", str(out), "--mode", "greedy"]
    args += ["--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.txt")]
    assert main(args) == 0
    _, want = our_greedy_tokens(inference, texts)
    assert (tmp_path / "out.txt").read_text().splitlines() == want
