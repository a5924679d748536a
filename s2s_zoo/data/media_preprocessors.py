"""Preprocessors for image and audio sources: an in-graph front end plus target text.

They keep the same contract as `TextPreprocessor` (`encode_source`, target
tokenization, detokenization), so the searches, the exporter and the serving
check handle captioning and speech recognition exactly like translation. The
front ends validate each item: a bad image or WAV yields an error string for
that item only, and the rest of the batch decodes normally.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from s2s_zoo.data.preprocessor import TargetText
from s2s_zoo.features.image import ImageFrontEnd


class ImagePreprocessor(TargetText):
    """Encoded JPEG/PNG bytes -> normalised image batch; captions as subword ids."""

    kind = "image"
    input_name = "images"

    def __init__(self, target_proto: bytes, front_end: ImageFrontEnd, max_target_length: int = 64):
        super().__init__(target_proto, max_target_length, name="image_preprocessor")
        self.front_end = front_end

    def encode_source(self, inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """[batch] image bytes -> (images, source lengths (all 0), per-item errors)."""
        images, errors = self.front_end.decode(inputs)
        return images, tf.zeros_like(errors, dtype=tf.int32), errors

    def get_config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "max_target_length": self.max_target_length,
            "front_end": self.front_end.get_config(),
        }


class AudioPreprocessor(TargetText):
    """WAV bytes -> log-mel features and frame mask; transcripts as subword ids."""

    kind = "audio"
    input_name = "audio"

    def __init__(self, target_proto: bytes, front_end, max_target_length: int = 128) -> None:
        super().__init__(target_proto, max_target_length, name="audio_preprocessor")
        self.front_end = front_end

    def encode_source(self, inputs: tf.Tensor):
        """[batch] WAV bytes -> ((features, frame_mask), valid frames, per-item errors)."""
        waveforms, lengths, errors = self.front_end.decode_wav(inputs)
        features, frame_mask = self.front_end.features(waveforms, lengths)
        frames = tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1)
        return (features, frame_mask), frames, errors

    def get_config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "max_target_length": self.max_target_length,
            "front_end": self.front_end.get_config(),
        }


def media_preprocessor_from_config(config: dict[str, Any], target_proto: bytes):
    """Rebuild an image or audio preprocessor from `get_config()` output."""
    kind = config["kind"]
    if kind == "image":
        front = ImageFrontEnd.from_config(config["front_end"])
        return ImagePreprocessor(target_proto, front, config["max_target_length"])
    if kind == "audio":
        from s2s_zoo.features.audio import AudioFrontEnd

        front = AudioFrontEnd.from_config(config["front_end"])
        return AudioPreprocessor(target_proto, front, config["max_target_length"])
    raise ValueError(f"unknown preprocessor kind {kind!r}")
