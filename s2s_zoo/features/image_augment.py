"""Image augmentation for captioning training batches: affine, blur, noise, colour, JPEG.

Training-time only, like SpecAugment for speech: the tf.data pipeline applies it
to decoded batches (float32 [B, H, W, 3] in the front end's [-1, 1]); the
exported front end never does. Every random draw is a stateless op keyed by a
[2] integer seed, so a batch's augmentation is a pure function of (images,
config, seed): reproducible, and different per batch when the pipeline feeds a
new seed per batch (`batch_seeds`). An image an option does not pick passes that
option unchanged, bit for bit.

The primitives (`affine_transforms`/`apply_affine`, `gaussian_blur`, `jitter`,
`add_noise`, `jpeg_reencode`) take explicit per-image parameters so their
arithmetic can be checked; `augment_images` draws those parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import tensorflow as tf

OPTIONS = ("affine", "blur", "noise", "jitter", "jpeg")
_FILL_MODES = ("REFLECT", "WRAP", "CONSTANT", "NEAREST")


@dataclass(frozen=True)
class ImageAugmentConfig:
    """Per-option probability (per image) and strength; all probabilities 0 = no augmentation.

    Strengths are in pixels, degrees, or the front end's [-1, 1] value units. The
    affine defaults are mild because a caption must stay true: a digit pushed off
    the canvas would make its caption wrong.
    """

    affine_prob: float = 0.0
    scale: tuple[float, float] = (0.9, 1.05)  # zoom factor range
    max_rotation: float = 3.0  # degrees, either way
    max_shear: float = 0.15  # horizontal shear (x += shear * y), either way
    max_translate: float = 0.03  # fraction of width / height, either way
    fill_mode: str = "NEAREST"  # what enters from outside: the border's colour
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.3, 1.5)  # Gaussian sigma range, pixels
    noise_prob: float = 0.0
    noise_std: tuple[float, float] = (0.02, 0.12)  # additive Gaussian std range
    jitter_prob: float = 0.0
    max_brightness: float = 0.2  # added to all channels, either way
    max_contrast: float = 0.3  # contrast factor in [1 - c, 1 + c] about the image mean
    max_colour: float = 0.1  # added per channel, either way
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (15, 90)  # re-encoding quality range, inclusive

    def __post_init__(self) -> None:
        for name in OPTIONS:
            p = getattr(self, f"{name}_prob")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}_prob must be in [0, 1], got {p}")
        for name in ("scale", "blur_sigma", "noise_std", "jpeg_quality"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be a range (low, high) with 0 <= low <= high")
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must lie in [1, 100], got {self.jpeg_quality}")
        for name in ("max_rotation", "max_shear", "max_translate", "max_brightness",
                     "max_contrast", "max_colour"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_contrast >= 1:
            raise ValueError(f"max_contrast must be < 1 (factor stays positive), got "
                             f"{self.max_contrast}")  # fmt: skip
        if self.fill_mode not in _FILL_MODES:
            raise ValueError(f"fill_mode must be one of {_FILL_MODES}, got {self.fill_mode!r}")

    @classmethod
    def from_names(
        cls, names: str | Sequence[str], probability: float = 0.5, **strengths
    ) -> ImageAugmentConfig:
        """Options by name, e.g. "affine,blur,noise,jitter,jpeg", each on with `probability`
        ("" or "none": nothing); `strengths` override other fields."""
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        names = [n for n in names if n and n != "none"]
        unknown = sorted(set(names) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown image augmentation {unknown}; known: {', '.join(OPTIONS)}")
        known = {f.name for f in fields(cls)}
        bad = sorted(set(strengths) - known)
        if bad:
            raise ValueError(f"unknown ImageAugmentConfig fields {bad}")
        return cls(**{f"{n}_prob": probability for n in names}, **strengths)

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(n for n in OPTIONS if getattr(self, f"{n}_prob") > 0)

    def only(self, name: str) -> ImageAugmentConfig:
        """This config with every option but `name` switched off (for tests and plots)."""
        return replace(self, **{f"{n}_prob": 0.0 for n in OPTIONS if n != name})


# -- primitives with explicit parameters ---------------------------------------------------------


def affine_transforms(
    scale: tf.Tensor,
    rotation: tf.Tensor,
    shear: tf.Tensor,
    translate_x: tf.Tensor,
    translate_y: tf.Tensor,
    height: int | tf.Tensor,
    width: int | tf.Tensor,
) -> tf.Tensor:
    """[B] parameters -> [B, 8] rows for ImageProjectiveTransformV3.

    The content moves by p -> c + t + R(rotation) Sh(shear) S(scale) (p - c) about
    the centre c (pixel units, x right, y down, rotation in radians); the op
    wants the inverse (output pixel -> input point), computed in closed form.
    """
    scale, rotation, shear, tx, ty = (
        tf.cast(v, tf.float32) for v in (scale, rotation, shear, translate_x, translate_y)
    )
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    cos, sin = tf.cos(rotation), tf.sin(rotation)
    # forward linear part A = R @ Sh @ S, with Sh = [[1, shear], [0, 1]], S = scale * I
    a = scale * cos
    b = scale * (cos * shear - sin)
    c = scale * sin
    d = scale * (sin * shear + cos)
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    # input = A^-1 (output - c - t) + c
    ox, oy = cx + tx, cy + ty
    a2 = cx - (ia * ox + ib * oy)
    b2 = cy - (ic * ox + id_ * oy)
    zero = tf.zeros_like(a)
    return tf.stack([ia, ib, a2, ic, id_, b2, zero, zero], axis=1)


def apply_affine(images: tf.Tensor, transforms: tf.Tensor, fill_mode: str = "NEAREST") -> tf.Tensor:
    """Warp [B, H, W, C] float images by [B, 8] transforms (bilinear)."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.cast(transforms, tf.float32),
        output_shape=tf.shape(images)[1:3],
        fill_value=tf.constant(0.0, tf.float32),
        interpolation="BILINEAR",
        fill_mode=fill_mode,
    )


