"""The embedded captioning task: strings of digits, handwritten or typeset, captioned in words.

Made offline, no download: each 32x128 image shows 1-4 digits left to right at
random sizes, gaps, heights and colours; its caption is the digits in English
words ("seven three one"). A strip's digits come from one source:

- "handwriting": scikit-learn's bundled digits (1,797 8x8 scans), split into two
  pools first; test strips use only the held-out pool (unseen handwriting).
- a font family (see font_glyphs.py): digits rendered from fonts installed by
  Debian packages, varying weight (the family's files), slant, stroke width and
  size per glyph or per strip. Whole font designs are held out: valid and test
  strips use only held-out families. DejaVu is never used (kept for an outside
  check).

A model trained on the scans alone learns the scanner, not digits; the fonts are
there so it learns digit shapes. Each split's `<split>.sources.tsv` records every
image's source (the caption TSV keeps its two columns); `read_sources` reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from s2s_zoo.data.captions import write_caption_tsv
from s2s_zoo.data.readers import DataFormatError
from s2s_zoo.features.image import encode_png
from s2s_zoo.tasks.captioning import font_glyphs
from s2s_zoo.tasks.generated import is_made, mark_made, split_files

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HEIGHT, WIDTH = 32, 128
HANDWRITING = "handwriting"
SOURCES = (HANDWRITING, "fonts")
FONT_EM_RANGE = (16.0, 32.0)  # pixels per em: digits ~11-23 px tall, like the 16-24 px scans


def _scan_glyph(scan: np.ndarray, size: int) -> np.ndarray:
    """An 8x8 scan (0..16) blown up to size x size ink coverage in [0, 1]."""
    scale = int(np.ceil(size / 8))
    return np.kron(scan, np.ones((scale, scale), np.float32))[:size, :size] / 16.0


def _compose(
    glyphs: Sequence[np.ndarray], tops: Sequence[int] | None, rng: np.random.Generator
) -> np.ndarray:
    """Place ink glyphs left to right with random gaps on a HEIGHT x WIDTH canvas.

    With `tops` (each glyph's top relative to a shared baseline) the glyphs sit
    on one random baseline, +-1 px; without, each gets its own random height.
    """
    canvas = np.zeros((HEIGHT, WIDTH), np.float32)
    room = WIDTH - sum(g.shape[1] for g in glyphs)
    gaps = rng.multinomial(max(room - 2, 0), np.ones(len(glyphs) + 1) / (len(glyphs) + 1))
    if tops is not None:
        low = -min(tops)
        high = HEIGHT - max(t + g.shape[0] for t, g in zip(tops, glyphs, strict=True))
        baseline = int(rng.integers(low, max(low, high) + 1))
    x = int(gaps[0]) + 1
    for i, (glyph, gap) in enumerate(zip(glyphs, gaps[1:], strict=True)):
        h, w = glyph.shape
        if tops is None:
            y = int(rng.integers(0, HEIGHT - h + 1))
        else:
            y = int(np.clip(baseline + tops[i] + rng.integers(-1, 2), 0, HEIGHT - h))
        canvas[y : y + h, x : x + w] = np.maximum(canvas[y : y + h, x : x + w], glyph)
        x += w + int(gap)
    return canvas


def _colour(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark ink on light paper, or the reverse, each colour random."""
    ink, paper = rng.integers(0, 90, 3), rng.integers(165, 256, 3)
    if rng.random() < 0.5:
        ink, paper = paper, ink
    rgb = paper[None, None, :] + canvas[..., None] * (ink - paper)[None, None, :]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _handwriting_strip(scans: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    sizes = rng.integers(16, 25, size=len(scans))
    return _compose([_scan_glyph(s, int(z)) for s, z in zip(scans, sizes, strict=True)], None, rng)


def _font_strip(
    digits: Sequence[int], files: Sequence[Path], rng: np.random.Generator
) -> np.ndarray:
    """One family; half the strips keep one style, size and baseline, half vary per glyph."""
    consistent = rng.random() < 0.5
    shared = font_glyphs.random_glyph_style(rng, files)
    shared_size = rng.uniform(*FONT_EM_RANGE)
    plan = [
        (shared, shared_size) if consistent
        else (font_glyphs.random_glyph_style(rng, files), rng.uniform(*FONT_EM_RANGE))
        for _ in digits
    ]  # fmt: skip
    shrink = 1.0
    for _ in range(4):  # wide faces (bold, extended, slanted) may not fit: shrink and redraw
        glyphs = [
            font_glyphs.draw_glyph(s["path"], d, size * shrink, s["shear"], s["stroke"])
            for d, (s, size) in zip(digits, plan, strict=True)
        ]
        width = sum(g.ink.shape[1] for g in glyphs)
        height = max(g.ink.shape[0] for g in glyphs)
        if consistent:
            height = max(g.top + g.ink.shape[0] for g in glyphs) - min(g.top for g in glyphs)
        fit = min((WIDTH - 2) / width, HEIGHT / height)
        if fit >= 1.0:
            break
        shrink *= fit * 0.97
    tops = [g.top for g in glyphs] if consistent else None
    return _compose([g.ink for g in glyphs], tops, rng)


def _pick_family(fonts: dict[str, tuple[Path, ...]], rng: np.random.Generator) -> str:
    """A design group uniformly, then one of its installed families (clones do not dominate)."""
    group_of = {f.name: f.group for f in font_glyphs.FAMILIES}
    groups = sorted({group_of.get(name, name) for name in fonts})
    group = groups[int(rng.integers(len(groups)))]
    members = [name for name in fonts if group_of.get(name, name) == group]
    return members[int(rng.integers(len(members)))]


def sources_file(split_path: str | Path) -> Path:
    """`.../test.tsv` -> `.../test.sources.tsv`."""
    split_path = Path(split_path)
    return split_path.with_name(f"{split_path.stem}.sources.tsv")


def read_sources(split_path: str | Path) -> dict[str, str]:
    """{absolute image path: source} for a split, from the `<split>.sources.tsv` beside it.

    Keys match the image paths `read_caption_tsv(split_path)` returns; a source
    is "handwriting" or a font family name.
    """
    path = sources_file(split_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no sources file (only the generated digit task has one)")
    base = path.resolve().parent
    sources: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or (number == 1 and line == "image_path\tsource"):
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise DataFormatError(
                    str(path), number, f"expected image_path<TAB>source, got {len(fields)} fields"
                )
            image, source = str((base / fields[0].strip()).resolve()), fields[1].strip()
            if not source:
                raise DataFormatError(str(path), number, "empty source")
            if image in sources:
                raise DataFormatError(str(path), number, f"image listed twice: {image}")
            sources[image] = source
    return sources


def _write_sources(path: Path, rows: Sequence[tuple[Path, str]]) -> None:
    base = path.resolve().parent
    lines = [f"{p.resolve().relative_to(base)}\t{s}\n" for p, s in rows]
    path.write_text("image_path\tsource\n" + "".join(lines), encoding="utf-8")


def _fonts_for(
    sources: Sequence[str], font_dirs: Sequence[str | Path] | None
) -> font_glyphs.FontSet | None:
    """Installed fonts if `sources` asks for them, saying loudly what is missing."""
    if "fonts" not in sources:
        return None
    font_dirs = tuple(font_dirs or font_glyphs.DEFAULT_FONT_DIRS)
    fonts = font_glyphs.find_fonts(font_dirs)
    if fonts.train or fonts.held_out:
        return fonts
    message = (
        f"no usable fonts found in {', '.join(map(str, font_dirs))}; "
        f"install: apt-get install {' '.join(font_glyphs.FONT_PACKAGES)}"
    )
    if HANDWRITING not in sources:
        raise RuntimeError(f"digit task asked for fonts only, but {message}")
    font_glyphs.warn(
        f"{message}\nThe digit captioning task falls back to HANDWRITING ONLY: a model trained"
        " on it reads scanned digits, not printed ones."
    )
    return None


def make_digit_caption_task(
    out_dir: str | Path,
    num_train: int = 6000,
    num_valid: int = 300,
    num_test: int = 500,
    seed: int = 0,
    min_digits: int = 1,
    max_digits: int = 4,
    sources: Sequence[str] = SOURCES,
    font_fraction: float = 0.5,
    font_dirs: Sequence[str | Path] | None = None,
) -> dict[str, Path]:
    """Write PNGs, train/valid/test TSVs and their `.sources.tsv` into `out_dir`.

    `sources` picks glyph sources ("handwriting", "fonts"); with both, a strip is
    typeset with probability `font_fraction`. Fonts are searched in `font_dirs`
    (default /usr/share/fonts, /usr/local/share/fonts). The directory is reused
    if made with the same parameters and the same installed fonts.
    """
    from sklearn.datasets import load_digits

    sources = tuple(sources)
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        raise ValueError(f"sources must be a non-empty subset of {SOURCES}, got {sources}")
    if not 0.0 <= font_fraction <= 1.0:
        raise ValueError(f"font_fraction must be in [0, 1], got {font_fraction}")
    if not 1 <= min_digits <= max_digits <= 4:
        raise ValueError(f"need 1 <= min_digits <= max_digits <= 4, got {min_digits}, {max_digits}")
    out_dir = Path(out_dir)
    fonts = _fonts_for(sources, font_dirs)
    params = {
        "num_train": num_train,
        "num_valid": num_valid,
        "num_test": num_test,
        "seed": seed,
        "min_digits": min_digits,
        "max_digits": max_digits,
        "sources": list(sources),
        "font_fraction": font_fraction,
        "fonts": fonts.fingerprint() if fonts else {},
        "version": 2,
    }
    fraction = 0.0 if fonts is None else (1.0 if HANDWRITING not in sources else font_fraction)
    used = [HANDWRITING] * (fraction < 1.0) + ["fonts"] * (fraction > 0.0)
    print(f"digit strips: sources {' + '.join(used)} (fonts on {fraction:.0%} of strips)")
    if fonts is not None:
        print(font_glyphs.describe(fonts))
    files = split_files(out_dir)
    if is_made(out_dir, params) and all(sources_file(f).is_file() for f in files.values()):
        return files
    if fonts is not None and not fonts.held_out:
        font_glyphs.warn("no held-out font designs installed: valid/test strips reuse train fonts")
    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    held_out = int(len(order) * 0.2)
    pools = {"seen": order[held_out:], "held_out": order[:held_out]}
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    samples: dict[str, list[list[int]]] = {}
    counts: dict[str, dict[str, int]] = {}
    for split, count in (("train", num_train), ("valid", num_valid), ("test", num_test)):
        pool = pools["held_out" if split == "test" else "seen"]
        font_pool = {}
        if fonts is not None:
            font_pool = fonts.train if split == "train" or not fonts.held_out else fonts.held_out
        pairs, picked, origin = [], [], []
        for i in range(count):
            n = int(rng.integers(min_digits, max_digits + 1))
            if font_pool and rng.random() < fraction:
                family = _pick_family(font_pool, rng)
                number = [int(d) for d in rng.integers(0, 10, size=n)]
                image = _font_strip(number, font_pool[family], rng)
                picks, source = [], family
            else:
                picks = [int(p) for p in rng.choice(pool, size=n)]
                number = [int(digits.target[p]) for p in picks]
                image = _handwriting_strip([digits.images[p] for p in picks], rng)
                source = HANDWRITING
            path = out_dir / "images" / f"{split}_{i:05d}.png"
            path.write_bytes(encode_png(_colour(image, rng)))
            pairs.append((str(path), " ".join(WORDS[d] for d in number)))
            picked.append(picks)
            origin.append((path, source))
        write_caption_tsv(files[split], pairs)
        _write_sources(sources_file(files[split]), origin)
        samples[split] = picked
        counts[split] = dict(sorted(Counter(s for _, s in origin).items()))
    mark_made(
        out_dir,
        params,
        digit_samples=samples,
        source_counts=counts,
        font_split={
            "train": sorted(fonts.train) if fonts else [],
            "held_out": sorted(fonts.held_out) if fonts else [],
        },
    )
    return files
