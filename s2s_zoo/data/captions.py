"""Caption data in the formats users have: image_path<TAB>caption TSV, COCO-style JSON.

Both give (absolute image path, caption) pairs; an image with several captions
appears once per caption. Problems name the file and line (TSV) or JSON field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from s2s_zoo.data.readers import DataFormatError, Pairs, read_pairs, resolve_data_file

_HEADERS = {("image_path", "caption"), ("image", "caption"), ("path", "caption")}


def read_caption_tsv(path: str | Path) -> Pairs:
    """(image, caption) pairs from `image_path<TAB>caption` lines (`read_pairs`' TSV, so
    the same strictness), with an optional header line; image paths are relative to
    the TSV's folder. Captions have their outer whitespace stripped."""
    report = read_pairs(path, file_format="tsv", tsv_columns=("image_path", "caption"))
    pairs: Pairs = []
    for (image, caption), number in zip(report.pairs, report.line_numbers, strict=True):
        if number == 1 and (image.strip().lower(), caption.strip().lower()) in _HEADERS:
            continue
        pairs.append((resolve_data_file(path, number, image, "image"), caption.strip()))
    if not pairs:
        raise DataFormatError(str(path), 0, "no (image, caption) lines, only a header")
    return pairs


def write_caption_tsv(path: str | Path, pairs: Iterable[tuple[str, str]]) -> None:
    """Inverse of `read_caption_tsv`; image paths relative to the TSV's folder."""
    path = Path(path)
    base = path.resolve().parent
    lines = []
    for image, caption in pairs:
        if "\t" in caption or "\n" in caption:
            raise ValueError(f"caption for {image} contains a tab or newline")
        lines.append(f"{os.path.relpath(Path(image).resolve(), base)}\t{caption}\n")
    path.write_text("".join(lines), encoding="utf-8")


def read_coco_captions(annotations: str | Path, image_dir: str | Path) -> Pairs:
    """COCO captions JSON (`images` with id/file_name, `annotations` with image_id/caption)."""
    annotations = Path(annotations)
    where = str(annotations)
    try:
        data = json.loads(annotations.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(where, error.lineno, f"invalid JSON: {error.msg}") from None
    for key in ("images", "annotations"):
        if not isinstance(data.get(key) if isinstance(data, dict) else None, list):
            raise DataFormatError(where, 0, f"missing list field {key!r}")
    files: dict[object, Path] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DataFormatError(where, 0, f"images[{i}]: needs 'id' and 'file_name'")
        files[image["id"]] = Path(image_dir) / image["file_name"]
    pairs: Pairs = []
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            raise DataFormatError(where, 0, f"annotations[{i}]: needs 'image_id' and 'caption'")
        if ann["image_id"] not in files:
            raise DataFormatError(
                where, 0, f"annotations[{i}].image_id: {ann['image_id']!r} has no entry in images"
            )
        caption = " ".join(str(ann["caption"]).split())
        if not caption:
            raise DataFormatError(where, 0, f"annotations[{i}].caption is empty")
        image_path = files[ann["image_id"]].resolve()
        if not image_path.is_file():
            raise DataFormatError(where, 0, f"annotations[{i}]: image file not found: {image_path}")
        pairs.append((str(image_path), caption))
    if not pairs:
        raise DataFormatError(where, 0, "no annotations")
    return pairs


def group_references(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Image -> all its captions, in first-seen order (references for BLEU)."""
    grouped: dict[str, list[str]] = {}
    for image, caption in pairs:
        grouped.setdefault(image, []).append(caption)
    return grouped
