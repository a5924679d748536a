"""Every catalog entry keeps the zoo's contract: train, decode, export, serve, rebuild.

Parametrised over `CATALOG`, so a new entry is tested by adding it there.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.bundle import load_bundle, save_bundle
from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.decoding import beam_search, greedy_search
from s2s_zoo.export.conformance import check_serving
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import (
    build_from_catalog,
    build_from_json,
    catalog_names,
    requires_joint_vocabulary,
)
from s2s_zoo.training.fit import TrainConfig, compile_model, fit
from tests.conftest import tiny_overrides

NAMES = catalog_names("token_ids")  # image and audio entries: tests/test_media_models.py


@pytest.fixture
def text_preprocessor(request, name):
    """Pairs and a preprocessor; one joint vocabulary for decoders that copy or share it."""
    joint = requires_joint_vocabulary(name, **tiny_overrides(name))
    return request.getfixturevalue("tiny_joint_preprocessor" if joint else "tiny_preprocessor")


def tiny(name: str, preprocessor, seed: int = 0):
    keras.utils.set_random_seed(seed)
    return build_from_catalog(
        name,
        preprocessor.source_vocab_size,
        preprocessor.target_vocab_size,
        **tiny_overrides(name),
    )


@pytest.mark.parametrize("name", NAMES)
def test_entry_trains_decodes_exports_and_serves(name, text_preprocessor, tmp_path):
    pairs, pre = text_preprocessor
    model = tiny(name, pre)
    config = TrainConfig(epochs=2, batch_size=16, learning_rate=1e-2, patience=0)
    compile_model(model.training_model, config)
    history = fit(model.training_model, make_dataset(pairs[:80], pre, 16), None, config, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0], losses

    inference = Seq2SeqInference(
        pre, model, DecodingConfig(beam_size=3, num_hypotheses=2, max_length_cap=12)
    )
    texts = [s for s, _ in pairs[:3]] + [""]
    greedy, beam = inference.greedy(texts), inference.beam(texts)
    assert greedy["outputs"].shape == (4,) and beam["nbest_outputs"].shape == (4, 2)
    assert int(tf.reduce_max(beam["lengths"])) <= 12

    empty = inference.beam([])  # a client that filters its inputs can send none
    assert empty["outputs"].shape == (0,) and empty["nbest_outputs"].shape == (0, 2)
    assert inference.greedy([])["outputs"].shape == (0,)

    path = export_saved_model(inference, tmp_path / name)
    report = check_serving(path, inference, batches=[texts, []])
    assert report.ok, report.mismatches


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_gives_identical_logits(name, text_preprocessor, tmp_path):
    pairs, pre = text_preprocessor
    model = tiny(name, pre, seed=3)
    inference = Seq2SeqInference(pre, model, DecodingConfig())
    save_bundle(inference, tmp_path)
    rebuilt = load_bundle(tmp_path)
    assert rebuilt.model.config == model.config
    assert build_from_json(model.config_json()).config == model.config
    source, target_in = pre.source_ids(["three hundred and five", "seven"]), None
    target_in, _ = pre.target_in_out(["trois cent cinq", "sept"])
    np.testing.assert_array_equal(
        model.training_model([source, target_in]).numpy(),
        rebuilt.model.training_model([source, target_in]).numpy(),
    )


@pytest.mark.parametrize("name", NAMES)
def test_padding_neighbours_change_nothing(name, text_preprocessor):
    _, pre = text_preprocessor
    model = tiny(name, pre, seed=5)
    short = "twelve"
    long = "nine hundred and ninety-nine thousand, nine hundred and ninety-nine"
    alone_src = pre.source_ids([short])
    batch_src = pre.source_ids([short, long])
    alone_tgt, _ = pre.target_in_out(["douze"])
    batch_tgt, _ = pre.target_in_out(["douze", "neuf cent quatre-vingt-dix-neuf mille"])
    alone = model.training_model([alone_src, alone_tgt]).numpy()[0]
    batched = model.training_model([batch_src, batch_tgt]).numpy()[0, : alone.shape[0]]
    np.testing.assert_allclose(alone, batched, atol=1e-5)

    decoding = DecodingConfig(beam_size=3, num_hypotheses=3, max_length_cap=10)
    inference = Seq2SeqInference(pre, model, decoding)
    for mode in ("greedy", "beam"):
        one = getattr(inference, mode)([short])
        two = getattr(inference, mode)([short, long])
        assert one["outputs"].numpy()[0] == two["outputs"].numpy()[0], mode
        np.testing.assert_allclose(one["scores"].numpy()[0], two["scores"].numpy()[0], atol=1e-5)


def test_transformer_cache_matches_full_prefix_decoding(tiny_preprocessor):
    _, pre = tiny_preprocessor
    model = tiny("transformer_tiny", pre, seed=7)
    source = pre.source_ids(["four hundred and two", "ten", "nine hundred"])
    limits = tf.constant([9, 9, 9])
    memory, cached_state = model.encode(source, 9)
    reference_state = model.decoder.uncached_state(tf.shape(source)[0], 9)
    for search, kwargs in (
        (greedy_search, {}),
        (beam_search, {"beam_size": 3, "num_hypotheses": 3}),
    ):
        cached = search(model.step, cached_state, memory, limits, 2, 3, **kwargs)
        uncached = search(
            model.decoder.uncached_step, reference_state, memory, limits, 2, 3, **kwargs
        )
        np.testing.assert_array_equal(cached.ids.numpy(), uncached.ids.numpy())
        np.testing.assert_allclose(cached.scores.numpy(), uncached.scores.numpy(), atol=1e-4)


# -- image and audio entries: the same contract, with generated PNG / WAV bytes -----------

MEDIA_NAMES = catalog_names("image") + catalog_names("audio_features")
COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}
TONES = {"low": 300.0, "middle": 1000.0, "high": 3000.0}


def media_examples(kind: str, tmp_path) -> list[tuple[str, str]]:
    """Files the model can learn from: solid colours named, or pure tones named by pitch."""
    from s2s_zoo.data.wav_files import wav_bytes
    from s2s_zoo.features.image import encode_png

    rng = np.random.default_rng(0)
    pairs = []
    for i in range(48):
        if kind == "image":  # a source-features name, not a model kind
            word, rgb = list(COLOURS.items())[i % 3]
            pixels = np.clip(np.array(rgb) + rng.integers(-20, 21, (40, 80, 3)), 0, 255)
            data, suffix = encode_png(pixels.astype(np.uint8)), "png"
        else:
            word, hz = list(TONES.items())[i % 3]
            t = np.arange(int(16000 * rng.uniform(0.3, 0.6))) / 16000
            data, suffix = wav_bytes(0.3 * np.sin(2 * np.pi * hz * t), 16000), "wav"
        path = tmp_path / f"{i}.{suffix}"
        path.write_bytes(data)
        pairs.append((str(path), f"a {word} one"))
    return pairs


def media_inference(name: str, pairs, seed: int = 0):
    from s2s_zoo.data.media_preprocessors import AudioPreprocessor, ImagePreprocessor
    from s2s_zoo.data.tokenizer import train_sentencepiece
    from s2s_zoo.features.audio import AudioFrontEnd
    from s2s_zoo.features.image import ImageFrontEnd
    from s2s_zoo.models.registry import source_features

    keras.utils.set_random_seed(seed)
    proto = train_sentencepiece([c for _, c in pairs], 20)
    if source_features(name) == "image":
        pre = ImagePreprocessor(proto, ImageFrontEnd(32, 64), 8)
    else:
        pre = AudioPreprocessor(proto, AudioFrontEnd(num_mel_bins=16), 8)
    model = build_from_catalog(name, 0, pre.target_vocab_size, **tiny_overrides(name))
    decoding = DecodingConfig(beam_size=3, num_hypotheses=2, max_length_ratio=0.0,
                              max_length_offset=6)  # fmt: skip
    return Seq2SeqInference(pre, model, decoding)


@pytest.mark.parametrize("name", MEDIA_NAMES)
def test_media_entry_trains_decodes_exports_and_serves(name, tmp_path):
    from s2s_zoo.data.media_pipeline import make_audio_dataset, make_image_dataset
    from s2s_zoo.models.registry import source_features

    pairs = media_examples(source_features(name), tmp_path)
    inference = media_inference(name, pairs)
    make = make_image_dataset if source_features(name) == "image" else make_audio_dataset
    config = TrainConfig(epochs=4, batch_size=16, learning_rate=1e-2, patience=0)
    compile_model(inference.model.training_model, config)
    history = fit(inference.model.training_model, make(pairs, inference.preprocessor, 16), None,
                  config, verbose=0)  # fmt: skip
    losses = history.history["loss"]
    assert losses[-1] < losses[0], losses

    samples = [open(p, "rb").read() for p, _ in pairs[:3]] + [b"garbage"]
    greedy, beam = inference.greedy(samples), inference.beam(samples)
    assert greedy["outputs"].shape == (4,) and beam["nbest_outputs"].shape == (4, 2)
    assert [e == b"" for e in beam["errors"].numpy()] == [True, True, True, False]
    empty = inference.beam([])  # no items: empty rows, not a kernel error on a zero batch
    assert empty["outputs"].shape == (0,) and empty["nbest_outputs"].shape == (0, 2)
    path = export_saved_model(inference, tmp_path / name)
    report = check_serving(path, inference, texts=samples)
    assert report.ok, report.mismatches


@pytest.mark.parametrize("name", MEDIA_NAMES)
def test_media_config_round_trip_gives_identical_outputs(name, tmp_path):
    from s2s_zoo.models.registry import source_features

    pairs = media_examples(source_features(name), tmp_path)
    inference = media_inference(name, pairs, seed=3)
    save_bundle(inference, tmp_path / "bundle")
    rebuilt = load_bundle(tmp_path / "bundle")
    assert rebuilt.model.config == inference.model.config
    assert rebuilt.preprocessor.get_config() == inference.preprocessor.get_config()
    samples = [open(p, "rb").read() for p, _ in pairs[:2]]
    a, b = inference.beam(samples), rebuilt.beam(samples)
    assert a["outputs"].numpy().tolist() == b["outputs"].numpy().tolist()
    np.testing.assert_allclose(a["scores"].numpy(), b["scores"].numpy(), atol=1e-6)
