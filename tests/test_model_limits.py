"""Length limits: one unit (encoder memory positions) for every modality, and Transformer
position tables that no request can run past."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.data.wav_files import wav_bytes
from s2s_zoo.features.image import encode_png
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_catalog
from s2s_zoo.tasks.translation.numbers import number_pair
from tests.conftest import tiny_overrides

LONG = " ".join(["seven hundred and twelve thousand"] * 60)


@pytest.fixture(scope="module")
def protos():
    pairs = [number_pair(n) for n in range(0, 1000, 7)]
    return (
        train_sentencepiece([s for s, _ in pairs], 80),
        train_sentencepiece([t for _, t in pairs], 80),
    )


def media_model(kind: str, decoding: DecodingConfig) -> Seq2SeqInference:
    from s2s_zoo.data.media_preprocessors import AudioPreprocessor, ImagePreprocessor
    from s2s_zoo.features.audio import AudioFrontEnd
    from s2s_zoo.features.image import ImageFrontEnd

    keras.utils.set_random_seed(0)
    proto = train_sentencepiece(["a red one", "a blue one"] * 4, 20)
    if kind == "image":
        pre, name = ImagePreprocessor(proto, ImageFrontEnd(32, 64), 8), "show_attend_tell"
    else:
        pre, name = AudioPreprocessor(proto, AudioFrontEnd(num_mel_bins=16), 8), "speech_las"
    model = build_from_catalog(name, 0, pre.target_vocab_size, **tiny_overrides(name))
    return Seq2SeqInference(pre, model, decoding)


RATIO_ONE = DecodingConfig(beam_size=2, num_hypotheses=1, max_length_ratio=1.0,
                           max_length_offset=0, max_length_cap=1000)  # fmt: skip


def test_text_limit_counts_source_tokens_with_eos(protos):
    keras.utils.set_random_seed(0)
    pre = TextPreprocessor(*protos, max_source_length=32, max_target_length=32)
    model = build_from_catalog("gru_bahdanau", pre.source_vocab_size, pre.target_vocab_size,
                               **tiny_overrides("gru_bahdanau"))  # fmt: skip
    inference = Seq2SeqInference(pre, model, RATIO_ONE)
    texts = ["seven", "three hundred and forty-two thousand", "", LONG]
    tokens = [len(pre.source_tokenizer.tokenize([t]).to_list()[0]) for t in texts]
    expected = [min(n, 31) + 1 for n in tokens]  # EOS; truncated to max_source_length
    assert inference.output_limits(tf.constant(texts)).numpy().tolist() == expected
    assert expected[-1] == 32 and expected[2] == 1


def test_image_limit_counts_grid_cells():
    decoding = DecodingConfig(beam_size=2, num_hypotheses=1, max_length_ratio=0.5,
                              max_length_offset=3, max_length_cap=1000)  # fmt: skip
    inference = media_model("image", decoding)
    grid = inference.model.encoder.config.grid_size
    assert grid == (32 // 16) * (64 // 16) == 8
    images = [encode_png(np.full((h, w, 3), 90, np.uint8)) for h, w in ((40, 80), (10, 300))]
    limits = inference.output_limits(tf.constant([*images, b"not an image"]))
    assert limits.numpy().tolist() == [math.ceil(0.5 * grid) + 3] * 2 + [0]
    out = inference.greedy(tf.constant(images))
    assert (out["lengths"].numpy() < limits.numpy()[:2] + 1).all()


def test_audio_limit_counts_frames_after_subsampling():
    inference = media_model("audio", RATIO_ONE)
    front = inference.preprocessor.front_end
    lengths = [400, 4000, 16000]  # samples at 16 kHz
    wavs = [wav_bytes(np.full(n, 0.1), 16000) for n in lengths]
    wavs.append(wav_bytes(np.full(22050, 0.1), 22050))  # one second at another rate
    frames = [(n - front.frame_length) // front.frame_step + 1 for n in (*lengths, 16000)]
    expected = [math.ceil(math.ceil(f / 2) / 2) for f in frames]  # two stride-2 convolutions
    assert frames == [1, 23, 98, 98] and expected == [1, 6, 25, 25]
    assert inference.output_limits(tf.constant(wavs)).numpy().tolist() == expected


def test_speech_recipe_keeps_its_effective_limit():
    """0.25 tokens per 10 ms frame before; 1 per 4x-subsampled frame now: the same."""
    from tests.test_media_recipes import load_recipe

    decoding = load_recipe("recipes/speech/las.py").decoding
    for frames in (1, 2, 3, 4, 5, 97, 98, 1001):
        before = math.ceil(0.25 * frames)
        now = math.ceil(decoding.max_length_ratio * math.ceil(math.ceil(frames / 2) / 2))
        assert now == before


def learned_transformer(protos, max_positions: int, positions: str = "learned"):
    keras.utils.set_random_seed(0)
    pre = TextPreprocessor(*protos, max_source_length=256, max_target_length=256)
    overrides = {**tiny_overrides("transformer_tiny"), "positions": positions,
                 "max_positions": max_positions}  # fmt: skip
    model = build_from_catalog("transformer_tiny", pre.source_vocab_size,
                               pre.target_vocab_size, **overrides)  # fmt: skip
    decoding = DecodingConfig(beam_size=3, num_hypotheses=2, max_length_cap=64)
    with pytest.warns(UserWarning, match="cut to"):
        inference = Seq2SeqInference(pre, model, decoding)
    return inference


def test_learned_positions_never_run_past_their_table(protos):
    inference = learned_transformer(protos, 8)
    assert inference.decoding.max_length_cap == 8
    pre = inference.preprocessor
    assert pre.max_source_length == 8 and pre.max_target_length == 8
    texts = tf.constant(["seven", LONG, "", "three hundred and forty-two thousand"])
    assert pre.source_ids(texts).shape[1] == 8  # the over-long source is cut to the table
    for name in ("greedy", "beam"):
        out = inference.signatures[name](texts)
        assert out["lengths"].numpy().max() <= 8, name
    out = inference.nbest(texts, tf.constant(4), tf.constant(3), tf.constant(0))
    assert out["lengths"].numpy().max() <= 8
    assert out["nbest_outputs"].shape == (4, 3)
    # an untrained model rarely says EOS: the table size is reached, not just respected
    assert inference.greedy(texts)["lengths"].numpy().max() == 8
    assert inference.limits()["max_output_tokens"] == 8


def test_sinusoidal_positions_also_cap_at_the_trained_range(protos):
    inference = learned_transformer(protos, 12, positions="sinusoidal")
    assert inference.decoding.max_length_cap == 12
    assert inference.preprocessor.max_source_length == 12


def test_models_without_position_tables_keep_their_settings(protos):
    pre = TextPreprocessor(*protos, max_source_length=256, max_target_length=256)
    model = build_from_catalog("gru_bahdanau", pre.source_vocab_size, pre.target_vocab_size,
                               **tiny_overrides("gru_bahdanau"))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inference = Seq2SeqInference(pre, model, DecodingConfig(max_length_cap=300))
    assert inference.decoding.max_length_cap == 300 and pre.max_source_length == 256
