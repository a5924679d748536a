"""Encoded image bytes -> normalised pixels, in the graph, for training and serving alike.

TF Serving has only core TF ops, so decoding, resizing and normalising are
tf.io/tf.image ops. A decoder error would fail the whole request, so each item is
first checked from its bytes (JPEG/PNG signature and end marker) and only valid
items reach the decoder; the others get a zero image and an error string.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

JPEG_START = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
PNG_START = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"


def _starts_with(data: tf.Tensor, prefix: bytes) -> tf.Tensor:
    return tf.equal(tf.strings.substr(data, 0, len(prefix)), prefix)


def _ends_with(data: tf.Tensor, suffix: bytes) -> tf.Tensor:
    n = tf.strings.length(data)
    start = tf.maximum(n - len(suffix), 0)
    tail = tf.strings.substr(data, start, tf.fill(tf.shape(n), len(suffix)))
    return tf.logical_and(n >= len(suffix), tf.equal(tail, suffix))


def image_errors(encoded: tf.Tensor) -> tf.Tensor:
    """[batch] bytes -> [batch] error strings ("" when the bytes look like a whole image).

    A complete JPEG ends with the end-of-image marker FFD9 and a complete PNG with
    its IEND chunk, so a cut-off upload is caught before decoding. (JPEG files with
    bytes appended after FFD9 are rejected as truncated.)
    """
    jpeg, png = _starts_with(encoded, JPEG_START), _starts_with(encoded, PNG_START)
    error = tf.where(jpeg | png, "", "not a JPEG or PNG image")
    error = tf.where(jpeg & ~_ends_with(encoded, JPEG_END), "truncated JPEG (no end marker)", error)
    error = tf.where(png & ~_ends_with(encoded, PNG_END), "truncated PNG (no IEND chunk)", error)
    return tf.where(tf.strings.length(encoded) == 0, "empty input", error)


class ImageFrontEnd(tf.Module):
    """Decode JPEG/PNG, resize to `height` x `width`, scale to [-1, 1]; no variables."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__(name="image_front_end")
        if height < 1 or width < 1:
            raise ValueError("height and width must be positive")
        self.height = int(height)
        self.width = int(width)

    def get_config(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImageFrontEnd:
        return cls(**config)

    def _decode_one(self, data: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.resize(
            tf.cast(image, tf.float32), [self.height, self.width], antialias=True
        )
        return tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)

    def decode(self, encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """[batch] bytes -> (float32 [batch, height, width, 3] in [-1, 1], [batch] errors)."""
        encoded = tf.convert_to_tensor(encoded, tf.string)
        errors = image_errors(encoded)
        zeros = tf.zeros([self.height, self.width, 3], tf.float32)

        def one(item):
            data, error = item
            return tf.cond(tf.equal(error, ""), lambda: self._decode_one(data), lambda: zeros)

        images = tf.map_fn(
            one,
            (encoded, errors),
            fn_output_signature=tf.TensorSpec([self.height, self.width, 3], tf.float32),
        )
        return tf.ensure_shape(images, [None, self.height, self.width, 3]), errors


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [height, width, channels] -> PNG bytes (TF's encoder; no PIL needed)."""
    return tf.io.encode_png(tf.convert_to_tensor(image, tf.uint8)).numpy()
