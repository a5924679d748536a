"""WAV files in Python: read (and resample) 16-bit PCM for training, write for data and tests.

`load_wav` returns exactly what the exported graph's `AudioFrontEnd.decode_wav`
returns for the same bytes when the file is at the model's rate, and resamples
(scipy's polyphase filter) when it is not; the graph resamples with the same
filter (`s2s_zoo.features.resample`), so the two agree to float32 rounding.
`wav_bytes` is the inverse, used by the task generators and the tests to make WAV
files.
"""

from __future__ import annotations

import io
import math
import os
import wave
from pathlib import Path

import numpy as np

__all__ = ["load_wav", "wav_bytes"]

PathLike = str | os.PathLike[str]


def _read_pcm16(path: Path) -> tuple[np.ndarray, int]:
    """([frames, channels] float32 = int16 / 32768, sample rate) of a 16-bit PCM WAV."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    try:
        with wave.open(str(path), "rb") as reader:
            width, channels, rate = (
                reader.getsampwidth(),
                reader.getnchannels(),
                reader.getframerate(),
            )
            raw = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as error:
        raise ValueError(
            f"{path}: unsupported WAV ({error}); only uncompressed 16-bit PCM is supported"
        ) from None
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples; only 16-bit PCM is supported")
    whole = len(raw) - len(raw) % (2 * channels)  # a cut-off file ends mid-frame
    pcm = np.frombuffer(raw[:whole], "<i2").reshape(-1, channels)
    return pcm.astype(np.float32) / np.float32(32768.0), rate


def _resample(samples: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Polyphase resampling to round(len * sample_rate / rate) samples."""
    from scipy.signal import resample_poly  # only needed when rates differ

    gcd = math.gcd(rate, sample_rate)
    up, down = sample_rate // gcd, rate // gcd
    target = (2 * len(samples) * up + down) // (2 * down)  # round half up
    resampled = resample_poly(samples.astype(np.float64), up, down)[:target]
    return np.clip(resampled, -1.0, 1.0).astype(np.float32)


def load_wav(path: PathLike, sample_rate: int) -> np.ndarray:
    """float32 mono samples in [-1, 1] at `sample_rate` from a 16-bit PCM WAV file.

    Channels are averaged. At the file's own rate the result equals the exported
    graph's `decode_wav` (int16 / 32768); other rates are resampled with scipy.
    Anything but 16-bit PCM raises a ValueError naming the file and the reason.
    """
    path = Path(path)
    frames, rate = _read_pcm16(path)
    samples = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    if rate != sample_rate:
        samples = _resample(samples, rate, int(sample_rate))
    return np.ascontiguousarray(samples, np.float32)


def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    """float samples in [-1, 1] -> 16-bit PCM WAV bytes (stdlib `wave`), for data and tests.

    `waveform` is [samples] (mono) or [samples, channels]; values are scaled by
    32768, rounded and clipped, so `decode_wav` returns round(x * 32768) / 32768.
    """
    samples = np.asarray(waveform, np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] < 1:
        raise ValueError(f"waveform must be [samples] or [samples, channels], got {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("waveform contains NaN or infinite values")
    if int(sample_rate) < 1:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(samples.shape[1])
        writer.setsampwidth(2)
        writer.setframerate(int(sample_rate))
        writer.writeframes(pcm.tobytes())
    return buffer.getvalue()
