"""Speech encoder (Listen, Attend and Spell style): log-mel frames, 4x conv subsampling,
then a (bi)directional recurrent stack, so attention over long audio stays cheap."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from s2s_zoo.layers.recurrent import RecurrentStack, check_cell
from s2s_zoo.models.base import Encoder, EncoderOutput, register_encoder


@dataclass
class SpeechEncoderConfig:
    """Convolutional subsampling + recurrent encoder over log-mel features."""

    feature_dim: int = 80  # mel bins from the audio front end
    conv_channels: int = 32
    embedding_dim: int = 128  # width of the subsampled frame vectors
    cell: str = "lstm"
    encoder_units: int = 128
    encoder_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.0
    residual: bool = False

    def __post_init__(self) -> None:
        check_cell(self.cell)
        if self.encoder_layers < 1:
            raise ValueError("encoder_layers must be at least 1")


class SubsampleFrames(layers.Layer):
    """Two stride-2 3x3 convolutions over (time, mel): 4x fewer frames, padding-safe.

    Explicit symmetric padding: Keras' "same" pads by the parity of the batch's
    length, which would shift a short utterance's frames when batched; padded
    frames are zeroed after each convolution so a longer neighbour changes nothing.

    >>> frames, mask = SubsampleFrames(channels=4)(
    ...     keras.ops.zeros((2, 9, 8)), keras.ops.arange(9)[None] < keras.ops.array([[9], [5]]))
    >>> tuple(frames.shape), keras.ops.convert_to_numpy(mask).sum(axis=1).tolist()
    ((2, 3, 8), [3, 2])
    """

    def __init__(self, channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels = channels
        self.convs = [
            layers.Conv2D(channels, 3, strides=2, padding="valid", name=f"subsample_{i}")
            for i in range(2)
        ]

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels}

    def call(self, features, mask):
        x = keras.ops.expand_dims(features, -1)
        for conv in self.convs:
            x = keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
            mask = mask[:, ::2]  # output frame i covers input frames 2i-1..2i+1: ceil(T/2)
            x = keras.ops.relu(conv(x))
            x = x * keras.ops.cast(mask, x.dtype)[:, :, None, None]
        shape = keras.ops.shape(x)
        return keras.ops.reshape(x, (shape[0], shape[1], x.shape[2] * x.shape[3])), mask

    def compute_output_spec(self, features, mask):
        bins = features.shape[2]
        for _ in range(2):
            bins = (bins + 2 - 3) // 2 + 1
        frames = None if features.shape[1] is None else -(-features.shape[1] // 4)
        return (
            keras.KerasTensor((features.shape[0], frames, bins * self.channels), features.dtype),
            keras.KerasTensor((mask.shape[0], frames), "bool"),
        )


@register_encoder("speech_conv_rnn")
class SpeechEncoder(Encoder):
    """LAS-style listener; see the module docstring.

    >>> enc = SpeechEncoder(SpeechEncoderConfig(feature_dim=16, conv_channels=2,
    ...                                         encoder_units=8, embedding_dim=8))
    >>> tuple(enc(enc.inputs()).memory.shape)
    (None, None, 16)
    """

    config_class = SpeechEncoderConfig
    source_features = "audio_features"

    def __init__(self, config: SpeechEncoderConfig) -> None:
        super().__init__(config)
        c = config
        self.subsample = SubsampleFrames(c.conv_channels, name="subsample")
        self.projection = layers.Dense(c.embedding_dim, name="subsample_proj")
        self.dropout = layers.Dropout(c.dropout, name="source_dropout")
        self.stack = RecurrentStack(
            c.cell, c.encoder_units, c.encoder_layers, c.bidirectional, c.dropout, c.residual,
            name="encoder",
        )  # fmt: skip

    @property
    def memory_dim(self) -> int:
        return self.stack.output_dim

    def inputs(self) -> list:
        return [
            keras.Input((None, self.config.feature_dim), name="features"),
            keras.Input((None,), dtype="bool", name="frame_mask"),
        ]

    def __call__(self, inputs: list) -> EncoderOutput:
        features, frame_mask = inputs
        x, mask = self.subsample(features, frame_mask)
        x = self.projection(x)
        x = self.dropout(x * keras.ops.cast(mask, x.dtype)[:, :, None])
        memory, states = self.stack(x, mask=mask)
        return EncoderOutput(memory, mask, self.stack.summary(states))
