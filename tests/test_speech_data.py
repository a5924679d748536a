"""Speech data: manifests in every format, errors that name the place, WAV loading and
resampling that agree with the exported graph, and the spoken-number task."""

from __future__ import annotations

import json
import re
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.asr_manifests import read_manifest, write_manifest
from s2s_zoo.data.readers import DataFormatError
from s2s_zoo.data.wav_files import load_wav, wav_bytes
from s2s_zoo.features.audio import AudioFrontEnd


def tone(rate: int, seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(samples, rate))
    return path


def raw_wav(path: Path, width: int, frames: bytes, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(16000)
        writer.writeframes(frames)
    return path


def peak_hz(samples: np.ndarray, rate: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(samples)))) * rate / len(samples)


@pytest.fixture
def audio(tmp_path: Path) -> dict[str, str]:
    """Two WAVs under tmp_path: 'clips/a.wav' and 'b.wav', by name -> absolute path."""
    a = write_wav(tmp_path / "clips" / "a.wav", tone(16000))
    b = write_wav(tmp_path / "b.wav", tone(16000, hz=880.0))
    return {"a": str(a.resolve()), "b": str(b.resolve())}


# -- manifests -----------------------------------------------------------------------------


def test_csv_with_quotes_extra_columns_and_a_byte_order_mark(tmp_path, audio):
    path = tmp_path / "m.csv"
    text = 'id,path,transcript\n1,clips/a.wav,"hello,  there"\n2,' + audio["b"] + ",bye\n"
    path.write_text("\ufeff" + text, encoding="utf-8")
    assert read_manifest(path) == [(audio["a"], "hello, there"), (audio["b"], "bye")]


def test_tsv_takes_quotes_literally(tmp_path, audio):
    path = tmp_path / "m.tsv"
    path.write_text('path\ttranscript\nclips/a.wav\tsay "hi"\n\nb.wav\t yes \n')
    assert read_manifest(path) == [(audio["a"], 'say "hi"'), (audio["b"], "yes")]


