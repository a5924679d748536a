"""WAV bytes -> log-mel features, in the graph, for training and serving alike.

TF Serving has only core TF ops, so WAV parsing is `tf.audio.decode_wav` and the
features are `tf.signal`. A decoder error would fail the whole request, so each
item's header is checked first (RIFF/WAVE, 16-bit PCM, the model's sample rate)
and only good items are decoded; the others get zero samples and an error string.

Features are log-mel energies of 25 ms frames every 10 ms, normalised per
utterance and per mel bin over its own frames only, so padding a batch with a
longer neighbour changes nothing.
"""

from __future__ import annotations

import io
import wave
from typing import Any

import numpy as np
import tensorflow as tf

_HEADER = 44  # canonical RIFF header: "fmt " chunk first, then "data"


def _le_int(data: tf.Tensor, offset: int, size: int) -> tf.Tensor:
    """Little-endian unsigned integer of `size` (2 or 4) bytes at `offset` of a scalar string."""
    raw = tf.io.decode_raw(tf.strings.substr(data, offset, size), tf.uint8)
    weights = tf.constant([256**i for i in range(size)], tf.int64)
    return tf.reduce_sum(tf.cast(raw, tf.int64) * weights)


class AudioFrontEnd(tf.Module):
    """Decode 16-bit PCM WAVs and compute normalised log-mel features; no variables."""

    def __init__(
        self,
        sample_rate: int = 16000,
        num_mel_bins: int = 80,
        frame_length_ms: float = 25.0,
        frame_step_ms: float = 10.0,
        fft_length: int = 512,
        lower_hz: float = 20.0,
        upper_hz: float = 7600.0,
    ) -> None:
        super().__init__(name="audio_front_end")
        self.sample_rate = int(sample_rate)
        self.num_mel_bins = int(num_mel_bins)
        self.frame_length_ms = float(frame_length_ms)
        self.frame_step_ms = float(frame_step_ms)
        self.fft_length = int(fft_length)
        self.lower_hz = float(lower_hz)
        self.upper_hz = float(min(upper_hz, sample_rate / 2))
        self.frame_length = int(round(sample_rate * frame_length_ms / 1000))
        self.frame_step = int(round(sample_rate * frame_step_ms / 1000))
        if self.frame_length > self.fft_length:
            raise ValueError("fft_length must be at least the frame length in samples")
        self.mel_matrix = tf.constant(
            tf.signal.linear_to_mel_weight_matrix(
                self.num_mel_bins,
                self.fft_length // 2 + 1,
                self.sample_rate,
                self.lower_hz,
                self.upper_hz,
            ).numpy()
        )

    @property
    def feature_dim(self) -> int:
        return self.num_mel_bins

    def get_config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "num_mel_bins": self.num_mel_bins,
            "frame_length_ms": self.frame_length_ms,
            "frame_step_ms": self.frame_step_ms,
            "fft_length": self.fft_length,
            "lower_hz": self.lower_hz,
            "upper_hz": self.upper_hz,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AudioFrontEnd:
        return cls(**config)

    # -- decoding -------------------------------------------------------------------------

    def header_error(self, data: tf.Tensor) -> tf.Tensor:
        """Scalar bytes -> "" if a canonical 16-bit PCM WAV at our rate, else the reason."""
        padded = tf.strings.join([data, tf.constant(b"\0" * _HEADER)])  # substr stays in range
        is_wav = tf.logical_and(
            tf.equal(tf.strings.substr(padded, 0, 4), b"RIFF"),
            tf.equal(tf.strings.substr(padded, 8, 4), b"WAVE"),
        )
        fmt_first = tf.equal(tf.strings.substr(padded, 12, 4), b"fmt ")
        pcm16 = tf.logical_and(
            tf.equal(_le_int(padded, 20, 2), 1), tf.equal(_le_int(padded, 34, 2), 16)
        )
        rate = _le_int(padded, 24, 4)
        rate_error = tf.strings.format(
            "sample rate {} Hz, model expects {} Hz", (rate, self.sample_rate)
        )
        error = tf.where(tf.equal(rate, self.sample_rate), "", rate_error)
        error = tf.where(pcm16, error, "unsupported WAV encoding: only 16-bit PCM")
        error = tf.where(fmt_first, error, "unsupported WAV layout: the fmt chunk must come first")
        error = tf.where(is_wav, error, "not a RIFF/WAVE file")
        return tf.where(tf.strings.length(data) == 0, "empty input", error)

    def _decode_one(self, data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        error = self.header_error(data)

        def decode():
            audio, _ = tf.audio.decode_wav(data, desired_channels=1)
            samples = audio[:, 0]
            n = tf.shape(samples)[0]
            short = tf.where(n == 0, "empty audio", "audio shorter than one frame")
            problem = tf.where(n < self.frame_length, short, "")
            return samples[: tf.where(tf.equal(problem, ""), n, 0)], problem

        def reject():
            return tf.zeros([0], tf.float32), error

        return tf.cond(tf.equal(error, ""), decode, reject)

    def decode_wav(self, wav_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """[batch] WAV bytes -> (float32 [batch, samples] zero-padded, lengths, errors)."""
        wav_bytes = tf.convert_to_tensor(wav_bytes, tf.string)
        ragged, errors = tf.map_fn(
            self._decode_one,
            wav_bytes,
            fn_output_signature=(
                tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0),
                tf.TensorSpec([], tf.string),
            ),
        )
        ragged = tf.RaggedTensor.from_tensor(ragged) if isinstance(ragged, tf.Tensor) else ragged
        lengths = tf.cast(ragged.row_lengths(), tf.int32)
        return ragged.to_tensor(0.0), lengths, errors

    # -- features -------------------------------------------------------------------------

    def frames(self, lengths: tf.Tensor) -> tf.Tensor:
        """Complete frames in `lengths` samples (a partial last frame is dropped)."""
        full = (lengths - self.frame_length) // self.frame_step + 1
        return tf.where(lengths >= self.frame_length, full, 0)

    def features(self, waveforms: tf.Tensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """-> (normalised log-mel [batch, frames, mels], frame mask [batch, frames])."""
        waveforms = tf.convert_to_tensor(waveforms, tf.float32)
        lengths = tf.cast(lengths, tf.int32)
        short = tf.maximum(self.frame_length - tf.shape(waveforms)[1], 0)
        waveforms = tf.pad(waveforms, [[0, 0], [0, short]])  # always at least one frame
        stft = tf.signal.stft(
            waveforms,
            self.frame_length,
            self.frame_step,
            self.fft_length,
            window_fn=tf.signal.hann_window,
            pad_end=False,
        )
        power = tf.math.square(tf.abs(stft))
        log_mel = tf.math.log(tf.tensordot(power, self.mel_matrix, 1) + 1e-6)
        mask = tf.sequence_mask(self.frames(lengths), tf.shape(log_mel)[1])
        weights = tf.cast(mask, tf.float32)[..., None]
        count = tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1.0)
        mean = tf.reduce_sum(log_mel * weights, axis=1, keepdims=True) / count
        var = tf.reduce_sum(tf.square(log_mel - mean) * weights, axis=1, keepdims=True) / count
        normalised = (log_mel - mean) * tf.math.rsqrt(var + 1e-5) * weights
        return normalised, mask

    def spec_augment(
        self,
        features: tf.Tensor,
        frame_mask: tf.Tensor,
        *,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 20,
        seed: int | None = None,
    ) -> tf.Tensor:
        """SpecAugment-style masking (training only): zero random mel bands and time spans
        (zero is the normalised mean), time spans inside each utterance's own frames."""
        shape = tf.shape(features)
        batch, time, bins = shape[0], shape[1], shape[2]
        valid = tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1)
        keep = tf.ones_like(features)
        for _ in range(freq_masks):
            width = tf.random.uniform([batch], 0, freq_width + 1, tf.int32, seed=seed)
            start = tf.random.uniform([batch], 0, 1, seed=seed) * tf.cast(bins - width, tf.float32)
            start = tf.cast(start, tf.int32)
            band = tf.range(bins)[None, :]
            hit = (band >= start[:, None]) & (band < (start + width)[:, None])
            keep *= 1.0 - tf.cast(hit, features.dtype)[:, None, :]
        for _ in range(time_masks):
            width = tf.minimum(
                tf.random.uniform([batch], 0, time_width + 1, tf.int32, seed=seed), valid // 5
            )
            room = tf.cast(tf.maximum(valid - width, 0), tf.float32)
            start = tf.cast(tf.random.uniform([batch], 0, 1, seed=seed) * room, tf.int32)
            steps = tf.range(time)[None, :]
            hit = (steps >= start[:, None]) & (steps < (start + width)[:, None])
            keep *= 1.0 - tf.cast(hit, features.dtype)[:, :, None]
        return features * keep


def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    """float waveform in [-1, 1] -> 16-bit PCM mono WAV bytes (stdlib `wave`)."""
    pcm = np.clip(np.round(np.asarray(waveform, np.float64) * 32768.0), -32768, 32767)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()
