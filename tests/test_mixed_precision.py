"""Every catalog entry trains, decodes and exports under mixed_float16 and mixed_bfloat16
(both run on CPU); scores stay float32.

Each (entry, policy) pair trains one batch and decodes with beam search in process (the
search loop, where the float16 failures showed). Every entry is also exported (which
traces every signature) and checked on the Session path, a fresh process each, under
one of the two policies (the SERVED_POLICY table): every encoder and decoder family with
two entries or more is served under both.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.export.conformance import batch_inputs, check_serving
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import (
    CATALOG,
    build_from_catalog,
    catalog_names,
    entry,
    requires_joint_vocabulary,
)
from s2s_zoo.training.fit import TrainConfig, compile_model, fit, set_precision
from tests.conftest import tiny_overrides
from tests.test_catalog import media_examples, media_inference

POLICIES = ["mixed_float16", "mixed_bfloat16"]


@pytest.fixture
def policy(request):
    set_precision(request.param)
    yield request.param
    set_precision(None)


F16, BF16 = POLICIES
# The policy each entry is exported and served under; both policies cover every encoder
# and decoder family that has two entries or more (a new entry must pick one here).
SERVED_POLICY = {
    "gru_bahdanau": F16, "lstm_luong": BF16, "lstm_luong_dot": F16, "lstm_residual": BF16,
    "rnn_plain": F16, "simple_rnn_bahdanau": BF16,
    "transformer_tiny": F16, "transformer_base": BF16,
    "pointer_generator_coverage": F16, "pointer_generator": BF16,
    "seq2seq_attention_summ": BF16,
    "mem2seq_dialog": F16, "memn2n_dialog": BF16,
    "show_attend_tell": F16, "speech_las": F16,
}  # fmt: skip


def test_every_entry_has_a_served_policy_and_families_see_both():
    assert set(SERVED_POLICY) == set(CATALOG)
    for side in ("encoder", "decoder"):
        by_family: dict[str, set] = {}
        for name, policy in SERVED_POLICY.items():
            by_family.setdefault(getattr(entry(name), side), set()).add(policy)
        for family, policies in by_family.items():
            names = [n for n in CATALOG if getattr(entry(n), side) == family]
            assert len(names) < 2 or policies == set(POLICIES), (side, family, policies)


def _served_under(name: str, policy: str) -> bool:
    """Whether this pair also runs the Session-path check (see the module docstring)."""
    return SERVED_POLICY[name] == policy


def _train(inference, dataset) -> None:
    config = TrainConfig(epochs=1, batch_size=16, learning_rate=1e-2, patience=0)
    compile_model(inference.model.training_model, config)
    history = fit(inference.model.training_model, dataset, None, config, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def _export_and_serve(inference, samples, tmp_path, serve: bool) -> None:
    if serve:
        path = export_saved_model(inference, tmp_path / "m")
        report = check_serving(path, inference, samples, score_tolerance=1e-2)
        assert report.ok, report.mismatches


def _train_decode_export(inference, dataset, samples, tmp_path, serve: bool):
    _train(inference, dataset)
    beam = inference.beam(samples)  # greedy shares the decoder step; served pairs run it too
    assert beam["scores"].dtype.name == "float32" and np.all(np.isfinite(beam["scores"].numpy()))
    if serve:
        assert inference.greedy(samples)["scores"].dtype.name == "float32"
    _export_and_serve(inference, samples, tmp_path, serve)


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
@pytest.mark.parametrize("name", catalog_names("token_ids"))
def test_text_entry_under_mixed_precision(
    name, policy, tiny_preprocessor, tiny_joint_preprocessor, tmp_path
):
    # entries that share embeddings (the summarization ones) need one joint vocabulary
    joint = requires_joint_vocabulary(name, **tiny_overrides(name))
    pairs, pre = tiny_joint_preprocessor if joint else tiny_preprocessor
    keras.utils.set_random_seed(0)
    model = build_from_catalog(
        name, pre.source_vocab_size, pre.target_vocab_size, **tiny_overrides(name)
    )
    assert model.training_model.output.dtype == "float32"  # logits: the loss needs float32
    inference = Seq2SeqInference(pre, model, DecodingConfig(beam_size=2, max_length_cap=8,
                                                            num_hypotheses=2))  # fmt: skip
    samples = [s for s, _ in pairs[:2]] + [""]
    serve = _served_under(name, policy)
    _train_decode_export(inference, make_dataset(pairs[:16], pre, 16), samples, tmp_path, serve)


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
@pytest.mark.parametrize("name", catalog_names("image") + catalog_names("audio_features"))
def test_media_entry_under_mixed_precision(name, policy, tmp_path):
    from s2s_zoo.data.media_pipeline import make_audio_dataset, make_image_dataset
    from s2s_zoo.models.registry import source_features

    image = source_features(name) == "image"
    pairs = media_examples("image" if image else "audio", tmp_path)[:16]
    inference = media_inference(name, pairs)
    make = make_image_dataset if image else make_audio_dataset
    samples = [open(p, "rb").read() for p, _ in pairs[:2]] + [b"garbage"]
    dataset = make(pairs, inference.preprocessor, 16)
    _train_decode_export(inference, dataset, samples, tmp_path, _served_under(name, policy))


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
@pytest.mark.parametrize("name", catalog_names("dialogue"))
def test_dialogue_entry_under_mixed_precision(name, policy, tmp_path):
    from s2s_zoo.data.dialogue_pipeline import make_dialogue_dataset
    from tests.test_dialogue_models import _inference, _requests, toy_data

    train, _, proto = toy_data()
    inference = _inference(name, proto)
    _train(inference, make_dialogue_dataset(train[:16], inference.preprocessor, 16, seed=0))
    samples = [*_requests(train[:2]), {"context": [], "kb": []}]
    batch = batch_inputs(samples, ["context", "kb"])
    tensors = [tf.constant(batch[k]) for k in ("context", "kb")]
    beam = inference.beam(*tensors)
    assert beam["scores"].dtype.name == "float32" and np.all(np.isfinite(beam["scores"]))
    _export_and_serve(inference, samples, tmp_path, _served_under(name, policy))