def test_jsonl_with_custom_field_names(tmp_path, audio):
    path = tmp_path / "m.jsonl"
    rows = [{"wav": "clips/a.wav", "text": "one two"}, {"wav": "b.wav", "text": "three"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    pairs = read_manifest(path, path_field="wav", transcript_field="text")
    assert pairs == [(audio["a"], "one two"), (audio["b"], "three")]


def test_file_format_overrides_the_extension(tmp_path, audio):
    path = tmp_path / "list.txt"
    path.write_text("path\ttranscript\nb.wav\tok\n")
    with pytest.raises(ValueError, match="file_format"):
        read_manifest(path)
    assert read_manifest(path, file_format="tsv") == [(audio["b"], "ok")]


def test_write_manifest_round_trips_with_relative_paths(tmp_path, audio):
    path = tmp_path / "out.tsv"
    write_manifest(path, [(audio["a"], "first one"), (audio["b"], "second")])
    assert path.read_text().splitlines()[1] == "clips/a.wav\tfirst one"
    assert read_manifest(path) == [(audio["a"], "first one"), (audio["b"], "second")]
    with pytest.raises(ValueError, match="tab"):
        write_manifest(path, [(audio["a"], "bad\ttext")])


@pytest.mark.parametrize(
    ("name", "content", "line", "reason"),
    [
        ("m.tsv", "file\ttext\nb.wav\tok\n", 1, "missing column 'path'"),
        ("m.csv", "path,transcript\nb.wav,ok\nb.wav\n", 3, "expected 2 fields"),
        ("m.tsv", "path\ttranscript\nb.wav\tok\nb.wav\t  \n", 3, "empty transcript"),
        ("m.tsv", "path\ttranscript\nb.wav\tok\nnope.wav\thi\n", 3, "audio file not found"),
        (
            "m.jsonl",
            '{"path": "b.wav", "transcript": "ok"}\n\n{"path": "b.wav"}\n',
            3,
            "missing field 'transcript'",
        ),
        (
            "m.jsonl",
            '{"path": "b.wav", "transcript": 7}\n',
            1,
            "field 'transcript' must be a string",
        ),
        ("m.jsonl", '{"path": "b.wav",\n', 1, "invalid JSON"),
    ],
)
def test_errors_name_the_manifest_and_line(tmp_path, audio, name, content, line, reason):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFormatError, match=re.escape(f"{name}:{line}: {reason}")) as info:
        read_manifest(path)
    assert info.value.path == str(path) and info.value.line_number == line


def test_a_manifest_without_rows_is_an_error(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("path,transcript\n")
    with pytest.raises(DataFormatError, match="no .audio, transcript. rows"):
        read_manifest(path)


# -- load_wav ------------------------------------------------------------------------------


def test_load_wav_equals_the_graph_decoder_at_the_model_rate(tmp_path):
    mono = write_wav(tmp_path / "mono.wav", tone(16000))
    stereo = np.stack([tone(16000), tone(16000, hz=1000.0)], axis=1)
    two = write_wav(tmp_path / "stereo.wav", stereo)
    front = AudioFrontEnd(num_mel_bins=16)
    waves, lengths, errors = front.decode_wav(tf.constant([mono.read_bytes(), two.read_bytes()]))
    assert errors.numpy().tolist() == [b"", b""]
    for i, path in enumerate((mono, two)):
        samples = load_wav(path, 16000)
        assert samples.dtype == np.float32 and len(samples) == lengths[i]
        np.testing.assert_array_equal(samples, waves[i].numpy())
    np.testing.assert_array_equal(
        load_wav(mono, 16000), np.round(tone(16000) * 32768).astype(np.float32) / 32768
    )


@pytest.mark.parametrize("num_samples", [22050, 1001, 7])
def test_load_wav_resamples_to_the_rounded_length(tmp_path, num_samples):
    path = write_wav(tmp_path / "a.wav", tone(22050, num_samples / 22050, hz=1000.0), 22050)
    samples = load_wav(path, 16000)
    assert len(samples) == int(num_samples * 16000 / 22050 + 0.5)
    assert samples.dtype == np.float32 and np.abs(samples).max() <= 1.0


def test_resampling_keeps_the_pitch(tmp_path):
    for hz in (440.0, 1000.0, 3000.0):
        path = write_wav(tmp_path / "a.wav", tone(22050, 1.0, hz=hz), 22050)
        samples = load_wav(path, 16000)
        assert abs(peak_hz(samples, 16000) - hz) <= 2.0
        assert abs(np.sqrt(np.mean(samples[500:-500] ** 2)) - 0.5 / np.sqrt(2)) < 0.01
    up = load_wav(write_wav(tmp_path / "c.wav", tone(8000, 1.0), 8000), 16000)
    assert len(up) == 16000 and abs(peak_hz(up, 16000) - 440.0) <= 2.0


def test_load_wav_rejects_what_is_not_16_bit_pcm_naming_the_file(tmp_path):
    eight = raw_wav(tmp_path / "eight.wav", 1, bytes(100))
    with pytest.raises(ValueError, match=r"eight\.wav: 8-bit samples"):
        load_wav(eight, 16000)
    deep = raw_wav(tmp_path / "deep.wav", 3, bytes(300))
    with pytest.raises(ValueError, match=r"deep\.wav: 24-bit samples"):
        load_wav(deep, 16000)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    with pytest.raises(ValueError, match=r"notes\.wav: not a WAV file"):
        load_wav(text, 16000)
    floats = bytearray(wav_bytes(tone(16000), 16000))
    floats[20] = 3  # WAVE_FORMAT_IEEE_FLOAT
    compressed = tmp_path / "float.wav"
    compressed.write_bytes(bytes(floats))
    with pytest.raises(ValueError, match=r"float\.wav: unsupported WAV .*16-bit PCM"):
        load_wav(compressed, 16000)


def test_load_wav_keeps_the_whole_frames_of_a_cut_off_file(tmp_path):
    data = wav_bytes(tone(16000, 0.1), 16000)
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: 44 + 1001])  # header says 1600 samples; 500.5 are there
    samples = load_wav(path, 16000)
    np.testing.assert_array_equal(samples, np.round(tone(16000, 0.1)[:500] * 32768) / 32768)
    waves, lengths, errors = AudioFrontEnd().decode_wav(tf.constant([path.read_bytes()]))
    assert errors.numpy().tolist() == [b""] and lengths.numpy().tolist() == [500]
    np.testing.assert_array_equal(waves[0].numpy(), samples)


