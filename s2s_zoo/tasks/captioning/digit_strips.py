"""The embedded captioning task: strings of handwritten digits, captioned in words.

Made offline from scikit-learn's bundled digits (1,797 8x8 scans, no download):
each image shows 1-4 digits left to right at random sizes, gaps, heights and
colours; its caption is the digits in English words ("seven three one"). The
digit scans are split into two pools first, and test images use only the
held-out pool, so the test measures reading unseen handwriting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from s2s_zoo.data.captions import write_caption_tsv
from s2s_zoo.features.image import encode_png
from s2s_zoo.tasks.generated import is_made, mark_made, split_files

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HEIGHT, WIDTH = 32, 128


def _draw(digits: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Place 8x8 scans (0..16) on a canvas, left to right, with random size and jitter."""
    canvas = np.zeros((HEIGHT, WIDTH), np.float32)
    sizes = rng.integers(16, 25, size=len(digits))
    room = WIDTH - int(sizes.sum())
    gaps = rng.multinomial(max(room - 2, 0), np.ones(len(digits) + 1) / (len(digits) + 1))
    x = int(gaps[0]) + 1
    for scan, size, gap in zip(digits, sizes, gaps[1:], strict=True):
        scale = int(np.ceil(size / 8))
        glyph = np.kron(scan, np.ones((scale, scale), np.float32))[:size, :size] / 16.0
        y = int(rng.integers(0, HEIGHT - size + 1))
        canvas[y : y + size, x : x + size] = np.maximum(canvas[y : y + size, x : x + size], glyph)
        x += int(size) + int(gap)
    ink, paper = rng.integers(0, 90, 3), rng.integers(165, 256, 3)
    if rng.random() < 0.5:
        ink, paper = paper, ink
    rgb = paper[None, None, :] + canvas[..., None] * (ink - paper)[None, None, :]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_digit_caption_task(
    out_dir: str | Path,
    num_train: int = 6000,
    num_valid: int = 300,
    num_test: int = 500,
    seed: int = 0,
    min_digits: int = 1,
    max_digits: int = 4,
) -> dict[str, Path]:
    """Write PNGs and train/valid/test TSVs into `out_dir` (reused if already made)."""
    from sklearn.datasets import load_digits

    out_dir = Path(out_dir)
    params = {
        "num_train": num_train,
        "num_valid": num_valid,
        "num_test": num_test,
        "seed": seed,
        "min_digits": min_digits,
        "max_digits": max_digits,
        "version": 1,
    }
    files = split_files(out_dir)
    if is_made(out_dir, params):
        return files
    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    held_out = int(len(order) * 0.2)
    pools = {"seen": order[held_out:], "held_out": order[:held_out]}
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    sources: dict[str, list[list[int]]] = {}
    for split, count in (("train", num_train), ("valid", num_valid), ("test", num_test)):
        pool = pools["held_out" if split == "test" else "seen"]
        pairs, used = [], []
        for i in range(count):
            n = int(rng.integers(min_digits, max_digits + 1))
            picks = [int(p) for p in rng.choice(pool, size=n)]
            image = _draw([digits.images[p] for p in picks], rng)
            path = out_dir / "images" / f"{split}_{i:05d}.png"
            path.write_bytes(encode_png(image))
            pairs.append((str(path), " ".join(WORDS[digits.target[p]] for p in picks)))
            used.append(picks)
        write_caption_tsv(files[split], pairs)
        sources[split] = used
    mark_made(out_dir, params, digit_samples=sources)
    return files
