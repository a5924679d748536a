"""Preprocessors for image and audio sources: an in-graph front end plus target text.

They keep the same contract as `TextPreprocessor` (`encode_source`, target
tokenization, detokenization), so the searches, the exporter and the serving
check handle captioning and speech recognition exactly like translation. The
front ends validate each item: a bad image or WAV yields an error string for
that item only, and the rest of the batch decodes normally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf

from s2s_zoo.data.preprocessor import TargetText, register_preprocessor
from s2s_zoo.features.audio import AudioFrontEnd
from s2s_zoo.features.image import ImageFrontEnd


class _FrontEndPreprocessor(TargetText):
    """A front end (`get_config`/`from_config`) + target text; saved as one config."""

    front_end_class: type
    exports_preprocess = True

    def __init__(self, target_proto: bytes, front_end, max_target_length: int) -> None:
        super().__init__(target_proto, max_target_length, name=f"{self.type_name}_preprocessor")
        self.front_end = front_end

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "front_end": self.front_end.get_config()}

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]):
        front = cls.front_end_class.from_config(config["front_end"])
        return cls((directory / "target.spm.model").read_bytes(), front,
                   config["max_target_length"])  # fmt: skip


@register_preprocessor("image")
class ImagePreprocessor(_FrontEndPreprocessor):
    """Encoded JPEG/PNG bytes -> normalised image batch; captions as subword ids."""

    source_features = "image"
    input_name = "images"
    front_end_class = ImageFrontEnd

    def __init__(self, target_proto: bytes, front_end: ImageFrontEnd, max_target_length: int = 64):
        super().__init__(target_proto, front_end, max_target_length)

    def encode_source(self, inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """[batch] image bytes -> (images, source lengths (all 0), per-item errors)."""
        images, errors = self.front_end.decode(inputs)
        return images, tf.zeros_like(errors, dtype=tf.int32), errors

    def preprocess_outputs(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        images, errors = self.front_end.decode(inputs)
        return {"images": images, "errors": errors}


@register_preprocessor("audio")
class AudioPreprocessor(_FrontEndPreprocessor):
    """WAV bytes -> log-mel features and frame mask; transcripts as subword ids."""

    source_features = "audio_features"
    input_name = "audio"
    front_end_class = AudioFrontEnd

    def __init__(self, target_proto: bytes, front_end: AudioFrontEnd, max_target_length: int = 128):
        super().__init__(target_proto, front_end, max_target_length)

    def encode_source(self, inputs: tf.Tensor):
        """[batch] WAV bytes -> ((features, frame_mask), valid frames, per-item errors)."""
        waveforms, lengths, errors = self.front_end.decode_wav(inputs)
        features, frame_mask = self.front_end.features(waveforms, lengths)
        frames = tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1)
        return (features, frame_mask), frames, errors

    def preprocess_outputs(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        (features, frame_mask), _, errors = self.encode_source(inputs)
        return {"features": features, "frame_mask": frame_mask, "errors": errors}
