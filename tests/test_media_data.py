"""Caption and speech data: readers, errors that name the place, generated default tasks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from s2s_zoo.data.captions import (
    group_references,
    read_caption_tsv,
    read_coco_captions,
    write_caption_tsv,
)
from s2s_zoo.data.readers import DataFormatError
from s2s_zoo.data.speech import load_wav, read_manifest, write_manifest
from s2s_zoo.features.audio import wav_bytes
from s2s_zoo.features.image import encode_png


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(2):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(encode_png(np.full((4, 4, 3), 40 * i, np.uint8)))
        paths.append(path)
    return paths


def test_caption_tsv_round_trip_with_several_captions_per_image(tmp_path, images):
    pairs = [(str(images[0]), "a cat"), (str(images[0]), "one cat"), (str(images[1]), "a dog")]
    write_caption_tsv(tmp_path / "c.tsv", pairs)
    assert read_caption_tsv(tmp_path / "c.tsv") == [(str(Path(p).resolve()), c) for p, c in pairs]
    assert group_references(pairs) == {
        str(images[0]): ["a cat", "one cat"],
        str(images[1]): ["a dog"],
    }


@pytest.mark.parametrize(
    "line, reason",
    [("img/0.png", "expected image_path<TAB>caption"), ("img/0.png\t ", "empty caption"),
     ("img/9.png\ta cow", "image file not found")],
)  # fmt: skip
def test_caption_tsv_errors_name_file_and_line(tmp_path, images, line, reason):
    path = tmp_path / "bad.tsv"
    path.write_text(f"image_path\tcaption\nimg/1.png\tfine\n{line}\n")
    with pytest.raises(DataFormatError, match=rf"bad.tsv:3: {reason}"):
        read_caption_tsv(path)


def test_coco_captions_and_field_errors(tmp_path, images):
    data = {
        "images": [{"id": 7, "file_name": "0.png"}, {"id": 8, "file_name": "1.png"}],
        "annotations": [
            {"image_id": 7, "caption": "A  cat."},
            {"image_id": 8, "caption": "a dog"},
            {"image_id": 7, "caption": "the cat"},
        ],
    }
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(data))
    pairs = read_coco_captions(path, tmp_path / "img")
    assert [c for _, c in pairs] == ["A cat.", "a dog", "the cat"]
    assert pairs[0][0] == pairs[2][0] == str(images[0].resolve())
    data["annotations"].append({"image_id": 17, "caption": "ghost"})
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"annotations\[3\]\.image_id: 17 has no entry"):
        read_coco_captions(path, tmp_path / "img")


def tone(rate: int, seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_manifests_in_every_format(tmp_path, suffix):
    (tmp_path / "a.wav").write_bytes(wav_bytes(tone(16000), 16000))
    path = tmp_path / f"m{suffix}"
    if suffix == ".jsonl":
        path.write_text('{"path": "a.wav", "transcript": "hello  there"}\n\n')
    else:
        sep = "," if suffix == ".csv" else "\t"
        path.write_text(f"path{sep}transcript\na.wav{sep}hello  there\n")
    assert read_manifest(path) == [(str((tmp_path / "a.wav").resolve()), "hello there")]


def test_manifest_errors_name_file_and_line(tmp_path):
    (tmp_path / "a.wav").write_bytes(wav_bytes(tone(16000), 16000))
    path = tmp_path / "m.tsv"
    path.write_text("path\ttranscript\na.wav\tok\nmissing.wav\thi\n")
    with pytest.raises(DataFormatError, match=r"m.tsv:3: audio file not found"):
        read_manifest(path)
    path.write_text("file\ttext\na.wav\tok\n")
    with pytest.raises(DataFormatError, match=r"m.tsv:2: missing field 'path'"):
        read_manifest(path)
    write_manifest(path, [(str(tmp_path / "a.wav"), "ok")])
    assert read_manifest(path)[0][1] == "ok"


def test_load_wav_resamples_and_keeps_the_pitch(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(tone(22050, 1.0, hz=1000.0), 22050))
    samples = load_wav(path, 16000)
    assert len(samples) == 16000
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 16000 / len(samples) - 1000.0) <= 2.0
    same_rate = tmp_path / "b.wav"
    same_rate.write_bytes(wav_bytes(tone(16000), 16000))
    np.testing.assert_array_equal(load_wav(same_rate, 16000), np.round(tone(16000) * 32768) / 32768)


def test_load_wav_rejects_8_bit_audio_naming_the_file(tmp_path):
    import wave

    path = tmp_path / "eight.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(16000)
        w.writeframes(bytes(100))
    with pytest.raises(ValueError, match=r"eight.wav: 8-bit samples"):
        load_wav(path, 16000)


def test_digit_caption_task_is_deterministic_with_held_out_handwriting(tmp_path):
    from s2s_zoo.data.digit_captions import WORDS, make_digit_caption_task

    a = make_digit_caption_task(tmp_path / "a", num_train=20, num_valid=4, num_test=6, seed=3)
    b = make_digit_caption_task(tmp_path / "b", num_train=20, num_valid=4, num_test=6, seed=3)
    pairs_a, pairs_b = read_caption_tsv(a["test"]), read_caption_tsv(b["test"])
    assert [c for _, c in pairs_a] == [c for _, c in pairs_b]
    assert all(
        Path(x).read_bytes() == Path(y).read_bytes()
        for (x, _), (y, _) in zip(pairs_a, pairs_b, strict=True)
    )
    assert all(1 <= len(c.split()) <= 4 and set(c.split()) <= set(WORDS) for _, c in pairs_a)
    used = json.loads((tmp_path / "a" / "task.json").read_text())["digit_samples"]
    train = {s for image in used["train"] + used["valid"] for s in image}
    assert not train & {s for image in used["test"] for s in image}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_spoken_number_task_holds_out_voices_and_numbers(tmp_path):
    from s2s_zoo.data.espeak_numbers import make_spoken_number_task

    files = make_spoken_number_task(tmp_path, num_train=6, num_valid=2, num_test=3)
    meta = json.loads((tmp_path / "task.json").read_text())
    assert not set(meta["voices"]["test"]) & set(meta["voices"]["train"] + meta["voices"]["valid"])
    train_texts = {t for _, t in read_manifest(files["train"])}
    test = read_manifest(files["test"])
    assert not train_texts & {t for _, t in test}
    samples = load_wav(test[0][0], 16000)
    assert len(samples) > 1600 and np.abs(samples).max() > 0.01
