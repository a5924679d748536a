"""Caption data: readers, errors that name the place, the generated digit task.

Speech manifests and the espeak-ng task are in test_speech_data.py."""

from __future__ import annotations

import json
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


def test_digit_caption_task_is_deterministic_with_held_out_handwriting(tmp_path):
    from s2s_zoo.tasks.captioning.digit_strips import WORDS, make_digit_caption_task

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
