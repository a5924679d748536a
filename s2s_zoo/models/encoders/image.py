"""Image encoder (Show, Attend and Tell): a CNN feature grid the decoder attends over.

A Keras Applications CNN (or a small plain CNN for tests) turns an image into a
grid of feature vectors; the grid, with learned position embeddings so the
decoder can tell left from right, is the memory. Optional recurrent layers read
the grid in raster order.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from s2s_zoo.layers.recurrent import RecurrentStack, check_cell
from s2s_zoo.models.base import Encoder, EncoderOutput, register_encoder

BACKBONES = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "cnn")


@dataclass
class ImageEncoderConfig:
    """A CNN grid encoder for fixed-size images."""

    image_height: int = 32
    image_width: int = 128
    backbone: str = "mobilenet_v3_small"
    backbone_stride: int = 16  # take the deepest backbone layer at this output stride
    backbone_trainable: bool = True  # False: a frozen (e.g. pretrained) feature extractor
    feature_dim: int = 256
    dropout: float = 0.0
    encoder_layers: int = 0  # 0: attend over the projected grid directly (Show-Attend-Tell)
    encoder_units: int = 128
    bidirectional: bool = False
    cell: str = "lstm"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.image_height % self.backbone_stride or self.image_width % self.backbone_stride:
            raise ValueError("image_height and image_width must be multiples of backbone_stride")
        if self.encoder_layers < 0:
            raise ValueError("encoder_layers must be at least 0")
        check_cell(self.cell)

    @property
    def grid_size(self) -> int:
        return (self.image_height // self.backbone_stride) * (
            self.image_width // self.backbone_stride
        )


def build_backbone(config: ImageEncoderConfig) -> keras.Model:
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
    """Adds a learned embedding per grid cell: attention alone cannot tell cells apart.

    >>> tuple(GridPositions()(keras.ops.ones((2, 6, 4))).shape)  # table starts at zero
    (2, 6, 4)
    """

    def build(self, input_shape) -> None:
        self.table = self.add_weight(
            shape=tuple(input_shape[1:]), initializer="zeros", name="table"
        )

    def call(self, x):
        return x + keras.ops.cast(self.table, x.dtype)[None]


@register_encoder("image_cnn")
class ImageEncoder(Encoder):
    """CNN grid (+ optional RNN) encoder; see the module docstring.

    >>> enc = ImageEncoder(ImageEncoderConfig(image_height=32, image_width=64,
    ...                                      backbone="cnn", feature_dim=8))
    >>> tuple(enc(enc.inputs()).memory.shape)
    (None, 8, 8)
    """

    config_class = ImageEncoderConfig
    source_features = "image"

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__(config)
        c = config
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
        self.dropout = layers.Dropout(c.dropout, name="source_dropout")
        self.stack = None
        if c.encoder_layers:
            self.stack = RecurrentStack(
                c.cell, c.encoder_units, c.encoder_layers, c.bidirectional, c.dropout,
                name="encoder",
            )  # fmt: skip

    @property
    def memory_dim(self) -> int:
        return self.stack.output_dim if self.stack else self.config.feature_dim

    def inputs(self) -> list:
        c = self.config
        return [keras.Input((c.image_height, c.image_width, 3), name="images")]

    def __call__(self, inputs: list) -> EncoderOutput:
        c = self.config
        grid = self.backbone(inputs[0], training=None if c.backbone_trainable else False)
        x = layers.Reshape((c.grid_size, grid.shape[-1]), name="flatten_grid")(grid)
        x = self.dropout(self.grid_positions(self.grid_projection(x)))
        mask = keras.ops.ones_like(x[:, :, 0], dtype="bool")
        if self.stack is None:
            return EncoderOutput(x, mask, None)
        memory, states = self.stack(x)
        return EncoderOutput(memory, mask, self.stack.summary(states))
