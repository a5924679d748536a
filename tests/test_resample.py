"""In-graph resampling: scipy's resample_poly filter in core ops, so a speech export hears
an 8, 22.05, 44.1 or 48 kHz upload as training (`load_wav`) heard it at 16 kHz."""

from __future__ import annotations

import shutil
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.signal import resample_poly

from s2s_zoo.data.wav_files import load_wav, wav_bytes
from s2s_zoo.features.audio import AudioFrontEnd
from s2s_zoo.features.resample import resample, resampled_length

RATES = (8000, 16000, 22050, 44100, 48000)
STRINGS = tf.TensorSpec([None], tf.string)


@pytest.fixture(scope="module")
def front() -> AudioFrontEnd:
    return AudioFrontEnd(num_mel_bins=40)


@pytest.fixture(scope="module")
def decode(front):
    return tf.function(front.decode_wav, input_signature=[STRINGS])


@pytest.fixture(scope="module")
def graph_resample():
    return tf.function(
        lambda x, rate: resample(x, rate, 16000),
        input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)],
    )


def speech_like(rate: int, seconds: float = 1.0) -> np.ndarray:
    """A voiced, formant-swept harmonic signal band-limited below 7.4 kHz, computed
    analytically at `rate`: the same sound at every rate (up to the rate's Nyquist)."""
    t = np.arange(int(round(seconds * rate))) / rate
    f0 = 110 + 30 * np.sin(2 * np.pi * 2 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formant = 1200 + 600 * np.sin(2 * np.pi * 1.3 * t)
    x = np.zeros_like(t)
    for h in range(1, 80):
        amp = 0.2 + np.exp(-((((h * f0) - formant) / 400) ** 2))
        x += np.where(h * f0 < min(7400, rate / 2), amp * np.sin(h * phase), 0.0)
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t)
    return 0.5 * x / np.max(np.abs(x))


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 44099, 96000])
def test_graph_resampling_equals_scipy_resample_poly(graph_resample, rate):
    rng = np.random.default_rng(rate)
    x = np.clip(rng.standard_normal(5000) * 0.3, -1, 1).astype(np.float32)
    got = graph_resample(x, rate).numpy()
    g = np.gcd(rate, 16000)
    want = resample_poly(x.astype(np.float64), 16000 // g, rate // g)
    assert len(got) == int(resampled_length(len(x), rate, 16000)) == round(len(x) * 16000 / rate)
    np.testing.assert_allclose(got, np.clip(want[: len(got)], -1, 1), atol=1e-6)


def test_resampling_edge_cases(graph_resample):
    assert graph_resample(np.zeros(0, np.float32), 22050).shape == (0,)
    # one sample: the filter's centre tap; no out-of-range reads at either end
    one = graph_resample(np.array([0.5], np.float32), 8000).numpy()
    np.testing.assert_allclose(one, resample_poly([0.5], 2, 1), atol=1e-7)
    # same rate: the identity (exact), full-scale values stay in [-1, 1]
    x = np.array([1.0, -1.0, 0.25, 0.0], np.float32)
    np.testing.assert_allclose(graph_resample(x, 16000).numpy(), x, atol=1e-7)


@pytest.mark.parametrize("rate", RATES)
def test_every_common_rate_decodes_to_what_training_reads(decode, tmp_path, rate):
    """The export's samples equal `load_wav`'s (scipy) for the same file."""
    path = tmp_path / f"{rate}.wav"
    path.write_bytes(wav_bytes(speech_like(rate, 0.5), rate))
    waves, lengths, errors = decode(tf.constant([path.read_bytes()]))
    expected = load_wav(path, 16000)
    assert errors.numpy().tolist() == [b""]
    assert lengths.numpy().tolist() == [len(expected)] == [8000]
    np.testing.assert_allclose(waves[0].numpy(), expected, atol=2e-6)


def test_rates_outside_the_supported_range_are_named(decode):
    batch = [wav_bytes(speech_like(16000, 0.2), rate) for rate in (3999, 4000, 192000, 192001)]
    _, lengths, errors = decode(tf.constant(batch))
    assert [e.decode() for e in errors.numpy()] == [
        "unsupported sample rate 3999 Hz: 4000 to 192000 Hz",
        "",
        # 3,200 samples at 192 kHz are 267 samples at 16 kHz: less than a 400-sample frame
        "audio shorter than one analysis frame",
        "unsupported sample rate 192001 Hz: 4000 to 192000 Hz",
    ]
    assert lengths.numpy().tolist() == [0, 12800, 0, 0]


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_one_sound_at_16k_and_at_other_rates_gives_the_same_features(front, rate):
    def features(wav):
        waves, lengths, errors = front.decode_wav(tf.constant([wav]))
        assert errors.numpy().tolist() == [b""]
        feats, mask = front.features(waves, lengths)
        return feats.numpy()[0], mask.numpy()[0]

    base, base_mask = features(wav_bytes(speech_like(16000), 16000))
    other, other_mask = features(wav_bytes(speech_like(rate), rate))
    np.testing.assert_array_equal(base_mask, other_mask)
    difference = np.abs(base - other)[base_mask]
    # normalised log-mel units (unit variance per bin); measured max 0.04
    assert difference.max() < 0.1 and difference.mean() < 0.01


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_speech_at_22k_gives_the_features_training_computes(front, tmp_path):
    """espeak-ng speaks at 22.05 kHz: the export's features equal those of the file
    resampled by `load_wav` and stored as 16 kHz 16-bit PCM (training's view)."""
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "three hundred and forty two"], check=True)
    native = path.read_bytes()
    assert int.from_bytes(native[24:28], "little") == 22050
    stored = wav_bytes(load_wav(path, 16000), 16000)
    waves, lengths, errors = front.decode_wav(tf.constant([native, stored]))
    assert errors.numpy().tolist() == [b"", b""] and lengths[0] == lengths[1]
    feats, mask = front.features(waves, lengths)
    difference = np.abs(feats[0].numpy() - feats[1].numpy())[mask[0].numpy()]
    assert difference.max() < 0.1 and difference.mean() < 0.005  # 16-bit rounding only


