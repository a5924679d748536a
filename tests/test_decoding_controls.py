"""min_length, no_repeat_ngram_size and coverage_penalty in DecodingConfig: the exported
signatures apply them (in process and on the Session path), the defaults change nothing,
and the recipe flags reach them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from s2s_zoo.bundle import load_bundle
from s2s_zoo.export.conformance import check_serving, run_in_session
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_catalog
from s2s_zoo.tasks.base import get_task
from s2s_zoo.training.runner import Recipe, argument_parser, decoding_from


def with_decoding(inference: Seq2SeqInference, **changes) -> Seq2SeqInference:
    decoding = dataclasses.replace(inference.decoding, **changes)
    return Seq2SeqInference(inference.preprocessor, inference.model, decoding)


@pytest.fixture(scope="module")
def texts(number_splits):
    return [s for s, _ in number_splits["test"][:12]]


def repeats(tokens) -> bool:
    pieces = [p for p in tokens if p]
    return len(set(pieces)) < len(pieces)


def test_defaults_are_off_and_change_nothing(trained_inference, texts):
    d = DecodingConfig()
    assert (d.min_length, d.no_repeat_ngram_size, d.coverage_penalty) == (0, 0, 0.0)
    explicit = with_decoding(trained_inference, min_length=0, no_repeat_ngram_size=0,
                             coverage_penalty=0.0)  # fmt: skip
    for mode in ("greedy", "beam"):
        a, b = getattr(trained_inference, mode)(texts), getattr(explicit, mode)(texts)
        assert a["outputs"].numpy().tolist() == b["outputs"].numpy().tolist()


def test_min_length_forces_longer_outputs(trained_inference, texts):
    for mode in ("greedy", "beam"):
        plain = getattr(trained_inference, mode)(texts)["lengths"].numpy()
        floor = int(plain.max()) + 2  # longer than anything the model says by itself
        longer = getattr(with_decoding(trained_inference, min_length=floor), mode)(texts)
        assert (longer["lengths"].numpy() >= floor).all(), mode
        assert (plain < floor).all()


def test_no_repeat_ngram_size_one_repeats_no_token(trained_inference, texts):
    plain = trained_inference.greedy(texts)["output_tokens"].numpy()
    assert any(repeats(row) for row in plain)  # precondition: this model repeats pieces
    controlled = with_decoding(trained_inference, no_repeat_ngram_size=1)
    for mode in ("greedy", "beam"):
        rows = getattr(controlled, mode)(texts)["output_tokens"].numpy()
        assert not any(repeats(row) for row in rows), mode


def test_coverage_penalty_only_lowers_beam_scores(trained_inference, texts):
    plain = trained_inference.beam(texts)["scores"].numpy()
    penalised = with_decoding(trained_inference, coverage_penalty=1.0).beam(texts)
    scores = penalised["scores"].numpy()
    # the penalty is <= 0, and the best penalised score cannot beat the unpenalised best
    assert (scores <= plain + 1e-5).all()
    assert (scores < plain - 1e-3).any()
    greedy = with_decoding(trained_inference, coverage_penalty=1.0).greedy(texts)
    np.testing.assert_array_equal(  # greedy search has no coverage penalty
        greedy["scores"].numpy(), trained_inference.greedy(texts)["scores"].numpy()
    )


def test_exported_signatures_apply_the_controls(trained_inference, texts, tmp_path):
    plain = trained_inference.greedy(texts)["lengths"].numpy()
    floor = int(plain.max()) + 2
    controlled = with_decoding(trained_inference, min_length=floor, no_repeat_ngram_size=1,
                               coverage_penalty=0.5)  # fmt: skip
    path = export_saved_model(controlled, tmp_path / "controls")
    report = check_serving(path, controlled, texts=texts[:4] + [""])
    assert report.ok, report.mismatches
    calls = [{"signature": s, "inputs": {"inputs": texts}} for s in ("greedy", "beam")]
    for result in run_in_session(path, calls)["results"]:
        assert min(result["lengths"]) >= floor
        assert not any(repeats(row) for row in result["output_tokens"])
    assert load_bundle(path).decoding == controlled.decoding


def test_bad_values_and_models_without_attention_are_refused(tiny_preprocessor):
    for field in ("min_length", "no_repeat_ngram_size", "coverage_penalty"):
        with pytest.raises(ValueError, match=field):
            DecodingConfig(**{field: -1})
    _, pre = tiny_preprocessor
    model = build_from_catalog("transformer_tiny", pre.source_vocab_size, pre.target_vocab_size,
                               hidden_dim=16, intermediate_dim=32, num_heads=2,
                               encoder_layers=1, decoder_layers=1)  # fmt: skip
    with pytest.raises(ValueError, match="coverage_penalty needs a model"):
        Seq2SeqInference(pre, model, DecodingConfig(coverage_penalty=0.5))


def test_recipe_flags_reach_the_decoding_config():
    recipe = Recipe(name="x", task="translation", model="gru_bahdanau")
    task = get_task("translation")
    parser = argument_parser(recipe, task)
    defaults = decoding_from(parser.parse_args([]), recipe.decoding_config())
    assert defaults == recipe.decoding_config()
    args = parser.parse_args(
        ["--min-length", "3", "--no-repeat-ngram-size", "2", "--coverage-penalty", "0.4"]
    )
    decoding = decoding_from(args, recipe.decoding_config())
    assert (decoding.min_length, decoding.no_repeat_ngram_size) == (3, 2)
    assert decoding.coverage_penalty == 0.4
