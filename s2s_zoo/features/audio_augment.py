"""Acoustic augmentation of training waveforms, in TF ops, before feature extraction.

A recogniser trained on clean synthetic speech learns the synthesizers' exact tempo,
level and anechoic, noiseless signal. Perturbing the training waveforms removes those
shortcuts: speed perturbation (Ko et al. 2015: factors 0.9/1.0/1.1, which move tempo
and pitch together), additive white/pink/user noise at a random SNR, a random gain,
and a synthetic room reverberation. Each is a named option of `AudioAugmentConfig`;
`augment_waveforms` applies the enabled ones to a padded batch.

Training batches only: the exported serving graph never runs this, so nothing here
needs to be servable, but it is all core TF ops so it runs inside a tf.data `map`
without Python. Randomness is stateless (`tf.random.stateless_*` with seeds folded
from one seed), so a seed reproduces a batch's augmentation exactly; padding stays
zero and lengths follow speed changes.

Wiring, in a tf.data pipeline of padded batches `(waves [B, T] float32, lengths [B], ...)`,
before `front_end.features(waves, lengths)`:

    ds = augment_batches(ds, AudioAugmentConfig.from_names("speed,noise,gain,reverb"), seed)

(or call `augment_waveforms(waves, lengths, config, seed=(seed, step))` in the map
function with a per-batch `step`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = [
    "AUGMENTATIONS",
    "AudioAugmentConfig",
    "add_noise",
    "apply_gain",
    "augment_batches",
    "augment_waveforms",
    "pink_noise",
    "reverberate",
    "speed_perturb",
    "synthetic_rir",
]

AUGMENTATIONS = ("speed", "noise", "gain", "reverb")  # the order they are applied in
_NOISE_KINDS = ("white", "pink", "waveforms")
_LN_1000 = math.log(1000.0)  # 60 dB of energy is a factor 1000 of amplitude


@dataclass(frozen=True)
class AudioAugmentConfig:
    """Which augmentations run, and their ranges (all ranges inclusive, drawn uniformly).

    Output samples are clipped to [-1, 1] (the range 16-bit WAVs and the front end
    use), so a large gain or loud noise saturates rather than growing without bound.
    """

    sample_rate: int = 16000
    # speed perturbation: a factor per utterance; > 1 is faster (shorter, higher pitch)
    speed: bool = False
    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    # additive noise at a signal-to-noise ratio measured over the utterance's samples
    noise: bool = False
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    noise_kinds: tuple[str, ...] = ("white", "pink")  # add "waveforms" to use noise_waveforms
    noise_waveforms: tuple[np.ndarray, ...] = field(default=(), compare=False, repr=False)
    # random gain in dB (applied after noise, so it scales speech and noise together)
    gain: bool = False
    gain_db: tuple[float, float] = (-6.0, 6.0)
    # reverberation: direct path plus an exponentially decaying noise tail
    reverb: bool = False
    reverb_probability: float = 0.3
    rt60: tuple[float, float] = (0.1, 0.5)  # seconds for the tail's energy to fall 60 dB
    tail_level_db: tuple[float, float] = (-30.0, -20.0)  # tail's first sample vs the direct

    def __post_init__(self) -> None:
        def check_range(name: str, low: float = -math.inf, high: float = math.inf) -> None:
            bounds = getattr(self, name)
            if len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high:
                raise ValueError(
                    f"AudioAugmentConfig.{name}: need ({low} <=) lo <= hi, got {bounds}"
                )

        if self.sample_rate < 1:
            raise ValueError(f"AudioAugmentConfig.sample_rate must be positive: {self.sample_rate}")
        if not self.speed_factors or min(self.speed_factors) <= 0:
            raise ValueError(f"AudioAugmentConfig.speed_factors must be > 0: {self.speed_factors}")
        for name in ("noise_probability", "reverb_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AudioAugmentConfig.{name} must be in [0, 1]")
        check_range("snr_db")
        check_range("gain_db")
        check_range("rt60", 0.0, 10.0)
        check_range("tail_level_db", high=0.0)
        unknown = set(self.noise_kinds) - set(_NOISE_KINDS)
        if not self.noise_kinds or unknown:
            raise ValueError(
                f"AudioAugmentConfig.noise_kinds: use some of {_NOISE_KINDS}, "
                f"got {self.noise_kinds}"
            )
        if "waveforms" in self.noise_kinds and not self.noise_waveforms:
            raise ValueError("AudioAugmentConfig: noise kind 'waveforms' needs noise_waveforms")
        for i, clip in enumerate(self.noise_waveforms):
            clip = np.asarray(clip)
            if clip.ndim != 1 or clip.size == 0 or not np.all(np.isfinite(clip)):
                raise ValueError(
                    f"AudioAugmentConfig.noise_waveforms[{i}]: need finite 1-D samples"
                )

    @classmethod
    def from_names(cls, names: str | Sequence[str], **overrides: Any) -> AudioAugmentConfig:
        """Enable the comma-separated `names` ("speed,noise,gain,reverb"; "" or "none": none).

        `overrides` set any other field, e.g. `snr_db=(0, 20)`.
        """
        if isinstance(names, str):
            names = [] if names.strip().lower() in ("", "none") else names.split(",")
        chosen = [name.strip().lower() for name in names]
        unknown = sorted(set(chosen) - set(AUGMENTATIONS))
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; choose from {AUGMENTATIONS}")
        known = {f.name for f in fields(cls)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise ValueError(f"unknown AudioAugmentConfig field(s) {bad}")
        return cls(**{name: True for name in chosen}, **overrides)

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in AUGMENTATIONS if getattr(self, name))


# -- helpers -------------------------------------------------------------------------------


def _seed_pair(seed: int | Sequence[int] | tf.Tensor) -> tf.Tensor:
    """Any int seed, or a pair, as the shape-[2] int64 seed stateless ops take."""
    if isinstance(seed, (list, tuple)):  # e.g. (python int, int64 batch index)
        seed = tf.stack([tf.cast(part, tf.int64) for part in seed])
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank not in (0, 1) or (seed.shape.rank == 1 and seed.shape[0] not in (2, None)):
        raise ValueError(f"seed must be an int or a pair of ints, got shape {seed.shape}")
    return tf.stack([seed, tf.zeros_like(seed)]) if seed.shape.rank == 0 else seed


def _fold(seed: tf.Tensor, stream: int) -> tf.Tensor:
    """An independent seed per random draw: each option keeps its draws when others change."""
    return tf.random.experimental.stateless_fold_in(seed, stream)


def _uniform(seed: tf.Tensor, batch: tf.Tensor, bounds: tuple[float, float]) -> tf.Tensor:
    u = tf.random.stateless_uniform([batch], seed, dtype=tf.float32)
    return bounds[0] + (bounds[1] - bounds[0]) * u


def _coin(seed: tf.Tensor, batch: tf.Tensor, probability: float) -> tf.Tensor:
    return tf.random.stateless_uniform([batch], seed) < probability


def _valid(lengths: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """[B, width] float32: 1 on each utterance's samples, 0 on padding."""
    return tf.sequence_mask(lengths, width, dtype=tf.float32)


