"""Waveform augmentation: the arithmetic of each option (lengths, pitch, SNR, gain, decay),
padding, seeding, and the tf.data wrapper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.features.audio_augment import (
    AudioAugmentConfig,
    augment_batches,
    augment_waveforms,
    pink_noise,
    speed_perturb,
    synthetic_rir,
)

RATE = 16000


def tone(samples: int, hz: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(samples) / RATE)).astype(np.float32)


def padded(rows: list[np.ndarray]) -> tuple[tf.Tensor, tf.Tensor]:
    width = max(len(r) for r in rows)
    batch = np.zeros([len(rows), width], np.float32)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    return tf.constant(batch), tf.constant([len(r) for r in rows], tf.int32)


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * RATE / len(samples)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * math.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((noisy - clean) ** 2))


def only(name: str, **overrides) -> AudioAugmentConfig:
    return AudioAugmentConfig.from_names(name, **overrides)


# -- config ----------------------------------------------------------------------------------


def test_from_names_enables_exactly_the_named_options():
    assert AudioAugmentConfig.from_names("speed, noise,gain,reverb").enabled == (
        "speed",
        "noise",
        "gain",
        "reverb",
    )
    assert AudioAugmentConfig.from_names("reverb,gain").enabled == ("gain", "reverb")
    assert AudioAugmentConfig.from_names("none").enabled == ()
    assert AudioAugmentConfig.from_names("").enabled == ()
    config = AudioAugmentConfig.from_names(["noise"], snr_db=(0.0, 3.0))
    assert config.snr_db == (0.0, 3.0) and config.enabled == ("noise",)
    with pytest.raises(ValueError, match=r"unknown augmentation.*'echo'"):
        AudioAugmentConfig.from_names("speed,echo")
    with pytest.raises(ValueError, match=r"unknown AudioAugmentConfig field.*'snr'"):
        AudioAugmentConfig.from_names("noise", snr=(1, 2))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"snr_db": (20.0, 10.0)}, "snr_db"),
        ({"rt60": (-0.1, 0.2)}, "rt60"),
        ({"noise_probability": 1.5}, "noise_probability"),
        ({"speed_factors": (0.9, 0.0)}, "speed_factors"),
        ({"noise_kinds": ("brown",)}, "noise_kinds"),
        ({"noise_kinds": ("waveforms",)}, "needs noise_waveforms"),
        ({"tail_level_db": (-10.0, 3.0)}, "tail_level_db"),
    ],
)
def test_bad_config_values_are_rejected_by_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        AudioAugmentConfig(**overrides)


def test_no_option_is_the_identity():
    waves, lengths = padded([tone(800), tone(500)])
    out, out_lengths = augment_waveforms(waves, lengths, AudioAugmentConfig(), seed=3)
    np.testing.assert_array_equal(out.numpy(), waves.numpy())
    np.testing.assert_array_equal(out_lengths.numpy(), lengths.numpy())


# -- speed -----------------------------------------------------------------------------------


def test_speed_changes_length_and_scales_a_tone_frequency():
    waves, lengths = padded([tone(16000), tone(12000, hz=1000.0), tone(9000)])
    out, new = speed_perturb(waves, lengths, tf.constant([1.1, 0.9, 1.0], tf.float64))
    assert new.numpy().tolist() == [round(16000 / 1.1), round(12000 / 0.9), 9000]
    assert out.shape == (3, round(16000 / 1.1))  # the longest result
    fast, slow = out[0, : new[0]].numpy(), out[1, : new[1]].numpy()
    assert abs(peak_hz(fast) - 440.0 * 1.1) <= 1.5
    assert abs(peak_hz(slow) - 1000.0 * 0.9) <= 1.5
    np.testing.assert_array_equal(out[2, :9000].numpy(), tone(9000))  # factor 1: unchanged
    for row, length in enumerate(new.numpy()):
        assert not np.any(out[row, length:].numpy())


def test_speed_equals_linear_interpolation_by_brute_force():
    rng = np.random.default_rng(0)
    rows = [rng.uniform(-1, 1, 101).astype(np.float32), rng.uniform(-1, 1, 64).astype(np.float32)]
    waves, lengths = padded(rows)
    factors = [1.1, 0.9]
    out, new = speed_perturb(waves, lengths, tf.constant(factors, tf.float64))
    for row, (x, f) in enumerate(zip(rows, factors, strict=True)):
        n = round(len(x) / f)
        expected = np.interp(np.arange(n) * f, np.arange(len(x) + 1), np.append(x, 0.0))
        np.testing.assert_allclose(out[row, :n].numpy(), expected, atol=1e-6)
        assert new[row] == n


def test_augment_speed_draws_factors_from_the_configured_set():
    rows = [tone(1000 + 37 * i) for i in range(12)]
    waves, lengths = padded(rows)
    _, new = augment_waveforms(waves, lengths, only("speed"), seed=5)
    seen = set()
    for row, length in zip(rows, new.numpy(), strict=True):
        options = {round(len(row) / f): f for f in (0.9, 1.0, 1.1)}
        assert length in options
        seen.add(options[length])
    assert seen == {0.9, 1.0, 1.1}  # 12 draws hit all three (fixed seed)


# -- noise -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["white", "pink", "waveforms"])
def test_noise_lands_at_the_target_snr_and_not_in_padding(kind):
    rows = [tone(8000, amplitude=0.1), tone(5000, hz=300.0, amplitude=0.05)]
    waves, lengths = padded(rows)
    clips = (np.sin(np.arange(700) * 0.3).astype(np.float32), np.linspace(-1, 1, 300))
    config = only(
        "noise",
        noise_probability=1.0,
        snr_db=(12.5, 12.5),
        noise_kinds=(kind,),
        noise_waveforms=clips if kind == "waveforms" else (),
    )
    out, new = augment_waveforms(waves, lengths, config, seed=1)
    assert new.numpy().tolist() == [8000, 5000]
    for row, clean in enumerate(rows):
        noisy = out[row, : len(clean)].numpy()
        assert abs(snr_db(clean, noisy) - 12.5) < 0.5
        assert not np.allclose(noisy, clean)
    assert not np.any(out[1, 5000:].numpy())


def test_snr_range_is_respected_and_silence_stays_silent():
    rows = [tone(4000, amplitude=0.2) for _ in range(8)] + [np.zeros(4000, np.float32)]
    waves, lengths = padded(rows)
    config = only("noise", noise_probability=1.0, snr_db=(0.0, 20.0))
    out = augment_waveforms(waves, lengths, config, seed=2)[0].numpy()
    measured = [snr_db(rows[i], out[i]) for i in range(8)]
    assert all(-0.01 < s < 20.01 for s in measured) and max(measured) - min(measured) > 5
    assert not np.any(out[8])


def test_noise_probability_zero_and_one():
    waves, lengths = padded([tone(3000) for _ in range(6)])
    never = augment_waveforms(waves, lengths, only("noise", noise_probability=0.0), seed=0)[0]
    np.testing.assert_array_equal(never.numpy(), waves.numpy())
    always = augment_waveforms(waves, lengths, only("noise", noise_probability=1.0), seed=0)[0]
    assert all(not np.allclose(always[i], waves[i]) for i in range(6))


def test_pink_noise_has_a_one_over_f_spectrum():
    noise = pink_noise(tf.constant([4, 2], tf.int64), tf.constant(16), tf.constant(8192)).numpy()
    assert noise.shape == (16, 8192)
    np.testing.assert_allclose(np.mean(noise**2, axis=1), 1.0, rtol=1e-4)
    power = np.mean(np.abs(np.fft.rfft(noise, axis=1)) ** 2, axis=0)
    bins = np.arange(8, 4000)  # away from DC and the top edge
    slope = np.polyfit(np.log(bins), np.log(power[bins]), 1)[0]
    assert -1.15 < slope < -0.85
    white = tf.random.stateless_normal([16, 8192], [4, 2]).numpy()
    flat = np.polyfit(np.log(bins), np.log(np.mean(np.abs(np.fft.rfft(white)) ** 2, 0)[bins]), 1)
    assert abs(flat[0]) < 0.1


# -- gain ------------------------------------------------------------------------------------


def test_gain_of_six_db_doubles_the_amplitude_and_clips_at_one():
    rows = [tone(2000, amplitude=0.3), tone(2000, amplitude=0.8)]
    waves, lengths = padded(rows)
    out = augment_waveforms(waves, lengths, only("gain", gain_db=(6.0, 6.0)), seed=0)[0].numpy()
    np.testing.assert_allclose(out[0], rows[0] * 10 ** (6 / 20), rtol=1e-5)
    assert abs(np.max(np.abs(out[0])) / 0.3 - 2.0) < 0.01  # 6 dB is x1.995
    expected = np.clip(rows[1] * 10 ** (6 / 20), -1.0, 1.0)
    np.testing.assert_allclose(out[1], expected, rtol=1e-5)
    assert np.max(out[1]) == 1.0 and np.min(out[1]) == -1.0
    half = augment_waveforms(waves, lengths, only("gain", gain_db=(-6.0, -6.0)), seed=0)[0]
    np.testing.assert_allclose(half.numpy()[0], rows[0] * 10 ** (-6 / 20), rtol=1e-5)


# -- reverb ----------------------------------------------------------------------------------


def test_reverb_with_vanishing_rt60_is_the_identity():
    rows = [tone(3000), tone(2000, hz=1200.0)]
    waves, lengths = padded(rows)
    errors = []
    for rt60 in (1e-2, 1e-3, 1e-5):
        config = only("reverb", reverb_probability=1.0, rt60=(rt60, rt60))
        out, new = augment_waveforms(waves, lengths, config, seed=9)
        np.testing.assert_array_equal(new.numpy(), lengths.numpy())
        errors.append(np.max(np.abs(out.numpy() - waves.numpy())))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-5


def test_reverb_tail_decays_60_db_per_rt60():
    rt60, level_db = 0.3, -20.0
    impulse = np.zeros(RATE, np.float32)
    impulse[0] = 1.0
    waves, lengths = padded([impulse])
    config = only("reverb", reverb_probability=1.0, rt60=(rt60, rt60), tail_level_db=(-20, -20))
    out = augment_waveforms(waves, lengths, config, seed=4)[0].numpy()[0]
    assert abs(out[0] - 1.0) < 1e-5  # the direct sound
    window = 160  # 10 ms
    energies = [np.sum(out[s : s + window] ** 2) for s in range(1, int(rt60 * RATE), window)]
    times = (np.arange(len(energies)) * window + window / 2) / RATE
    slope = np.polyfit(times, 10 * np.log10(energies), 1)[0]
    assert abs(slope - (-60.0 / rt60)) < 0.1 * 60.0 / rt60
    tail = np.sum(out[1:] ** 2)
    designed = 10 ** (level_db / 10) * rt60 * RATE / (6 * math.log(10))
    assert abs(tail / designed - 1.0) < 0.15


def test_synthetic_rir_shape_and_direct_path():
    rir = synthetic_rir(
        tf.constant([1, 2], tf.int64),
        tf.constant([0.2, 0.5]),
        tf.constant([-25.0, -25.0]),
        64,
        RATE,
    ).numpy()
    assert rir.shape == (2, 64) and np.all(rir[:, 0] == 1.0)
    assert np.all(np.abs(rir[:, 1:]) < 10 ** (-25 / 20) * 6)  # Gaussian under the envelope


# -- everything at once ----------------------------------------------------------------------


def test_all_options_keep_padding_zero_and_are_reproducible():
    rows = [tone(4000 + 500 * i, hz=200.0 + 50 * i) for i in range(6)]
    waves, lengths = padded(rows)
    config = AudioAugmentConfig.from_names(
        "speed,noise,gain,reverb", noise_probability=1.0, reverb_probability=1.0
    )
    out, new = augment_waveforms(waves, lengths, config, seed=(7, 3))
    again, again_new = augment_waveforms(waves, lengths, config, seed=(7, 3))
    np.testing.assert_array_equal(out.numpy(), again.numpy())
    np.testing.assert_array_equal(new.numpy(), again_new.numpy())
    other, _ = augment_waveforms(waves, lengths, config, seed=(7, 4))
    assert not np.array_equal(other.numpy(), out.numpy())
    assert out.shape[1] == max(new.numpy())
    for row, length in enumerate(new.numpy()):
        assert not np.any(out[row, length:].numpy())
        assert np.all(np.abs(out[row, :length].numpy()) <= 1.0)
        assert np.std(out[row, :length].numpy()) > 0.01
    # each option draws from its own stream: adding gain keeps the speed draws
    _, speed_only = augment_waveforms(waves, lengths, only("speed"), seed=(7, 3))
    np.testing.assert_array_equal(speed_only.numpy(), new.numpy())


def test_augment_batches_in_tf_data_is_seeded_and_varies_per_epoch():
    rows = [tone(3000), tone(2500), tone(2000), tone(2800)]
    ragged = tf.RaggedTensor.from_row_lengths(np.concatenate(rows), [len(r) for r in rows])
    base = tf.data.Dataset.from_tensor_slices((ragged, tf.constant(["a", "b", "c", "d"])))
    base = base.map(lambda w, t: (w, tf.shape(w)[0], t)).padded_batch(2)  # shapes [None, None]
    config = AudioAugmentConfig.from_names("speed,noise", noise_probability=1.0)

    def epochs(ds):
        return [[(w.numpy(), n.numpy(), t.numpy()) for w, n, t in ds] for _ in range(2)]

    first = epochs(augment_batches(base, config, seed=11))
    second = epochs(augment_batches(base, config, seed=11))
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(first[0][0][0], first[0][1][0])  # batches differ
    assert not np.array_equal(first[0][0][0], first[1][0][0])  # epochs differ
    assert first[0][0][2].tolist() == [b"a", b"b"] and first[0][1][2].tolist() == [b"c", b"d"]
    for waves, lengths, _ in first[0] + first[1]:
        assert waves.shape[1] == max(lengths)
        assert all(not np.any(row[n:]) for row, n in zip(waves, lengths, strict=True))
    assert augment_batches(base, AudioAugmentConfig(), seed=1) is base
