"""The in-graph image front end: exact decoding, per-item errors, resizing.

The audio front end is tested in test_audio_frontend.py."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.features.image import ImageFrontEnd, encode_png

STRINGS = tf.TensorSpec([None], tf.string)


def pixels(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)


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


@pytest.mark.parametrize("size", [(32, 64), (16, 16)])
def test_image_front_end_config_round_trips(size):
    image = ImageFrontEnd(*size)
    assert ImageFrontEnd.from_config(image.get_config()).get_config() == image.get_config()
