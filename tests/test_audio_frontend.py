"""The in-graph audio front end: exact WAV decoding, per-item errors, feature invariances."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.wav_files import wav_bytes
from s2s_zoo.features.audio import AudioFrontEnd
from s2s_zoo.features.spec_augment import spec_augment

STRINGS = tf.TensorSpec([None], tf.string)
RATE = 16000


def tone(hz: float, seconds: float, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def as_pcm16(samples: np.ndarray) -> np.ndarray:
    """What a 16-bit WAV of `samples` decodes to."""
    return (np.clip(np.round(samples * 32768.0), -32768, 32767) / 32768.0).astype(np.float32)


def chunk(chunk_id: bytes, payload: bytes) -> bytes:
    """A RIFF chunk, with the pad byte an odd-sized payload needs."""
    return chunk_id + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(channels: int = 1, rate: int = RATE, bits: int = 16, audio_format: int = 1):
    block = channels * bits // 8
    return chunk(
        b"fmt ", struct.pack("<HHIIHH", audio_format, channels, rate, rate * block, block, bits)
    )


def pcm(samples: np.ndarray) -> bytes:
    return np.round(samples * 32768).clip(-32768, 32767).astype("<i2").tobytes()


def eight_bit_wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(RATE)
        writer.writeframes(((samples * 127) + 128).astype(np.uint8).tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def front() -> AudioFrontEnd:
    return AudioFrontEnd(num_mel_bins=40)


@pytest.fixture(scope="module")
def decode(front):
    return tf.function(front.decode_wav, input_signature=[STRINGS])


# -- decoding ------------------------------------------------------------------------------


def test_decoding_gives_the_int16_samples_scaled(decode):
    samples = tone(440, 0.5)
    waves, lengths, errors = decode(tf.constant([wav_bytes(samples, RATE)]))
    assert errors.numpy().tolist() == [b""] and lengths.numpy().tolist() == [8000]
    assert waves.dtype == tf.float32 and waves.shape == (1, 8000)
    np.testing.assert_array_equal(waves[0].numpy(), as_pcm16(samples))
    assert np.abs(waves.numpy()).max() <= 1.0


def test_bad_items_get_errors_and_leave_the_rest_of_the_batch_alone(decode):
    good, good2 = tone(440, 0.5), tone(880, 0.25)
    batch = [
        wav_bytes(good, RATE),
        b"junk",
        wav_bytes(good, 2000),
        wav_bytes(np.zeros(0), RATE),
        eight_bit_wav(good),
        wav_bytes(good2, RATE),
    ]
    waves, lengths, errors = decode(tf.constant(batch))
    assert [e.decode() for e in errors.numpy()] == [
        "",
        "not a RIFF/WAVE file",
        "unsupported sample rate 2000 Hz: 4000 to 192000 Hz",
        "empty audio",
        "unsupported WAV encoding: only 16-bit PCM",
        "",
    ]
    assert lengths.numpy().tolist() == [8000, 0, 0, 0, 0, 4000]
    alone, _, _ = decode(tf.constant([batch[0], batch[5]]))
    np.testing.assert_array_equal(waves[0].numpy(), alone[0].numpy())
    np.testing.assert_array_equal(waves[5].numpy(), alone[1].numpy())
    assert not waves[1:5].numpy().any() and not waves[5, 4000:].numpy().any()


def test_an_empty_batch_decodes_to_empty_tensors(decode):
    waves, lengths, errors = decode(tf.constant([], tf.string))
    assert waves.shape == (0, 0) and lengths.shape == (0,) and errors.shape == (0,)


def test_other_layouts_are_found_by_walking_the_chunks(decode):
    samples = tone(300, 0.1)
    data = pcm(samples)
    stereo = np.stack([samples, tone(500, 0.1)], axis=1)
    batch = [
        # LIST before fmt (tf.audio.decode_wav alone rejects this), odd size + pad byte
        riff(chunk(b"LIST", b"INFOISFTabc"), fmt_chunk(), chunk(b"data", data)),
        # fmt chunk of 18 bytes, a chunk between fmt and data
        riff(
            chunk(b"fmt ", fmt_chunk()[8:] + b"\0\0"), chunk(b"fact", b"1234"), chunk(b"data", data)
        ),
        # data size larger than the file: a cut-off recording keeps its whole samples
        riff(fmt_chunk(), b"data" + struct.pack("<I", 0xFFFFFFFF) + data + b"\x01"),
        wav_bytes(stereo, RATE),
    ]
    waves, lengths, errors = decode(tf.constant(batch))
    assert errors.numpy().tolist() == [b""] * 4 and lengths.numpy().tolist() == [1600] * 4
    for i in range(3):
        np.testing.assert_array_equal(waves[i].numpy(), as_pcm16(samples))
    np.testing.assert_array_equal(waves[3].numpy(), as_pcm16(stereo).mean(axis=1))


def test_malformed_headers_are_named_and_never_reach_the_decoder(decode):
    data = pcm(tone(300, 0.1))
    named = {
        riff(chunk(b"data", data)): "invalid WAV file: no complete 'fmt ' chunk",
        riff(fmt_chunk()): "invalid WAV file: no 'data' chunk",
        riff(fmt_chunk(bits=32, audio_format=3), chunk(b"data", data)): "unsupported WAV encoding",
        riff(fmt_chunk(channels=0), chunk(b"data", data)): "unsupported WAV channel count",
        riff(fmt_chunk(), chunk(b"data", data[:100])): "audio shorter than one analysis frame",
        b"RIFF\0\0\0\0WAV": "not a RIFF/WAVE file",
        b"": "not a RIFF/WAVE file",
    }
    _, lengths, errors = decode(tf.constant(list(named)))
    for error, expected in zip(errors.numpy(), named.values(), strict=True):
        assert error.decode().startswith(expected)
    assert not lengths.numpy().any()
    # every truncation and many corruptions of a good file: one call, no exception
    good = wav_bytes(tone(300, 0.1), RATE)
    rng = np.random.default_rng(0)
    broken = [good[:n] for n in range(0, 60)]
    for _ in range(60):
        corrupt = bytearray(good)
        corrupt[rng.integers(4, 44)] = rng.integers(256)
        broken.append(bytes(corrupt))
    waves, lengths, errors = decode(tf.constant(broken))
    bad = np.array([bool(e) for e in errors.numpy()])
    assert bad[:60].all() and not lengths.numpy()[bad].any()
    assert (lengths.numpy()[~bad] > 0).all()


def test_decoding_uses_only_core_ops(front):
    graph_def = tf.function(front.decode_wav).get_concrete_function(STRINGS).graph.as_graph_def()
    nodes = list(graph_def.node)
    nodes += [node for function in graph_def.library.function for node in function.node_def]
    types = {node.op for node in nodes}
    assert "DecodeWav" in types and types & {"If", "StatelessIf"}  # bad bytes branch around
    assert not types & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


# -- features ------------------------------------------------------------------------------


def test_feature_shapes_and_frame_masks(front):
    lengths = [16000, 400, 399, 0, 4000]
    waves = np.zeros((5, 16000), np.float32)
    for i, n in enumerate(lengths):
        waves[i, :n] = tone(200 + 100 * i, n / RATE)
    features, mask = front.features(waves, lengths)
    assert features.shape == (5, 98, 40) and mask.dtype == tf.bool
    assert front.feature_dim == 40
    # 25 ms frames every 10 ms; a partial last frame is dropped
    assert mask.numpy().sum(axis=1).tolist() == [98, 1, 0, 0, 23]
    assert not features.numpy()[~mask.numpy()].any()
    assert np.isfinite(features.numpy()).all()


def test_an_item_is_the_same_alone_and_padded_in_a_batch(front):
    short, long = tone(500, 0.3), tone(2000, 0.8, amplitude=0.9)
    short[:1000] *= 0.1  # not stationary, so normalisation has work to do
    waves = np.zeros((2, len(long)), np.float32)
    waves[0, : len(short)], waves[1] = short, long
    features, mask = front.features(waves, [len(short), len(long)])
    alone, alone_mask = front.features(short[None], [len(short)])
    frames = int(alone_mask.numpy().sum())
    assert frames == int(mask[0].numpy().sum()) == (len(short) - 400) // 160 + 1
    np.testing.assert_allclose(features[0, :frames].numpy(), alone[0].numpy(), atol=1e-5)
    assert not features[0, frames:].numpy().any()


def test_valid_frames_are_normalised_per_bin(front):
    noise = np.random.default_rng(0).normal(0, 0.1, 12000).astype(np.float32)
    noise[6000:] *= 5.0
    waves = np.zeros((1, 16000), np.float32)
    waves[0, :12000] = noise
    features, mask = front.features(waves, [12000])
    valid = features[0].numpy()[mask[0].numpy()]
    np.testing.assert_allclose(valid.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(valid.std(axis=0), 1.0, atol=1e-2)


def test_a_pure_tone_peaks_in_the_mel_bin_of_its_frequency(front):
    def mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz) / 700.0)

    centres = np.linspace(mel(front.lower_hz), mel(front.upper_hz), front.num_mel_bins + 2)[1:-1]
    for hz in (250.0, 1000.0, 3000.0, 6000.0):
        energy = front.log_mel(tone(hz, 0.5)[None]).numpy()[0].mean(axis=0)
        expected = int(np.argmin(np.abs(centres - mel(hz))))
        assert abs(int(np.argmax(energy)) - expected) <= 1, (hz, np.argmax(energy), expected)


# -- augmentation --------------------------------------------------------------------------


def test_spec_augment_masks_only_valid_frames(front):
    waves = np.stack([tone(700, 1.0), np.pad(tone(300, 0.5), (0, 8000))])
    features, mask = front.features(waves, [16000, 8000])
    augmented = spec_augment(features, mask, freq_width=8, time_width=10, seed=1)
    assert augmented.shape == features.shape
    changed = augmented.numpy() != features.numpy()
    assert changed[0].any() and changed[1].any()
    assert not changed[~mask.numpy()].any()
    assert not augmented.numpy()[changed].any()  # masked means set to 0 (the mean)


def test_spec_augment_runs_in_a_tf_data_map(front):
    waves = np.stack([tone(700, 0.6), tone(300, 0.6)])
    features, mask = front.features(waves, [9600, 9600])
    ds = tf.data.Dataset.from_tensors((features, mask)).repeat(3)
    ds = ds.map(lambda f, m: spec_augment(f, m, seed=7))
    batches = [b.numpy() for b in ds]
    assert all(b.shape == features.shape for b in batches)
    assert any((b != features.numpy()).any() for b in batches)


# -- configuration and writing -------------------------------------------------------------


@pytest.mark.parametrize("config", [{}, {"sample_rate": 8000, "num_mel_bins": 20}])
def test_config_round_trips(config):
    front = AudioFrontEnd(**config)
    again = AudioFrontEnd.from_config(front.get_config())
    assert again.get_config() == front.get_config()
    assert again.upper_hz <= again.sample_rate / 2


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="fft_length"):
        AudioFrontEnd(fft_length=256)  # a 25 ms frame is 400 samples
    with pytest.raises(ValueError, match="lower_hz"):
        AudioFrontEnd(lower_hz=9000.0)


def test_wav_bytes_writes_16_bit_pcm_that_wave_reads_back():
    samples = np.array([0.0, 0.5, -0.5, 1.0, -1.0], np.float32)
    with wave.open(io.BytesIO(wav_bytes(samples, 22050)), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (
            1,
            2,
            22050,
        )
        values = np.frombuffer(reader.readframes(5), "<i2").tolist()
    assert values == [0, 16384, -16384, 32767, -32768]
    with pytest.raises(ValueError, match="NaN"):
        wav_bytes(np.array([np.nan]), RATE)
