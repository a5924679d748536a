"""WAV bytes -> log-mel features, in the graph, for training and serving alike.

TF Serving has only core TF ops, so WAV parsing is `tf.strings`/`tf.io.decode_raw`
plus `tf.audio.decode_wav`, and the features are `tf.signal`. A decoder error would
fail the whole request, so each item's RIFF chunks are parsed first and only items
that are 16-bit PCM at a supported rate reach the decoder; the others get zero
samples and an error string, and the rest of the batch is unaffected.

Sample rates: any rate from 4 kHz to 192 kHz is accepted and converted to the
model's rate in the graph by `s2s_zoo.features.resample` (scipy's `resample_poly`
filter, so the export hears what `load_wav` gave training).

Chunk layout: the parser walks the RIFF chunk list (word-aligned, as the spec and
Python's `wave` module have it) to find `fmt ` and `data` wherever they are, so
files with `LIST`, `JUNK`, `bext`, ... chunks before or between them are accepted.
`tf.audio.decode_wav` itself rejects many such layouts (and truncated data chunks),
so it is given a canonical 44-byte-header copy of the item rebuilt from the parsed
fields: whatever passes the checks here cannot fail in the decoder. A data chunk
that claims more bytes than the file holds (a cut-off or streamed recording) is
read up to the last whole sample frame, as `wave` does. Multi-channel files are
averaged to mono, as `s2s_zoo.data.asr_manifests.load_wav` does for training.

Features are log-mel energies of 25 ms frames every 10 ms, normalised per
utterance and per mel bin over its own frames only, so padding a batch with a
longer neighbour changes nothing.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from s2s_zoo.features.resample import resample, resampled_length

__all__ = [
    "AudioFrontEnd",
    "EMPTY_AUDIO",
    "NOT_WAV",
    "SHORT_AUDIO",
    "UNSUPPORTED_ENCODING",
]

NOT_WAV = "not a RIFF/WAVE file"
UNSUPPORTED_ENCODING = "unsupported WAV encoding: only 16-bit PCM"
EMPTY_AUDIO = "empty audio"
SHORT_AUDIO = "audio shorter than one analysis frame"
_NO_FMT = "invalid WAV file: no complete 'fmt ' chunk"
_NO_DATA = "invalid WAV file: no 'data' chunk"
_MAX_CHANNELS = 16
_BAD_CHANNELS = f"unsupported WAV channel count: 1 to {_MAX_CHANNELS} channels"
MIN_RATE, MAX_RATE = 4000, 192000
_RATE_ERROR = f"unsupported sample rate {{}} Hz: {MIN_RATE} to {MAX_RATE} Hz"

_MAX_CHUNKS = 64  # chunks scanned for `fmt ` and `data`; real files have a handful
_LOG_FLOOR = 1e-6  # log(power + floor): silence stays finite
_VAR_FLOOR = 1e-5  # a constant mel bin normalises to 0, not to inf


# -- byte helpers (scalar string in, scalar out; never out of range) ----------------------


def _slice(data: tf.Tensor, size: tf.Tensor, pos: tf.Tensor, width: int) -> tf.Tensor:
    """`width` bytes of `data` at `pos`, zero-filled past the end (substr would raise)."""
    pos = tf.clip_by_value(tf.cast(pos, tf.int64), 0, size)
    raw = tf.strings.substr(data, pos, tf.constant(width, tf.int64))
    return tf.strings.substr(tf.strings.join([raw, b"\0" * width]), 0, width)


def _read_uint(data: tf.Tensor, size: tf.Tensor, pos: tf.Tensor, width: int) -> tf.Tensor:
    """Little-endian unsigned integer of `width` bytes at `pos`, as int64."""
    raw = tf.io.decode_raw(_slice(data, size, pos, width), tf.uint8)
    weights = tf.constant([256**i for i in range(width)], tf.int64)
    return tf.reduce_sum(tf.cast(raw, tf.int64) * weights)


def _le_bytes(value: tf.Tensor, width: int) -> tf.Tensor:
    """int64 scalar -> its `width` little-endian bytes as a scalar string."""
    shifts = tf.constant([8 * i for i in range(width)], tf.int64)
    digits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(value, shifts), 255)
    table = tf.constant([bytes([i]) for i in range(256)])
    return tf.strings.reduce_join(tf.gather(table, digits))


def _find_chunks(data: tf.Tensor, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Offsets of the first `fmt ` and `data` chunk headers (-1 when absent)."""

    def unfinished(offset, fmt, dat):
        return tf.logical_and(offset + 8 <= size, tf.logical_or(fmt < 0, dat < 0))

    def step(offset, fmt, dat):
        chunk_id = tf.strings.substr(data, offset, tf.constant(4, tf.int64))
        chunk_size = _read_uint(data, size, offset + 4, 4)
        fmt = tf.where(tf.logical_and(tf.equal(chunk_id, b"fmt "), fmt < 0), offset, fmt)
        dat = tf.where(tf.logical_and(tf.equal(chunk_id, b"data"), dat < 0), offset, dat)
        return offset + 8 + chunk_size + chunk_size % 2, fmt, dat  # chunks are word-aligned

    none = tf.constant(-1, tf.int64)
    start = (tf.constant(12, tf.int64), none, none)
    _, fmt, dat = tf.while_loop(unfinished, step, start, maximum_iterations=_MAX_CHUNKS)
    return fmt, dat


