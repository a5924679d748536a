"""Encoders for non-text sources on the recurrent attention decoder.

- `ImageCaptioner`: Show, Attend and Tell. A Keras Applications CNN (or a small
  plain CNN for tests) turns an image into a grid of feature vectors; the grid,
  with learned position embeddings so the decoder can tell left from right, is
  the attention memory; the initial decoder state comes from its mean.
- `SpeechRecognizer`: Listen, Attend and Spell style. Log-mel frames are
  shortened 4x by convolutional subsampling before the recurrent encoder, so
  attention over long audio stays cheap.

Both reuse `RNNSeq2Seq`'s decoder, bridge, step view and decoding interface; only
the source side differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from s2s_zoo.models.rnn import CELLS, RNNConfig, RNNSeq2Seq

BACKBONES = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "cnn")


@dataclass
class ImageCaptionerConfig(RNNConfig):
    """An RNN attention decoder over a CNN feature grid (`source_vocab_size` is unused)."""

    image_height: int = 32
    image_width: int = 128
    backbone: str = "mobilenet_v3_small"
    backbone_stride: int = 16  # take the deepest backbone layer at this output stride
    backbone_trainable: bool = True  # False: a frozen (e.g. pretrained) feature extractor
    feature_dim: int = 256
    encoder_layers: int = 0  # 0: attend over the projected grid directly (Show-Attend-Tell)
    bidirectional: bool = False

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.image_height % self.backbone_stride or self.image_width % self.backbone_stride:
            raise ValueError("image_height and image_width must be multiples of backbone_stride")
        if self.attention == "none":
            raise ValueError("an image captioner needs attention over the feature grid")
        _check_cells(self)

    @property
    def grid_size(self) -> int:
        return (self.image_height // self.backbone_stride) * (
            self.image_width // self.backbone_stride
        )

    @property
    def memory_dim(self) -> int:
        if self.encoder_layers == 0:
            return self.feature_dim
        return self.encoder_units * (2 if self.bidirectional else 1)


@dataclass
class SpeechRecognizerConfig(RNNConfig):
    """An RNN attention decoder over subsampled log-mel frames."""

    feature_dim: int = 80  # mel bins from the audio front end
    subsampling: str = "conv"  # two stride-2 convolutions: 4x fewer frames
    conv_channels: int = 32
    encoder_layers: int = 2
    bidirectional: bool = True
    cell: str = "lstm"

    def __post_init__(self) -> None:
        if self.subsampling != "conv":
            raise ValueError(f"subsampling must be 'conv', got {self.subsampling!r}")
        if self.attention == "none":
            raise ValueError("a speech recognizer needs attention over the audio frames")
        _check_cells(self)


def _check_cells(config: RNNConfig) -> None:
    if config.cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {config.cell!r}")
    if config.decoder_layers < 1 or config.encoder_layers < 0:
        raise ValueError("decoder_layers must be at least 1 and encoder_layers at least 0")
    if config.input_feeding:
        raise ValueError("input_feeding is only built for text models")


def build_backbone(config: ImageCaptionerConfig) -> keras.Model:
    """A Keras Applications CNN (weights=None, trained here or loaded from a local file),
    cut at its deepest layer with output stride `backbone_stride`."""
    shape = (config.image_height, config.image_width, 3)
    if config.backbone == "cnn":  # small and fast: for tests and tiny configs
        inputs = keras.Input(shape)
        x = inputs
        for i, filters in enumerate((32, 64, 96, 128)[: config.backbone_stride.bit_length() - 1]):
            x = layers.Conv2D(filters, 3, strides=2, padding="same", name=f"cnn_{i}")(x)
            x = layers.BatchNormalization(name=f"cnn_bn_{i}")(x)
            x = layers.Activation("relu")(x)
        return keras.Model(inputs, x, name="backbone")
    apps = keras.applications
    common = {"input_shape": shape, "include_top": False, "weights": None}
    if config.backbone == "mobilenet_v3_small":
        full = apps.MobileNetV3Small(**common, include_preprocessing=False, minimalistic=True)
    elif config.backbone == "mobilenet_v3_large":
        full = apps.MobileNetV3Large(**common, include_preprocessing=False, minimalistic=True)
    else:
        full = apps.EfficientNetB0(**common)
    rows = config.image_height // config.backbone_stride
    cols = config.image_width // config.backbone_stride
    cut = None
    for layer in full.layers:
        out = layer.output.shape
        if len(out) == 4 and out[1] == rows and out[2] == cols:
            cut = layer
    if cut is None:
        raise ValueError(
            f"{config.backbone} has no layer at output stride {config.backbone_stride}"
        )
    return keras.Model(full.input, cut.output, name="backbone")


class GridPositions(layers.Layer):
    """Adds a learned embedding per grid cell: attention alone cannot tell cells apart."""

    def build(self, input_shape) -> None:
        self.table = self.add_weight(
            shape=tuple(input_shape[1:]), initializer="zeros", name="table"
        )

    def call(self, x):
        return x + keras.ops.cast(self.table, x.dtype)[None]


class ImageCaptioner(RNNSeq2Seq):
    """Show, Attend and Tell over a CNN grid; see the module docstring."""

    family = "image_rnn"
    config_class = ImageCaptionerConfig

    def _build_source_layers(self) -> None:
        c = self.config
        self.backbone = build_backbone(c)
        self.backbone.trainable = c.backbone_trainable
        if c.backbone_trainable:
            # Keras Applications use BN momentum 0.999 (for fine-tuning); trained from scratch
            # for a few thousand steps, inference statistics would lag far behind the weights.
            for layer in self.backbone.layers:
                if isinstance(layer, layers.BatchNormalization):
                    layer.momentum = min(layer.momentum, 0.9)
        self.grid_projection = layers.Dense(c.feature_dim, activation="relu", name="grid_proj")
        self.grid_positions = GridPositions(name="grid_positions")

    def _source_inputs(self) -> list:
        c = self.config
        return [keras.Input((c.image_height, c.image_width, 3), name="images")]

    def _embed_source(self, source_inputs):
        c = self.config
        grid = self.backbone(source_inputs[0], training=None if c.backbone_trainable else False)
        x = layers.Reshape((c.grid_size, grid.shape[-1]), name="flatten_grid")(grid)
        x = self.grid_positions(self.grid_projection(x))
        mask = keras.ops.ones_like(x[:, :, 0], dtype="bool")
        return self.dropout(x), mask, False


class SpeechRecognizer(RNNSeq2Seq):
    """LAS-style recognizer; see the module docstring."""

    family = "speech_rnn"
    config_class = SpeechRecognizerConfig

    def _build_source_layers(self) -> None:
        c = self.config
        self.subsample_convs = [
            layers.Conv2D(c.conv_channels, 3, strides=2, padding="valid", name=f"subsample_{i}")
            for i in range(2)
        ]
        self.subsample_projection = layers.Dense(c.embedding_dim, name="subsample_proj")

    def _source_inputs(self) -> list:
        c = self.config
        return [
            keras.Input((None, c.feature_dim), name="features"),
            keras.Input((None,), dtype="bool", name="frame_mask"),
        ]

    def _embed_source(self, source_inputs):
        features, mask = source_inputs
        x = keras.ops.expand_dims(features, -1)
        for conv in self.subsample_convs:
            # Explicit symmetric padding: Keras' "same" pads by the parity of the batch's
            # length, which would shift a short utterance's frames when batched.
            x = keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
            mask = mask[:, ::2]  # output frame i covers input frames 2i-1..2i+1: ceil(T/2)
            x = keras.ops.relu(conv(x))
            # zero padded frames so a longer neighbour in the batch changes nothing
            x = x * keras.ops.cast(mask, x.dtype)[:, :, None, None]
        x = layers.Reshape((-1, x.shape[2] * x.shape[3]), name="merge_channels")(x)
        x = self.subsample_projection(x)
        x = x * keras.ops.cast(mask, x.dtype)[:, :, None]
        return self.dropout(x), mask, True