def gaussian_kernels(sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """[B] sigmas -> [B, 2 * radius + 1] normalised 1-D Gaussians (sigma <= 0: a unit impulse)."""
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)[None, :]
    sigma = tf.maximum(tf.cast(sigma, tf.float32), 1e-6)[:, None]
    weights = tf.exp(-(offsets**2) / (2.0 * sigma**2))
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def gaussian_blur(images: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """Separable Gaussian blur with a per-image sigma ([B]); borders reflect.

    Images go into the channel axis ([1, H, W, B*C]) so one depthwise convolution
    applies each image its own kernel.
    """
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    kernels = tf.repeat(gaussian_kernels(sigma, radius), channels, axis=0)  # [B*C, K]
    stacked = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [1, height, width, -1])
    padded = tf.pad(stacked, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    across = tf.transpose(kernels)[None, :, :, None]  # [1, K, B*C, 1]
    down = tf.transpose(kernels)[:, None, :, None]  # [K, 1, B*C, 1]
    out = tf.nn.depthwise_conv2d(padded, across, [1, 1, 1, 1], "VALID")
    out = tf.nn.depthwise_conv2d(out, down, [1, 1, 1, 1], "VALID")
    out = tf.reshape(out, [height, width, batch, channels])
    return tf.transpose(out, [2, 0, 1, 3])


def jitter(
    images: tf.Tensor, brightness: tf.Tensor, contrast: tf.Tensor, colour: tf.Tensor
) -> tf.Tensor:
    """x + (contrast - 1)(x - mean) + brightness + colour[channel], clipped to [-1, 1].

    brightness, contrast: [B]; colour: [B, C]; the mean is over each whole image.
    Written so that contrast 1 and colour 0 add exactly `brightness`.
    """
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    contrast = tf.cast(contrast, tf.float32)[:, None, None, None]
    shift = (
        tf.cast(brightness, tf.float32)[:, None, None, None]
        + tf.cast(colour, tf.float32)[:, None, None, :]
    )
    return tf.clip_by_value(images + (contrast - 1.0) * (images - mean) + shift, -1.0, 1.0)


def add_noise(images: tf.Tensor, std: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Additive Gaussian noise with a per-image std ([B]), clipped to [-1, 1]."""
    noise = tf.random.stateless_normal(tf.shape(images), seed=seed)
    return tf.clip_by_value(
        images + tf.cast(std, tf.float32)[:, None, None, None] * noise, -1.0, 1.0
    )


def jpeg_reencode(
    images: tf.Tensor, quality: tf.Tensor, apply: tf.Tensor | None = None
) -> tf.Tensor:
    """JPEG-compress and decode each image at its own quality ([B] int); images with
    `apply` False ([B] bool) are returned untouched and not encoded."""
    quality = tf.cast(quality, tf.int32)
    if apply is None:
        apply = tf.ones_like(quality, tf.bool)

    def one(item):
        image, q, on = item

        def encode():
            unit = tf.clip_by_value((image + 1.0) / 2.0, 0.0, 1.0)
            return tf.image.adjust_jpeg_quality(unit, q) * 2.0 - 1.0

        return tf.cond(on, encode, lambda: image)

    return tf.map_fn(one, (images, quality, apply), fn_output_signature=images.dtype)


# -- the random driver ---------------------------------------------------------------------------


def _seed_pair(seed: int | tf.Tensor) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 0:
        return tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return tf.ensure_shape(tf.cast(seed, tf.int64), [2])


def augment_images(
    images: tf.Tensor, config: ImageAugmentConfig, seed: int | tf.Tensor
) -> tf.Tensor:
    """Augment a float32 [B, H, W, 3] batch in [-1, 1], in order affine, blur, jitter,
    noise, JPEG; each option picks each image with its probability.

    `seed` is a Python int or a [2] integer tensor (e.g. from `batch_seeds`); the
    same images, config and seed always give the same output.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    static_shape = images.shape
    keys = tf.random.experimental.stateless_split(_seed_pair(seed), num=2 * len(OPTIONS) + 1)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]

    def draw(index: int, extra: Sequence[int] = (), low: float = 0.0, high: float = 1.0):
        size = tf.concat([[batch], tf.constant(list(extra), tf.int32)], axis=0)
        return tf.random.stateless_uniform(size, keys[index], low, high)

    def picked(index: int, probability: float) -> tf.Tensor:
        return draw(index) < probability

    c = config
    if c.affine_prob > 0:
        on = picked(0, c.affine_prob)
        u = draw(1, [5], -1.0, 1.0)
        low, high = c.scale
        scale = tf.where(on, low + (u[:, 0] + 1.0) / 2.0 * (high - low), 1.0)
        rotation = tf.where(on, u[:, 1] * (c.max_rotation * math.pi / 180.0), 0.0)
        shear = tf.where(on, u[:, 2] * c.max_shear, 0.0)
        tx = tf.where(on, u[:, 3] * c.max_translate * tf.cast(width, tf.float32), 0.0)
        ty = tf.where(on, u[:, 4] * c.max_translate * tf.cast(height, tf.float32), 0.0)
        transforms = affine_transforms(scale, rotation, shear, tx, ty, height, width)
        images = apply_affine(images, transforms, c.fill_mode)
    if c.blur_prob > 0:
        on = picked(2, c.blur_prob)
        sigma = tf.where(on, draw(3, (), *c.blur_sigma), 0.0)
        images = gaussian_blur(images, sigma, radius=max(1, math.ceil(3 * c.blur_sigma[1])))
    if c.jitter_prob > 0:
        on = picked(4, c.jitter_prob)
        u = draw(5, [5], -1.0, 1.0)
        brightness = tf.where(on, u[:, 0] * c.max_brightness, 0.0)
        contrast = tf.where(on, 1.0 + u[:, 1] * c.max_contrast, 1.0)
        colour = tf.where(on[:, None], u[:, 2:] * c.max_colour, 0.0)
        images = jitter(images, brightness, contrast, colour)
    if c.noise_prob > 0:
        on = picked(6, c.noise_prob)
        std = tf.where(on, draw(7, (), *c.noise_std), 0.0)
        images = add_noise(images, std, keys[10])
    if c.jpeg_prob > 0:
        on = picked(8, c.jpeg_prob)
        low, high = c.jpeg_quality
        quality = tf.minimum(tf.cast(draw(9, (), low, high + 1), tf.int32), high)
        images = jpeg_reencode(images, quality, on)
    return tf.ensure_shape(images, static_shape)


def batch_seeds(seed: int) -> tf.data.Dataset:
    """An endless dataset of [2] int64 seeds, new each epoch, the same for the same `seed`:
    zip it with the batched dataset to give every batch its own augmentation."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
