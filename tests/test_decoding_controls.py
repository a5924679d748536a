"""min_length, no_repeat_ngram_size and coverage_penalty in DecodingConfig: the exported
signatures apply them (in process and on the Session path), the defaults change nothing,
and the recipe flags reach them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.bundle import load_bundle
from s2s_zoo.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from s2s_zoo.decoding import beam_search, decode_steps, max_output_lengths
from s2s_zoo.export.conformance import check_serving, run_in_session
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_catalog
from s2s_zoo.tasks.base import get_task
from s2s_zoo.training.runner import Recipe, argument_parser, decoding_from
from tests.conftest import make_tiny_inference


def with_decoding(inference: Seq2SeqInference, **changes) -> Seq2SeqInference:
    decoding = dataclasses.replace(inference.decoding, **changes)
    return Seq2SeqInference(inference.preprocessor, inference.model, decoding)


@pytest.fixture(scope="module")
def texts(number_splits):
    return [s for s, _ in number_splits["test"][:12]]


@pytest.fixture(scope="module")
def untrained(number_splits):
    """A tiny random model: its outputs run to the length limit and repeat pieces."""
    return make_tiny_inference(number_splits["train"], seed=1)


@pytest.fixture(scope="module")
def eager_to_end(number_splits):
    """The same, with so large an EOS bias that every search ends at once when allowed."""
    inference = make_tiny_inference(number_splits["train"], seed=1)
    bias = inference.model.decoder.output_projection.bias
    bias.assign(bias + 30.0 * tf.one_hot(EOS_ID, bias.shape[0]))
    return inference


def repeats(tokens) -> bool:
    pieces = [p for p in tokens if p]
    return len(set(pieces)) < len(pieces)


def test_defaults_are_off_and_change_nothing(untrained, texts):
    d = DecodingConfig()
    assert (d.min_length, d.no_repeat_ngram_size, d.coverage_penalty) == (0, 0, 0.0)
    explicit = with_decoding(untrained, min_length=0, no_repeat_ngram_size=0,
                             coverage_penalty=0.0)  # fmt: skip
    for mode in ("greedy", "beam"):
        a, b = getattr(untrained, mode)(texts), getattr(explicit, mode)(texts)
        assert a["outputs"].numpy().tolist() == b["outputs"].numpy().tolist()


# Every test source has at least one token + EOS, so every item may output at least
# min(cap, 2 * 2 + 10) = 14 tokens: a floor of 12 is never cut by the length limit.
FLOOR = 12


def test_min_length_forces_longer_outputs(eager_to_end, texts):
    longer = with_decoding(eager_to_end, min_length=FLOOR)
    for mode in ("greedy", "beam"):
        plain = getattr(eager_to_end, mode)(texts)["lengths"].numpy()
        # "lengths" count output tokens without the EOS
        assert (plain == 0).all(), plain  # EOS first
        lengths = getattr(longer, mode)(texts)["lengths"].numpy()
        assert (lengths == FLOOR).all(), (mode, lengths)  # FLOOR tokens, then EOS


def test_no_repeat_ngram_size_one_repeats_no_token(untrained, texts):
    plain = untrained.greedy(texts)["output_tokens"].numpy()
    assert any(repeats(row) for row in plain)  # precondition: this model repeats pieces
    controlled = with_decoding(untrained, no_repeat_ngram_size=1)
    for mode in ("greedy", "beam"):
        rows = getattr(controlled, mode)(texts)["output_tokens"].numpy()
        assert not any(repeats(row) for row in rows), mode


def test_coverage_penalty_reaches_beam_search_with_the_source_mask(eager_to_end, texts):
    penalised = with_decoding(eager_to_end, coverage_penalty=1.0, min_length=2)
    result = penalised.beam(texts)
    plain = with_decoding(eager_to_end, min_length=2).beam(texts)["scores"].numpy()
    # 3 steps cover no source token fully: the penalty sum_i log(coverage_i) is < 0
    assert (result["scores"].numpy() < plain - 0.1).all()
    # the same search called directly, with the padding mask of the source ids
    pre, model, d = penalised.preprocessor, penalised.model, penalised.decoding
    source, lengths, _ = pre.encode_source(tf.constant(texts))
    limits = max_output_lengths(lengths, d.max_length_ratio, d.max_length_offset,
                                d.max_length_cap)  # fmt: skip
    memory, state = model.encode(source, decode_steps(limits))
    reference = beam_search(model.step, state, memory, limits, BOS_ID, EOS_ID,
                            beam_size=d.beam_size, length_penalty=d.length_penalty,
                            num_hypotheses=d.num_hypotheses, min_length=2,
                            coverage_penalty=1.0, source_mask=source != PAD_ID)  # fmt: skip
    np.testing.assert_allclose(result["scores"].numpy(), reference.scores[:, 0], atol=1e-5)
    greedy = penalised.greedy(texts)
    np.testing.assert_array_equal(  # greedy search has no coverage penalty
        greedy["scores"].numpy(), with_decoding(eager_to_end, min_length=2).greedy(texts)["scores"]
    )


def test_exported_signatures_apply_the_controls(eager_to_end, texts, tmp_path):
    controlled = with_decoding(eager_to_end, min_length=FLOOR, no_repeat_ngram_size=1,
                               coverage_penalty=0.5)  # fmt: skip
    path = export_saved_model(controlled, tmp_path / "controls")
    report = check_serving(path, controlled, texts=texts[:4] + [""])
    assert report.ok, report.mismatches
    calls = [{"signature": s, "inputs": {"inputs": texts}} for s in ("greedy", "beam")]
    for result in run_in_session(path, calls)["results"]:
        assert result["lengths"] == [FLOOR] * len(texts)
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