# -- the spoken-number task (espeak-ng, plus festival when installed) ----------------------


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_spoken_number_task_holds_out_voices_and_is_reused(tmp_path):
    from s2s_zoo.tasks.speech.engines import EspeakEngine, FestivalEngine
    from s2s_zoo.tasks.speech.sources import read_sourced_split
    from s2s_zoo.tasks.speech.spoken_numbers import make_spoken_number_task

    sizes = {"num_train": 10, "num_valid": 3, "num_test": 6}
    files = make_spoken_number_task(tmp_path / "a", seed=3, **sizes)
    meta = json.loads((tmp_path / "a" / "task.json").read_text())
    held_out = {"espeak-ng": EspeakEngine().voices()[1], "festival": FestivalEngine.TEST_VOICES}
    for split, by_engine in meta["voices"].items():
        for engine, voices in by_engine.items():
            assert voices and (set(voices) <= set(held_out[engine])) == (split == "test")
            assert split == "test" or not set(voices) & set(held_out[engine])
    engines = set(meta["params"]["engines"])
    assert engines == {"espeak-ng", "festival"} if shutil.which("festival") else {"espeak-ng"}
    splits = {name: read_sourced_split(path) for name, path in files.items()}
    assert {name: len(rows) for name, rows in splits.items()} == {
        "train": 10,
        "valid": 3,
        "test": 6,
    }
    assert {u.engine for rows in splits.values() for u in rows} == engines  # fixed seed: all used
    assert splits == {name: read_sourced_split(path) for name, path in files.items()}
    train_texts = {u.transcript for u in splits["train"]}
    assert not train_texts & {u.transcript for u in splits["test"] + splits["valid"]}
    for utterance in splits["train"] + splits["test"]:
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", utterance.transcript)
        with wave.open(utterance.path, "rb") as reader:
            assert (reader.getframerate(), reader.getsampwidth(), reader.getnchannels()) == (
                16000,
                2,
                1,
            )
        samples = load_wav(utterance.path, 16000)
        assert len(samples) > 4000 and np.abs(samples).max() > 0.05

    # same parameters: reused untouched; same seed elsewhere: the same bytes
    first = Path(splits["test"][0].path)
    stamp = first.stat().st_mtime_ns
    assert make_spoken_number_task(tmp_path / "a", seed=3, **sizes) == files
    assert first.stat().st_mtime_ns == stamp
    again = make_spoken_number_task(tmp_path / "b", seed=3, **sizes)
    again_test = read_manifest(again["test"])
    assert [t for _, t in again_test] == [u.transcript for u in splits["test"]]
    assert Path(again_test[0][0]).read_bytes() == first.read_bytes()

    # a changed parameter re-plans, but keeps the files it can and drops the rest
    make_spoken_number_task(tmp_path / "a", seed=3, **{**sizes, "num_train": 12})
    assert first.stat().st_mtime_ns == stamp  # same test utterance: not re-rendered
    wavs = sorted(p.name for p in (tmp_path / "a" / "wav").iterdir())
    listed = sorted(Path(p).name for path in files.values() for p, _ in read_manifest(path))
    assert wavs == listed and len(wavs) == 12 + 3 + 6