def test_a_model_transcribes_every_rate_alike():
    """Deterministic check through a whole (tiny, untrained) speech model: the same sound
    at 16, 22.05 and 48 kHz gives the same greedy transcript, and its teacher-forced
    logits move by a small fraction of their spread."""
    from s2s_zoo.data.media_preprocessors import AudioPreprocessor
    from s2s_zoo.data.tokenizer import train_sentencepiece
    from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
    from s2s_zoo.models.registry import build_from_catalog
    from tests.conftest import tiny_overrides

    keras.utils.set_random_seed(1)
    proto = train_sentencepiece(["one two three four five six seven eight nine"] * 5, 30)
    pre = AudioPreprocessor(proto, AudioFrontEnd(num_mel_bins=16), 12)
    model = build_from_catalog("speech_las", 0, pre.target_vocab_size,
                               **tiny_overrides("speech_las"))  # fmt: skip
    decoding = DecodingConfig(beam_size=2, num_hypotheses=1, max_length_ratio=0.0,
                              max_length_offset=8)  # fmt: skip
    inference = Seq2SeqInference(pre, model, decoding)
    wavs = tf.constant([wav_bytes(speech_like(rate), rate) for rate in (16000, 22050, 48000)])
    out = inference.greedy(wavs)
    assert out["errors"].numpy().tolist() == [b""] * 3
    assert len(set(out["outputs"].numpy().tolist())) == 1 and out["lengths"][0] > 0
    (features, mask), _, _ = pre.encode_source(wavs)
    target_in = tf.constant([[2, 5, 6, 7, 8, 9]] * 3)
    logits = model.training_model([features, mask, target_in]).numpy()
    spread = logits[0].std()
    assert np.abs(logits[1:] - logits[0]).max() < 0.05 * spread