# -- the augmentations ---------------------------------------------------------------------


def speed_perturb(
    waves: tf.Tensor, lengths: tf.Tensor, factors: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Play each utterance `factors[b]` times faster: length round(L / f), pitch x f.

    Resampling by linear interpolation (output sample n reads input position n * f),
    which needs only a gather; its mild low-pass is harmless for augmentation, and
    speech has little energy near 8 kHz to alias when speeding up. A factor of 1 is
    the identity. Samples past an utterance's end count as zero.
    """
    waves = tf.convert_to_tensor(waves, tf.float32)
    lengths = tf.cast(lengths, tf.int32)
    factors64 = tf.cast(factors, tf.float64)
    new_lengths = tf.cast(tf.round(tf.cast(lengths, tf.float64) / factors64), tf.int32)
    width = tf.maximum(tf.reduce_max(new_lengths), 0)
    positions = tf.range(width, dtype=tf.float64)[None, :] * factors64[:, None]
    below = tf.floor(positions)
    frac = tf.cast(positions - below, tf.float32)
    below = tf.cast(below, tf.int32)
    last = tf.shape(waves)[1] - 1

    def read(index: tf.Tensor) -> tf.Tensor:
        values = tf.gather(waves, tf.clip_by_value(index, 0, last), axis=1, batch_dims=1)
        return tf.where(index < lengths[:, None], values, 0.0)

    out = (1.0 - frac) * read(below) + frac * read(below + 1)
    return out * _valid(new_lengths, width), new_lengths


def pink_noise(seed: tf.Tensor, batch: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """[batch, width] noise whose power falls as 1/f: white noise shaped by 1/sqrt(f)
    in the frequency domain (no DC), scaled to unit variance per row."""
    white = tf.random.stateless_normal([batch, width], seed)
    spectrum = tf.signal.rfft(white, fft_length=[width])
    bins = tf.range(tf.shape(spectrum)[1], dtype=tf.float32)
    shape = tf.where(bins > 0, tf.math.rsqrt(tf.maximum(bins, 1.0)), 0.0)
    pink = tf.signal.irfft(spectrum * tf.cast(shape, tf.complex64)[None, :], fft_length=[width])
    return pink * tf.math.rsqrt(tf.reduce_mean(tf.square(pink), axis=1, keepdims=True) + 1e-20)


def _clip_noise(
    seed: tf.Tensor, clips: Sequence[np.ndarray], batch: tf.Tensor, width: tf.Tensor
) -> tf.Tensor:
    """[batch, width]: a random clip per row from a random offset, looped when short.

    The clips are one flat buffer with start offsets (not a table padded to the longest
    clip), so the graph holds each sample once and a batch gathers only what it uses.
    """
    sizes = [int(np.asarray(c).size) for c in clips]
    flat = tf.constant(np.concatenate([np.asarray(c, np.float32) for c in clips]))
    starts_t = tf.constant(np.cumsum([0, *sizes[:-1]]), tf.int32)
    sizes_t = tf.constant(sizes, tf.int32)
    which = tf.random.stateless_uniform([batch], _fold(seed, 0), 0, len(clips), tf.int32)
    size = tf.gather(sizes_t, which)
    offset = tf.random.stateless_uniform([batch], _fold(seed, 1), 0, 2**30, tf.int32) % size
    index = (offset[:, None] + tf.range(width)[None, :]) % size[:, None]
    return tf.gather(flat, tf.gather(starts_t, which)[:, None] + index)


def add_noise(
    waves: tf.Tensor,
    lengths: tf.Tensor,
    noise: tf.Tensor,
    snr_db: tf.Tensor,
) -> tf.Tensor:
    """waves + noise scaled so that, over each utterance's samples, the signal-to-noise
    power ratio is `snr_db[b]`. A silent utterance gets no noise; padding stays zero."""
    mask = _valid(lengths, tf.shape(waves)[1])
    signal_power = tf.reduce_sum(tf.square(waves) * mask, axis=1)
    noise = noise * mask
    noise_power = tf.reduce_sum(tf.square(noise), axis=1)
    target = signal_power * tf.pow(10.0, -tf.cast(snr_db, tf.float32) / 10.0)
    scale = tf.math.divide_no_nan(tf.sqrt(target), tf.sqrt(noise_power))
    return waves + scale[:, None] * noise


def apply_gain(waves: tf.Tensor, gain_db: tf.Tensor) -> tf.Tensor:
    """waves x 10^(gain_db / 20) per utterance (+6.02 dB doubles the amplitude)."""
    return waves * tf.pow(10.0, tf.cast(gain_db, tf.float32) / 20.0)[:, None]


def synthetic_rir(
    seed: tf.Tensor,
    rt60: tf.Tensor,
    tail_level_db: tf.Tensor,
    length: int,
    sample_rate: int,
) -> tf.Tensor:
    """[B, length] room impulse responses: h[0] = 1 (the direct sound), then Gaussian
    noise under the envelope g * exp(-3 ln(10) n / (rt60 * sample_rate)), so the tail's
    energy falls 60 dB in rt60 seconds; g = 10^(tail_level_db / 20). The tail's energy
    is about g^2 * rt60 * sample_rate / (6 ln 10), so as rt60 -> 0 the response tends to
    a unit impulse (the identity)."""
    rt60 = tf.cast(rt60, tf.float32)
    batch = tf.shape(rt60)[0]
    steps = tf.range(length, dtype=tf.float32)[None, :]
    rate = _LN_1000 / tf.maximum(rt60 * float(sample_rate), 1e-6)
    level = tf.pow(10.0, tf.cast(tail_level_db, tf.float32) / 20.0)
    tail = level[:, None] * tf.exp(-steps * rate[:, None])
    tail *= tf.random.stateless_normal([batch, length], seed)
    direct = tf.one_hot(tf.zeros([batch], tf.int32), length)
    return tf.where(steps > 0, tail, direct)


def reverberate(waves: tf.Tensor, lengths: tf.Tensor, rir: tf.Tensor) -> tf.Tensor:
    """Each utterance convolved with its impulse response (FFT convolution), cut to the
    utterance's own length, padding kept zero."""
    width = tf.shape(waves)[1]
    size = width + tf.shape(rir)[1] - 1
    fft_length = tf.cast(
        2 ** tf.math.ceil(tf.math.log(tf.cast(size, tf.float32)) / math.log(2)), tf.int32
    )
    fft_length = tf.maximum(fft_length, size)  # guard against float rounding
    wet = tf.signal.irfft(
        tf.signal.rfft(waves, [fft_length]) * tf.signal.rfft(rir, [fft_length]), [fft_length]
    )
    return wet[:, :width] * _valid(lengths, width)


def augment_waveforms(
    waves: tf.Tensor,
    lengths: tf.Tensor,
    config: AudioAugmentConfig,
    seed: int | Sequence[int] | tf.Tensor = 0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Apply the enabled augmentations to a padded batch: -> (waves, lengths).

    `waves` is float32 [B, T] at `config.sample_rate` with samples past `lengths[b]`
    zero; so is the result (T changes with speed). Order: speed, reverb, noise, gain,
    then clipping to [-1, 1]. `seed` (an int or a pair, e.g. (seed, batch_index))
    fixes every draw; each option draws from its own stream.
    """
    waves = tf.convert_to_tensor(waves, tf.float32)
    lengths = tf.cast(lengths, tf.int32)
    if not config.enabled:
        return waves, lengths
    seed = _seed_pair(seed)
    batch = tf.shape(waves)[0]
    if config.speed:
        options = tf.constant(config.speed_factors, tf.float64)
        pick = tf.random.stateless_uniform(
            [batch], _fold(seed, 1), 0, len(config.speed_factors), tf.int32
        )
        waves, lengths = speed_perturb(waves, lengths, tf.gather(options, pick))
    width = tf.shape(waves)[1]
    if config.reverb:
        taps = int(math.ceil(config.rt60[1] * config.sample_rate)) + 1
        rt60 = _uniform(_fold(seed, 2), batch, config.rt60)
        level = _uniform(_fold(seed, 3), batch, config.tail_level_db)
        rir = synthetic_rir(_fold(seed, 4), rt60, level, taps, config.sample_rate)
        wet = reverberate(waves, lengths, rir)
        use = _coin(_fold(seed, 5), batch, config.reverb_probability)
        waves = tf.where(use[:, None], wet, waves)
    if config.noise:
        kinds = {
            "white": lambda s: tf.random.stateless_normal([batch, width], s),
            "pink": lambda s: pink_noise(s, batch, width),
            "waveforms": lambda s: _clip_noise(s, config.noise_waveforms, batch, width),
        }
        made = [kinds[kind](_fold(seed, 10 + i)) for i, kind in enumerate(config.noise_kinds)]
        pick = tf.random.stateless_uniform([batch], _fold(seed, 6), 0, len(made), tf.int32)
        noise = tf.gather(tf.stack(made, axis=1), pick, axis=1, batch_dims=1)
        snr = _uniform(_fold(seed, 7), batch, config.snr_db)
        noisy = add_noise(waves, lengths, noise, snr)
        use = _coin(_fold(seed, 8), batch, config.noise_probability)
        waves = tf.where(use[:, None], noisy, waves)
    if config.gain:
        waves = apply_gain(waves, _uniform(_fold(seed, 9), batch, config.gain_db))
    return tf.clip_by_value(waves, -1.0, 1.0) * _valid(lengths, width), lengths


def augment_batches(
    dataset: tf.data.Dataset, config: AudioAugmentConfig, seed: int = 0
) -> tf.data.Dataset:
    """Augment a dataset of `(waves, lengths, *rest)` padded batches.

    Each batch gets its own seed from `tf.data.Dataset.random(seed,
    rerandomize_each_iteration=True)`: reproducible for a seed, and different in every
    epoch. `rest` passes through untouched.
    """
    if not config.enabled:
        return dataset
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def apply(batch: tuple, step: tf.Tensor) -> tuple:
        waves, lengths = augment_waveforms(batch[0], batch[1], config, seed=(seed, step))
        return (waves, lengths, *batch[2:])

    return tf.data.Dataset.zip(dataset, seeds).map(apply, num_parallel_calls=tf.data.AUTOTUNE)
