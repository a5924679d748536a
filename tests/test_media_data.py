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
    [("img/0.png", r"expected 2 tab-separated fields \(image_path<TAB>caption\)"),
     ("img/0.png\t ", r"caption field \(column 2\) is empty"),
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


def _make(out_dir, **kwargs):
    from s2s_zoo.tasks.captioning.digit_strips import make_digit_caption_task

    sizes = {"num_train": 24, "num_valid": 8, "num_test": 12, "seed": 3}
    return make_digit_caption_task(out_dir, **{**sizes, **kwargs})


def test_digit_caption_task_is_deterministic_with_held_out_handwriting(tmp_path):
    from s2s_zoo.tasks.captioning.digit_strips import WORDS, read_sources

    a, b = _make(tmp_path / "a"), _make(tmp_path / "b")
    for split in ("train", "test"):
        pairs_a, pairs_b = read_caption_tsv(a[split]), read_caption_tsv(b[split])
        assert [c for _, c in pairs_a] == [c for _, c in pairs_b]
        assert all(
            Path(x).read_bytes() == Path(y).read_bytes()
            for (x, _), (y, _) in zip(pairs_a, pairs_b, strict=True)
        )
        assert all(1 <= len(c.split()) <= 4 and set(c.split()) <= set(WORDS) for _, c in pairs_a)
        sources_a = read_sources(a[split])
        assert list(sources_a) == [p for p, _ in pairs_a]
        assert list(read_sources(b[split]).values()) == list(sources_a.values())
    used = json.loads((tmp_path / "a" / "task.json").read_text())["digit_samples"]
    train = {s for image in used["train"] + used["valid"] for s in image}
    assert not train & {s for image in used["test"] for s in image}


def test_digit_task_sets_valid_and_test_in_held_out_fonts(tmp_path, capsys):
    from s2s_zoo.tasks.captioning.digit_strips import HANDWRITING, read_sources
    from s2s_zoo.tasks.captioning.font_glyphs import find_fonts

    fonts = find_fonts()
    if not (fonts.train and fonts.held_out):
        pytest.skip("needs the Debian font packages of .ci/run")
    files = _make(tmp_path, num_train=40, font_fraction=0.6)
    log = capsys.readouterr().out
    assert "sources handwriting + fonts" in log and "held-out fonts" in log
    seen = {}
    for split, path in files.items():
        sources = read_sources(path)
        assert set(sources) == {p for p, _ in read_caption_tsv(path)}
        seen[split] = set(sources.values()) - {HANDWRITING}
        assert HANDWRITING in sources.values() and seen[split]
        assert not any("dejavu" in s.lower() for s in seen[split])
    assert seen["train"] <= set(fonts.train)
    assert seen["valid"] | seen["test"] <= set(fonts.held_out)
    task = json.loads((tmp_path / "task.json").read_text())
    assert task["font_split"]["held_out"] == sorted(fonts.held_out)
    assert sum(task["source_counts"]["train"].values()) == 40
    # fonts only: every strip is typeset; handwriting only: none is, and no fonts are looked up
    only_fonts = read_sources(_make(tmp_path / "f", sources=("fonts",))["test"])
    assert HANDWRITING not in only_fonts.values()
    only_hand = _make(tmp_path / "h", sources=("handwriting",))
    assert set(read_sources(only_hand["train"]).values()) == {HANDWRITING}
    assert json.loads((tmp_path / "h" / "task.json").read_text())["params"]["fonts"] == {}


def test_digit_task_without_fonts_falls_back_to_handwriting_loudly(tmp_path, capsys):
    from s2s_zoo.tasks.captioning.digit_strips import HANDWRITING, read_sources

    empty = tmp_path / "no_fonts"
    empty.mkdir()
    files = _make(tmp_path / "task", font_dirs=[empty])
    err = capsys.readouterr().err
    assert "no usable fonts found" in err and "HANDWRITING ONLY" in err
    assert "fonts-liberation2" in err
    assert set(read_sources(files["train"]).values()) == {HANDWRITING}
    with pytest.raises(RuntimeError, match="fonts only"):
        _make(tmp_path / "task2", font_dirs=[empty], sources=("fonts",))
    with pytest.raises(ValueError, match="sources must be"):
        _make(tmp_path / "task3", sources=("handwriting", "photos"))


def test_digit_task_is_reused_until_its_fonts_change(tmp_path):
    from s2s_zoo.tasks.captioning.font_glyphs import find_fonts

    fonts = find_fonts()
    if not fonts.train:
        pytest.skip("needs the Debian font packages of .ci/run")
    files = _make(tmp_path / "t", sources=("fonts",))
    stamp = files["train"].stat().st_mtime_ns
    assert _make(tmp_path / "t", sources=("fonts",))["train"].stat().st_mtime_ns == stamp
    one = tmp_path / "one_font"
    one.mkdir()
    path = next(iter(fonts.train.values()))[0]
    (one / path.name).symlink_to(path)
    _make(tmp_path / "t", sources=("fonts",), font_dirs=[one])
    assert files["train"].stat().st_mtime_ns != stamp


def test_read_sources_names_file_and_line(tmp_path):
    from s2s_zoo.tasks.captioning.digit_strips import read_sources

    (tmp_path / "test.sources.tsv").write_text("image_path\tsource\na.png\tGo\nb.png\n")
    with pytest.raises(DataFormatError, match=r"sources.tsv:3: expected image_path<TAB>source"):
        read_sources(tmp_path / "test.tsv")
    (tmp_path / "test.sources.tsv").write_text("a.png\tGo\na.png\thandwriting\n")
    with pytest.raises(DataFormatError, match=r"test.sources.tsv:2: image listed twice"):
        read_sources(tmp_path / "test.tsv")
    (tmp_path / "test.sources.tsv").write_text("a.png\tGo\nsub/b.png\thandwriting\n")
    assert read_sources(tmp_path / "test.tsv") == {
        str((tmp_path / "a.png").resolve()): "Go",
        str((tmp_path / "sub" / "b.png").resolve()): "handwriting",
    }
    with pytest.raises(FileNotFoundError, match="valid.sources.tsv"):
        read_sources(tmp_path / "valid.tsv")
