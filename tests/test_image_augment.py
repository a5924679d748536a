"""Image augmentation: the arithmetic of each primitive, and the seeded random driver."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.features.image_augment import (
    OPTIONS,
    ImageAugmentConfig,
    add_noise,
    affine_transforms,
    apply_affine,
    augment_images,
    batch_seeds,
    gaussian_blur,
    gaussian_kernels,
    jitter,
    jpeg_reencode,
)


def _random_images(batch=3, height=9, width=11, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (batch, height, width, 3)).astype(np.float32)


def _affine(images, scale=1.0, rotation=0.0, shear=0.0, tx=0.0, ty=0.0, fill="CONSTANT"):
    b, h, w = images.shape[:3]
    params = [tf.fill([b], float(v)) for v in (scale, rotation, shear, tx, ty)]
    return apply_affine(tf.constant(images), affine_transforms(*params, h, w), fill).numpy()


def test_affine_with_identity_parameters_is_the_identity():
    images = _random_images()
    assert np.array_equal(_affine(images), images)


@pytest.mark.parametrize("tx, ty", [(3, 0), (-2, 0), (0, 2), (4, -1)])
def test_affine_translation_shifts_by_whole_pixels(tx, ty):
    images = _random_images(height=10, width=12)
    out = _affine(images, tx=tx, ty=ty)
    h, w = images.shape[1:3]
    src = images[:, max(0, -ty) : h - max(0, ty), max(0, -tx) : w - max(0, tx)]
    dst = out[:, max(0, ty) : h - max(0, -ty), max(0, tx) : w - max(0, -tx)]
    assert np.array_equal(dst, src)
    # what moved in from outside is the constant fill, 0
    if tx > 0:
        assert not out[:, :, :tx].any()
    if ty > 0:
        assert not out[:, :ty].any()


def test_affine_rotation_scale_and_shear_about_the_centre():
    images = _random_images(height=9, width=9)
    # +90 degrees, x right and y down: a point right of the centre goes below it (clockwise)
    rotated = _affine(images, rotation=math.pi / 2)
    np.testing.assert_allclose(rotated, np.rot90(images, k=-1, axes=(1, 2)), atol=1e-5)
    # zoom 2 about the centre (4, 4): the pixel at offset (dy, dx) lands at (2 dy, 2 dx)
    zoomed = _affine(images, scale=2.0)
    for dy, dx in [(0, 0), (1, -2), (-2, 1), (2, 2)]:
        np.testing.assert_allclose(zoomed[:, 4 + 2 * dy, 4 + 2 * dx], images[:, 4 + dy, 4 + dx])
    # shear 1: row y moves right by (y - 4) pixels
    sheared = _affine(images, shear=1.0)
    np.testing.assert_array_equal(sheared[:, 6, 2:], images[:, 6, :-2])
    np.testing.assert_array_equal(sheared[:, 3, :-1], images[:, 3, 1:])


def test_gaussian_blur_matches_a_brute_force_kernel():
    radius, sigmas = 4, [0.0, 0.8, 1.5]
    impulse = np.zeros((3, 11, 11, 3), np.float32)
    impulse[:, 5, 5, :] = 1.0
    out = gaussian_blur(tf.constant(impulse), tf.constant(sigmas), radius).numpy()
    assert np.array_equal(out[0], impulse[0])  # sigma 0 is exactly the identity
    x = np.arange(-radius, radius + 1)
    for i, sigma in enumerate(sigmas[1:], start=1):
        k = np.exp(-(x**2) / (2 * sigma**2))
        k /= k.sum()
        expected = np.zeros((11, 11))
        expected[1:10, 1:10] = np.outer(k, k)
        for c in range(3):
            np.testing.assert_allclose(out[i, :, :, c], expected, atol=1e-6)
        # spread: the impulse response's variance along x is the kernel's (close to sigma^2)
        mass = out[i, 5, :, 0] / out[i, 5, :, 0].sum()
        var = float((mass * (np.arange(11) - 5) ** 2).sum())
        assert var == pytest.approx(float((k * x**2).sum()), rel=1e-4)
        assert var == pytest.approx(sigma**2, rel=0.05)
    flat = np.full((2, 8, 8, 3), 0.3, np.float32)
    np.testing.assert_allclose(gaussian_blur(flat, tf.constant([1.0, 1.5]), 4), flat, atol=1e-6)
    assert gaussian_kernels(tf.constant([0.0]), 2).numpy().tolist() == [[0, 0, 1, 0, 0]]


def test_noise_has_the_requested_std():
    images = np.zeros((3, 64, 64, 3), np.float32)
    stds = [0.0, 0.05, 0.1]
    out = add_noise(images, tf.constant(stds), tf.constant([1, 2], tf.int64)).numpy()
    assert np.array_equal(out[0], images[0])
    for i in (1, 2):
        assert out[i].std() == pytest.approx(stds[i], rel=0.03)
        assert abs(out[i].mean()) < 0.003
    again = add_noise(images, tf.constant(stds), tf.constant([1, 2], tf.int64)).numpy()
    assert np.array_equal(out, again)


def test_jitter_brightness_is_exact_and_contrast_scales_about_the_mean():
    images = _random_images(batch=2) * 0.5
    b = np.array([0.25, -0.125], np.float32)
    out = jitter(images, b, tf.ones([2]), tf.zeros([2, 3])).numpy()
    assert np.array_equal(out, np.clip(images + b[:, None, None, None], -1, 1))
    big = jitter(images, tf.constant([0.8, -0.8]), tf.ones([2]), tf.zeros([2, 3])).numpy()
    assert big.max() <= 1.0 and big.min() >= -1.0 and (big[0] == 1.0).any()
    out = jitter(images, tf.zeros([2]), tf.constant([0.5, 1.5]), tf.zeros([2, 3])).numpy()
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    factor = np.array([0.5, 1.5])[:, None, None, None]
    np.testing.assert_allclose(out - mean, (images - mean) * factor, atol=1e-6)
    colour = np.array([[0.1, 0.0, -0.1], [0.0, 0.05, 0.0]], np.float32)
    out = jitter(images, tf.zeros([2]), tf.ones([2]), colour).numpy()
    np.testing.assert_allclose(out, images + colour[:, None, None, :], atol=1e-7)


def test_jpeg_reencoding_changes_little_and_more_at_low_quality():
    y, x = np.mgrid[0:32, 0:64]
    smooth = np.stack([x / 63, y / 31, (x + y) / 94], -1) * 2 - 1
    images = np.stack([smooth] * 3).astype(np.float32)
    images[:, 10:20, 20:40] *= -1  # an edge for the DCT to blur
    out = jpeg_reencode(images, tf.constant([10, 95, 50]), tf.constant([True, True, False])).numpy()
    assert np.array_equal(out[2], images[2])
    errors = np.abs(out[:2] - images[:2]).mean(axis=(1, 2, 3))
    assert 0.002 < errors[1] < errors[0] < 0.08


def test_config_names_and_checks():
    config = ImageAugmentConfig.from_names("affine, jpeg", probability=0.3, max_rotation=5.0)
    assert config.enabled == ("affine", "jpeg")
    assert config.affine_prob == config.jpeg_prob == 0.3 and config.max_rotation == 5.0
    assert ImageAugmentConfig.from_names("none").enabled == ()
    assert ImageAugmentConfig.from_names(list(OPTIONS)).enabled == OPTIONS
    with pytest.raises(ValueError, match="unknown image augmentation.*'sharpen'"):
        ImageAugmentConfig.from_names("blur,sharpen")
    with pytest.raises(ValueError, match="unknown ImageAugmentConfig fields"):
        ImageAugmentConfig.from_names("blur", sigma=2)
    with pytest.raises(ValueError, match="noise_prob"):
        ImageAugmentConfig(noise_prob=1.5)
    with pytest.raises(ValueError, match="jpeg_quality"):
        ImageAugmentConfig(jpeg_quality=(0, 50))


def test_augment_is_seeded_and_each_option_picks_images_with_its_probability():
    images = tf.constant(_random_images(batch=120, height=16, width=24) * 0.8)
    assert np.array_equal(augment_images(images, ImageAugmentConfig(), 1).numpy(), images.numpy())
    everything = ImageAugmentConfig.from_names(OPTIONS)
    a = augment_images(images, everything, 7).numpy()
    assert np.array_equal(a, augment_images(images, everything, 7).numpy())
    assert np.array_equal(a, augment_images(images, everything, tf.constant([7, 0])).numpy())
    assert not np.array_equal(a, augment_images(images, everything, 8).numpy())
    assert a.min() >= -1.0 and a.max() <= 1.0
    for name in OPTIONS:
        out = augment_images(images, everything.only(name), 3).numpy()
        changed = (out != images.numpy()).any(axis=(1, 2, 3))
        # 120 images at p = 0.5: 60 +- 5.5 (binomial sd); untouched ones are bit-identical
        assert 40 <= changed.sum() <= 80, (name, changed.sum())


def test_batch_seeds_give_new_augmentation_per_epoch_and_the_same_per_run():
    images = _random_images(batch=4, height=8, width=8)
    config = ImageAugmentConfig.from_names("noise", probability=1.0)

    def pipeline():
        ds = tf.data.Dataset.from_tensor_slices(images).batch(2)
        ds = tf.data.Dataset.zip((ds, batch_seeds(5)))
        return ds.map(lambda batch, seed: augment_images(batch, config, seed))

    def epochs(ds):
        return [np.concatenate([b.numpy() for b in ds]) for _ in range(2)]

    first, second = epochs(pipeline())
    assert not np.array_equal(first, second)
    assert not np.array_equal(first[:2] - images[:2], first[2:] - images[2:])
    again = epochs(pipeline())
    assert np.array_equal(again[0], first) and np.array_equal(again[1], second)
