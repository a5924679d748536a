"""The in-graph image and audio front ends: exact decoding, per-item errors, invariances."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.features.audio import AudioFrontEnd, wav_bytes
from s2s_zoo.features.image import ImageFrontEnd, encode_png

STRINGS = tf.TensorSpec([None], tf.string)


def pixels(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)


# -- images ------------------------------------------------------------------------------


def test_png_decodes_exactly_and_jpeg_closely():
    front = ImageFrontEnd(16, 24)
    image = pixels(16, 24)
    smooth = np.repeat(np.repeat(pixels(4, 6, seed=1), 4, 0), 4, 1)  # JPEG-friendly blocks
    png, jpeg = encode_png(image), tf.io.encode_jpeg(smooth, quality=95).numpy()
    images, errors = front.decode(tf.constant([png, jpeg]))
    assert images.shape == (2, 16, 24, 3) and list(errors.numpy()) == [b"", b""]
    np.testing.assert_allclose(images[0].numpy(), image / 127.5 - 1.0, atol=1e-6)
    # chroma subsampling blurs colour edges; a wrong decode would be ~0.6 off on average
    assert np.abs(images[1].numpy() - (smooth / 127.5 - 1.0)).mean() < 0.15


def test_grayscale_and_rgba_become_rgb_and_resize():
    front = ImageFrontEnd(8, 8)
    gray = encode_png(pixels(16, 16, 1))
    rgba = encode_png(pixels(16, 16, 4))
    images, errors = front.decode(tf.constant([gray, rgba]))
    assert images.shape == (2, 8, 8, 3) and not any(errors.numpy())
    np.testing.assert_array_equal(images[0, ..., 0].numpy(), images[0, ..., 2].numpy())
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0


def test_bad_images_get_errors_and_the_rest_of_the_batch_is_unaffected():
    front = ImageFrontEnd(16, 24)
    decode = tf.function(front.decode, input_signature=[STRINGS])
    png = encode_png(pixels(16, 24))
    jpeg = tf.io.encode_jpeg(pixels(16, 24, seed=2)).numpy()
    batch = [png, jpeg[: len(jpeg) // 2], b"hello", b"", jpeg, png[:-20]]
    images, errors = decode(tf.constant(batch))
    assert [e.decode() for e in errors.numpy()] == [
        "",
        "truncated JPEG (no end marker)",
        "not a JPEG or PNG image",
        "empty input",
        "",
        "truncated PNG (no IEND chunk)",
    ]
    for i in (1, 2, 3, 5):
        assert not np.any(images[i].numpy())
    alone, _ = decode(tf.constant([png, jpeg]))
    np.testing.assert_array_equal(images[0].numpy(), alone[0].numpy())
    np.testing.assert_array_equal(images[4].numpy(), alone[1].numpy())
    empty, empty_errors = decode(tf.constant([], tf.string))
    assert empty.shape == (0, 16, 24, 3) and empty_errors.shape == (0,)


# -- audio -------------------------------------------------------------------------------


def tone(hz: float, seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_wav_decoding_is_exact_and_bad_items_are_named():
    front = AudioFrontEnd(num_mel_bins=40)
    decode = tf.function(front.decode_wav, input_signature=[STRINGS])
    a, b = tone(440, 0.5), tone(880, 0.25)
    eight_bit = bytearray(wav_bytes(a, 16000))
    eight_bit[34] = 8  # bits per sample field
    batch = [
        wav_bytes(a, 16000),
        b"junk",
        wav_bytes(a, 22050),
        wav_bytes(np.zeros(0), 16000),
        bytes(eight_bit),
        wav_bytes(b, 16000),
    ]
    waves, lengths, errors = decode(tf.constant(batch))
    assert [e.decode() for e in errors.numpy()] == [
        "",
        "not a RIFF/WAVE file",
        "sample rate 22050 Hz, model expects 16000 Hz",
        "empty audio",
        "unsupported WAV encoding: only 16-bit PCM",
        "",
    ]
    assert list(lengths.numpy()) == [8000, 0, 0, 0, 0, 4000]
    np.testing.assert_array_equal(waves[0].numpy(), np.round(a * 32768) / 32768)
    np.testing.assert_array_equal(waves[5, :4000].numpy(), np.round(b * 32768) / 32768)
    assert decode(tf.constant([], tf.string))[0].shape[0] == 0


def test_features_ignore_padding_and_are_normalised():
    front = AudioFrontEnd(num_mel_bins=40)
    short, long = tone(500, 0.3), tone(2000, 0.8)
    waves = np.zeros((2, len(long)), np.float32)
    waves[0, : len(short)], waves[1] = short, long
    features, mask = front.features(waves, [len(short), len(long)])
    alone, alone_mask = front.features(short[None], [len(short)])
    frames = int(alone_mask.numpy().sum())
    assert frames == (len(short) - 400) // 160 + 1 == int(mask[0].numpy().sum())
    np.testing.assert_allclose(features[0, :frames].numpy(), alone[0].numpy(), atol=1e-5)
    assert not np.any(features[0, frames:].numpy())
    np.testing.assert_allclose(features[1].numpy().mean(axis=0), 0.0, atol=5e-3)


def test_a_pure_tone_peaks_in_the_mel_bin_of_its_frequency():
    front = AudioFrontEnd(num_mel_bins=40, lower_hz=20.0, upper_hz=7600.0)
    centres = np.linspace(*[2595 * np.log10(1 + f / 700) for f in (20.0, 7600.0)], num=42)[
        1:-1
    ]  # mel-spaced band centres
    for hz in (300.0, 1000.0, 4000.0):
        wave = tone(hz, 0.5)
        power = tf.abs(tf.signal.stft(wave[None], 400, 160, 512)) ** 2
        log_mel = tf.math.log(tf.tensordot(power, front.mel_matrix, 1) + 1e-6)
        peak = int(np.argmax(log_mel.numpy()[0].mean(axis=0)))
        expected = int(np.argmin(np.abs(centres - 2595 * np.log10(1 + hz / 700))))
        assert abs(peak - expected) <= 1, (hz, peak, expected)


def test_spec_augment_masks_only_inside_valid_frames():
    front = AudioFrontEnd(num_mel_bins=40)
    waves = np.stack([tone(700, 1.0), np.pad(tone(300, 0.5), (0, 8000))])
    features, mask = front.features(waves, [16000, 8000])
    tf.random.set_seed(1)
    augmented = front.spec_augment(features, mask, freq_width=8, time_width=10)
    changed = augmented.numpy() != features.numpy()
    assert changed.any() and augmented.shape == features.shape
    assert not changed[~mask.numpy()].any()
    ds = tf.data.Dataset.from_tensors((features, mask)).map(front.spec_augment)
    assert next(iter(ds)).shape == features.shape


@pytest.mark.parametrize("config", [{}, {"sample_rate": 8000, "num_mel_bins": 20}])
def test_front_end_configs_round_trip(config):
    front = AudioFrontEnd(**config)
    assert AudioFrontEnd.from_config(front.get_config()).get_config() == front.get_config()
    image = ImageFrontEnd(32, 64)
    assert ImageFrontEnd.from_config(image.get_config()).get_config() == image.get_config()