def _fmt_fields(data: tf.Tensor, size: tf.Tensor, fmt: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """(complete?, audio format, channels, sample rate, bits per sample) of the `fmt ` chunk
    whose header is at `fmt` (garbage but harmless when incomplete)."""
    complete = tf.logical_and(fmt >= 0, fmt + 24 <= size)
    complete = tf.logical_and(complete, _read_uint(data, size, fmt + 4, 4) >= 16)
    audio_format = _read_uint(data, size, fmt + 8, 2)
    channels = _read_uint(data, size, fmt + 10, 2)
    rate = _read_uint(data, size, fmt + 12, 4)
    bits = _read_uint(data, size, fmt + 22, 2)
    return complete, audio_format, channels, rate, bits


def _first_error(checks: list[tuple[tf.Tensor, Any]]) -> tf.Tensor:
    """The message of the first failed check, "" when all pass."""
    error = tf.constant("")
    for failed, message in reversed(checks):
        error = tf.where(failed, message, error)
    return error


class AudioFrontEnd(tf.Module):
    """Decode 16-bit PCM WAVs and compute normalised log-mel features; no variables.

    `upper_hz` is capped at the Nyquist frequency, so the defaults also suit 8 kHz.
    """

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
        self.frame_length = int(round(self.sample_rate * self.frame_length_ms / 1000))
        self.frame_step = int(round(self.sample_rate * self.frame_step_ms / 1000))
        self._validate()
        with tf.init_scope():  # a constant even if built while tracing
            self.mel_matrix = tf.constant(
                tf.signal.linear_to_mel_weight_matrix(
                    self.num_mel_bins,
                    self.fft_length // 2 + 1,
                    self.sample_rate,
                    self.lower_hz,
                    self.upper_hz,
                ).numpy()
            )

    def _validate(self) -> None:
        if self.sample_rate < 1 or self.num_mel_bins < 1:
            raise ValueError("sample_rate and num_mel_bins must be positive")
        if self.frame_length < 1 or self.frame_step < 1:
            raise ValueError("frame_length_ms and frame_step_ms must span at least one sample")
        if self.frame_length > self.fft_length:
            raise ValueError(
                f"fft_length {self.fft_length} is shorter than a frame "
                f"({self.frame_length} samples)"
            )
        if not 0.0 <= self.lower_hz < self.upper_hz:
            raise ValueError(
                f"need 0 <= lower_hz < upper_hz (upper capped at Nyquist), "
                f"got {self.lower_hz} and {self.upper_hz}"
            )

    @property
    def feature_dim(self) -> int:
        """Size of one feature vector (the model's input width)."""
        return self.num_mel_bins

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments, saved next to the weights."""
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
        """Rebuild from `get_config()` output; unknown keys are an error."""
        return cls(**config)

    # -- decoding -------------------------------------------------------------------------

    def _check_one(self, data: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """Scalar bytes -> (error, channels, rate, data offset, whole-frame data bytes)."""
        size = tf.cast(tf.strings.length(data), tf.int64)
        head = _slice(data, size, 0, 12)
        is_wav = tf.logical_and(
            tf.equal(tf.strings.substr(head, 0, 4), b"RIFF"),
            tf.equal(tf.strings.substr(head, 8, 4), b"WAVE"),
        )
        fmt, dat = _find_chunks(data, size)
        fmt_ok, audio_format, channels, rate, bits = _fmt_fields(data, size, fmt)
        frame_bytes = 2 * tf.maximum(channels, 1)
        available = tf.minimum(_read_uint(data, size, dat + 4, 4), size - (dat + 8))
        num_bytes = available - available % frame_bytes  # whole sample frames only
        samples = num_bytes // frame_bytes
        error = _first_error(
            [
                (tf.logical_or(size < 12, tf.logical_not(is_wav)), NOT_WAV),
                (tf.logical_not(fmt_ok), _NO_FMT),
                (tf.logical_or(audio_format != 1, bits != 16), UNSUPPORTED_ENCODING),
                (tf.logical_or(channels < 1, channels > _MAX_CHANNELS), _BAD_CHANNELS),
                (dat < 0, _NO_DATA),
                (
                    tf.logical_or(rate < MIN_RATE, rate > MAX_RATE),
                    tf.strings.format(_RATE_ERROR, rate),
                ),
                (samples == 0, EMPTY_AUDIO),
                (resampled_length(samples, rate, self.sample_rate) < self.frame_length,
                 SHORT_AUDIO),
            ]
        )  # fmt: skip
        return error, channels, rate, dat + 8, num_bytes

    def _canonical_wav(self, data, channels, start, num_bytes) -> tf.Tensor:
        """A 44-byte-header WAV holding the item's samples, which decode_wav always accepts."""
        block = 2 * channels
        header = [
            b"RIFF",
            _le_bytes(36 + num_bytes, 4),
            b"WAVEfmt \x10\0\0\0\x01\0",  # chunk size 16, format 1 (PCM)
            _le_bytes(channels, 2),
            _le_bytes(tf.constant(self.sample_rate, tf.int64), 4),
            _le_bytes(self.sample_rate * block, 4),
            _le_bytes(block, 2),
            b"\x10\0data",  # 16 bits per sample
            _le_bytes(num_bytes, 4),
            tf.strings.substr(data, start, num_bytes),
        ]
        return tf.strings.join(header)

    def _decode_one(self, data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        error, channels, rate, start, num_bytes = self._check_one(data)

        def decode():
            wav = self._canonical_wav(data, channels, start, num_bytes)
            audio, _ = tf.audio.decode_wav(wav, desired_channels=-1)
            mono = tf.reduce_mean(audio, axis=1)
            mono = tf.cond(
                tf.equal(rate, self.sample_rate),
                lambda: mono,
                lambda: resample(mono, rate, self.sample_rate),
            )
            return mono, error

        def reject():
            return tf.zeros([0], tf.float32), error

        return tf.cond(tf.equal(error, ""), decode, reject)

    def decode_wav(self, wav_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """[batch] WAV bytes -> (float32 [batch, max_samples] zero-padded, int32 lengths,
        error strings). Bad items get length 0 and a reason; good ones get "".

        Samples are int16 / 32768, multi-channel files averaged to mono, then
        resampled to `sample_rate` when the file has another rate (as `load_wav`
        does for training). Besides the format errors, audio shorter than one
        analysis frame (after resampling) is rejected (`SHORT_AUDIO`): it would
        give the encoder no frames at all.
        """
        wav_bytes = tf.convert_to_tensor(wav_bytes, tf.string)
        samples, errors = tf.map_fn(
            self._decode_one,
            wav_bytes,
            fn_output_signature=(
                tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0),
                tf.TensorSpec([], tf.string),
            ),
        )
        lengths = tf.cast(samples.row_lengths(), tf.int32)
        return samples.to_tensor(0.0), lengths, errors

    # -- features -------------------------------------------------------------------------

    def num_frames(self, lengths: tf.Tensor) -> tf.Tensor:
        """Whole analysis frames in `lengths` samples (a partial last frame is dropped)."""
        lengths = tf.convert_to_tensor(lengths)
        full = (lengths - self.frame_length) // self.frame_step + 1
        return tf.where(lengths >= self.frame_length, full, tf.zeros_like(full))

    def log_mel(self, waveforms: tf.Tensor) -> tf.Tensor:
        """[batch, samples] -> un-normalised log-mel power [batch, frames, mels].

        Frame k only sees samples [k * step, k * step + frame_length), so the valid
        frames of an item do not depend on what padding follows it.
        """
        waveforms = tf.convert_to_tensor(waveforms, tf.float32)
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
        return tf.math.log(tf.tensordot(power, self.mel_matrix, 1) + _LOG_FLOOR)

    def features(self, waveforms: tf.Tensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """-> (normalised log-mel float32 [batch, frames, mels], frame mask bool [batch, frames]).

        Each utterance is normalised per mel bin over its valid frames only; frames
        past them are 0 and masked out, so batching changes no valid value.
        """
        log_mel = self.log_mel(waveforms)
        lengths = tf.minimum(tf.cast(lengths, tf.int32), tf.shape(waveforms)[1])
        mask = tf.sequence_mask(self.num_frames(lengths), tf.shape(log_mel)[1])
        weights = tf.cast(mask, tf.float32)[..., None]
        count = tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1.0)
        mean = tf.reduce_sum(log_mel * weights, axis=1, keepdims=True) / count
        centred = (log_mel - mean) * weights
        var = tf.reduce_sum(tf.square(centred), axis=1, keepdims=True) / count
        return centred * tf.math.rsqrt(var + _VAR_FLOOR), mask
