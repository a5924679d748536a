"""Typeset digit glyphs for the captioning task, from TrueType/OpenType fonts on this machine.

A captioner trained only on scikit-learn's 8x8 scans learns the scanner, not
digits, so the default task also sets digits in real fonts. Fonts come from
Debian packages (fonts-liberation2, fonts-freefont-ttf, fonts-urw-base35,
fonts-noto-core, ...), never from the network. Each known family has a design
group (metric clones such as Liberation Sans / FreeSans / Nimbus Sans share one)
and whole groups are held out for the valid/test splits, so a test strip is
always set in a design the model never saw. DejaVu (and its Bitstream Vera
ancestry) is excluded everywhere: it is kept for an outside check.

Glyphs are rasterised large with Pillow, thickened or thinned (grey dilation /
erosion with a disc), slanted (affine shear), then box-filtered down to the
requested size, which gives anti-aliased edges like real rendering.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
FONT_SUFFIXES = (".ttf", ".otf")
# Never used, whatever a file is called: kept out for an outside check.
EXCLUDED_FAMILY = re.compile(r"dejavu|bitstream vera", re.IGNORECASE)
# Styles too faint to read once shrunk to ~16 px.
EXCLUDED_STYLE = re.compile(r"hairline", re.IGNORECASE)
RENDER_EM = 128  # pixels per em for the large rasterisation


@dataclass(frozen=True)
class FontFamily:
    name: str  # what sources.tsv records
    package: str  # Debian package that installs it
    files: str  # regex matched against the file name
    group: str  # design group; clones share one and are never split across train/held-out
    held_out: bool = False  # valid/test only


FAMILIES: tuple[FontFamily, ...] = (
    FontFamily("Liberation Sans", "fonts-liberation2", r"^LiberationSans-", "helvetica"),
    FontFamily("Liberation Serif", "fonts-liberation2", r"^LiberationSerif-", "times"),
    FontFamily("Liberation Mono", "fonts-liberation2", r"^LiberationMono-", "courier"),
    FontFamily("FreeSans", "fonts-freefont-ttf", r"^FreeSans(Bold)?(Oblique)?\.", "helvetica"),
    FontFamily("FreeSerif", "fonts-freefont-ttf", r"^FreeSerif(Bold)?(Italic)?\.", "times"),
    FontFamily("FreeMono", "fonts-freefont-ttf", r"^FreeMono(Bold)?(Oblique)?\.", "courier"),
    FontFamily("Nimbus Sans", "fonts-urw-base35", r"^NimbusSans-", "helvetica"),
    FontFamily("Nimbus Sans Narrow", "fonts-urw-base35", r"^NimbusSansNarrow-", "helvetica"),
    FontFamily("Nimbus Roman", "fonts-urw-base35", r"^NimbusRoman-", "times"),
    FontFamily("Nimbus Mono PS", "fonts-urw-base35", r"^NimbusMonoPS-", "courier"),
    FontFamily("P052", "fonts-urw-base35", r"^P052-", "palatino"),
    FontFamily("URW Bookman", "fonts-urw-base35", r"^URWBookman-", "bookman"),
    FontFamily("URW Gothic", "fonts-urw-base35", r"^URWGothic-", "avant-garde"),
    FontFamily("Z003", "fonts-urw-base35", r"^Z003-", "chancery"),
    FontFamily("Noto Sans", "fonts-noto-core", r"^NotoSans(Display)?-", "droid-sans"),
    FontFamily("Open Sans", "fonts-open-sans", r"^OpenSans-", "droid-sans"),
    FontFamily("Lato", "fonts-lato", r"^Lato-", "lato"),
    FontFamily("Carlito", "fonts-crosextra-carlito", r"^Carlito-", "carlito"),
    FontFamily("Caladea", "fonts-crosextra-caladea", r"^Caladea-", "caladea"),
    FontFamily("Cabin", "fonts-cabin", r"^Cabin-", "cabin"),
    FontFamily("Comic Neue", "fonts-comic-neue", r"^ComicNeue-", "comic"),
    FontFamily("EB Garamond", "fonts-ebgaramond", r"^EBGaramond(08|12)-", "garamond"),
    # held out: two sans, two serif, two monospaced designs
    FontFamily("Roboto", "fonts-roboto-unhinted", r"^Roboto(Condensed)?-", "roboto", True),
    FontFamily("Go", "fonts-go", r"^Go-(?!Mono)", "go", True),
    FontFamily("Go Mono", "fonts-go", r"^Go-Mono", "go", True),
    FontFamily("C059", "fonts-urw-base35", r"^C059-", "century", True),
    FontFamily("Noto Serif", "fonts-noto-core", r"^NotoSerif(Display)?-", "droid-serif", True),
    FontFamily("Inconsolata", "fonts-inconsolata", r"^Inconsolata", "inconsolata", True),
)
# What .ci/run and the README install.
FONT_PACKAGES = tuple(dict.fromkeys(f.package for f in FAMILIES))


@dataclass(frozen=True)
class FontSet:
    """Installed families by split role, plus what the catalogue wanted but did not find."""

    train: dict[str, tuple[Path, ...]]
    held_out: dict[str, tuple[Path, ...]]
    missing: tuple[FontFamily, ...]
    notes: tuple[str, ...] = ()  # deviations from the catalogue's split, for the log

    def fingerprint(self) -> dict[str, dict[str, list[str]]]:
        """JSON-able file names by role: a task made with other fonts is regenerated."""
        return {
            role: {name: [p.name for p in paths] for name, paths in fonts.items()}
            for role, fonts in (("train", self.train), ("held_out", self.held_out))
        }


@functools.lru_cache(maxsize=512)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def _glyph_mask(path: str, text: str, size: int = 32) -> np.ndarray:
    """`text` drawn at `size` px per em, cropped to its ink ([0, 0] if it has none)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (2 * size, 2 * size))
    draw = ImageDraw.Draw(canvas)
    draw.text((size // 2, 3 * size // 2), text, font=_font(path, size), fill=255, anchor="ls")
    box = canvas.getbbox()
    if box is None:
        return np.zeros((0, 0), np.uint8)
    return np.asarray(canvas.crop(box))


@functools.lru_cache(maxsize=1024)
def has_digits(path: str | Path) -> bool:
    """Whether the font draws ten distinct, non-empty digits that are not its missing-glyph box."""
    path = str(path)
    missing = _glyph_mask(path, "\uffff")  # a non-character: every font draws .notdef for it
    masks = [_glyph_mask(path, str(d)) for d in range(10)]
    if any(not m.any() for m in masks):
        return False
    if any(m.shape == missing.shape and np.array_equal(m, missing) for m in masks):
        return False
    return len({(m.shape, m.tobytes()) for m in masks}) == 10


def font_family_name(path: str | Path) -> str:
    """The family name stored inside the font file (not its file name)."""
    return str(_font(str(path), RENDER_EM).getname()[0])


def find_fonts(
    font_dirs: Iterable[str | Path] = DEFAULT_FONT_DIRS,
    families: Sequence[FontFamily] = FAMILIES,
) -> FontSet:
    """Catalogued families installed under `font_dirs`, split into train and held-out.

    Files are matched by name, deduplicated by name (first directory wins), and
    kept only if they draw all ten digits and their internal family name is not
    DejaVu/Vera. If one side of the split is empty while the other holds two or
    more design groups, the last group moves over (noted, so the log says so).
    """
    files: dict[str, Path] = {}
    for folder in font_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in FONT_SUFFIXES and path.is_file():
                files.setdefault(path.name, path)
    notes: list[str] = []
    found: dict[FontFamily, tuple[Path, ...]] = {}
    for family in families:
        pattern = re.compile(family.files)
        paths = []
        for name in sorted(files):
            if not pattern.search(name) or EXCLUDED_STYLE.search(name):
                continue
            path = files[name]
            try:
                inner = font_family_name(path)
            except OSError as error:
                notes.append(f"skipped {path}: unreadable font ({error})")
                continue
            if EXCLUDED_FAMILY.search(inner):
                notes.append(f"skipped {path}: it is {inner!r}, which is kept out of training")
                continue
            if not has_digits(path):
                notes.append(f"skipped {path}: does not draw the ten digits")
                continue
            paths.append(path)
        if paths:
            found[family] = tuple(paths)
    missing = tuple(f for f in families if f not in found)
    train = {f.name: p for f, p in found.items() if not f.held_out}
    held_out = {f.name: p for f, p in found.items() if f.held_out}
    groups = {f.name: f.group for f in found}
    for source, target, label in ((held_out, train, "training"), (train, held_out, "held-out")):
        source_groups = sorted({groups[n] for n in source})
        if not target and len(source_groups) >= 2:
            moved = [n for n in source if groups[n] == source_groups[-1]]
            for name in moved:
                target[name] = source.pop(name)
            notes.append(f"no {label} fonts installed: moved {', '.join(moved)} there")
    return FontSet(train, held_out, missing, tuple(notes))


def describe(fonts: FontSet) -> str:
    """A few lines for the log: families per role, and what to install for the missing ones."""
    lines = [
        f"  train fonts ({len(fonts.train)}): {', '.join(fonts.train) or 'none'}",
        f"  held-out fonts, valid/test ({len(fonts.held_out)}): "
        f"{', '.join(fonts.held_out) or 'none'}",
    ]
    if fonts.missing:
        packages = " ".join(dict.fromkeys(f.package for f in fonts.missing))
        lines.append(
            f"  missing font families: {', '.join(f.name for f in fonts.missing)} "
            f"(apt-get install {packages})"
        )
    lines += [f"  note: {note}" for note in fonts.notes]
    return "\n".join(lines)


def _disc(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= radius * radius + 1e-9


@dataclass(frozen=True)
class Glyph:
    """Ink coverage in [0, 1] (float32 [rows, cols]) and its top row relative to the baseline
    (negative: above it), so glyphs of one strip can share a baseline."""

    ink: np.ndarray
    top: int


def draw_glyph(
    path: str | Path, digit: int, size: float, shear: float = 0.0, stroke: float = 0.0
) -> Glyph:
    """One digit set at `size` pixels per em, cropped to its ink.

    `shear` slants it (x moves right by `shear` per pixel upwards; 0.2 is a
    typical italic), `stroke` changes stroke width by about that many output
    pixels (positive: bolder, by grey dilation with a disc; negative: thinner, by
    erosion, skipped if it would remove over 60% of the ink). The glyph is drawn
    at RENDER_EM pixels per em, transformed there, and box-filtered down.
    """
    from PIL import Image, ImageDraw
    from scipy import ndimage

    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    if size < 4:
        raise ValueError(f"size must be >= 4 pixels per em, got {size}")
    canvas = Image.new("L", (3 * RENDER_EM, 3 * RENDER_EM))
    baseline = 2 * RENDER_EM
    ImageDraw.Draw(canvas).text(
        (RENDER_EM, baseline), str(digit), font=_font(str(path), RENDER_EM), fill=255,
        anchor="ls",
    )  # fmt: skip
    box = canvas.getbbox()  # (left, upper, right, lower) of the ink
    ink = np.asarray(canvas.crop(box), np.float32)
    top = float(box[1] - baseline)
    scale = size / RENDER_EM  # output pixels per large pixel
    radius = abs(stroke) / 2 / scale
    if radius >= 0.5:
        pad = int(np.ceil(radius)) + 1
        padded = np.pad(ink, pad)
        if stroke > 0:
            ink, top = ndimage.grey_dilation(padded, footprint=_disc(radius)), top - pad
        else:
            thinner = ndimage.grey_erosion(padded, footprint=_disc(radius))
            if thinner.sum() >= 0.4 * ink.sum():
                ink, top = thinner, top - pad
    if shear:
        height, width = ink.shape
        extra = int(np.ceil(abs(shear) * (height - 1)))
        offset = -shear * (height - 1) if shear > 0 else 0.0
        ink = np.asarray(
            Image.fromarray(ink).transform(
                (width + extra, height),
                Image.Transform.AFFINE,
                (1.0, shear, offset, 0.0, 1.0, 0.0),
                resample=Image.Resampling.BILINEAR,
            ),
            np.float32,
        )
    rows, cols = np.nonzero(ink > 0.5)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    top += rows.min()
    out_h = max(2, round(ink.shape[0] * scale))
    out_w = max(1, round(ink.shape[1] * scale))
    small = Image.fromarray(ink).resize((out_w, out_h), Image.Resampling.BOX)
    return Glyph(np.clip(np.asarray(small, np.float32) / 255.0, 0.0, 1.0), round(top * scale))


def random_glyph_style(rng: np.random.Generator, files: Sequence[Path]) -> dict:
    """Draw a style: one of the family's files (weights/italics), shear and stroke change."""
    return {
        "path": files[int(rng.integers(len(files)))],
        "shear": float(rng.uniform(-0.15, 0.35)) if rng.random() < 0.5 else 0.0,
        "stroke": float(rng.uniform(-1.0, 1.5)) if rng.random() < 0.5 else 0.0,
    }


def warn(message: str) -> None:
    """Loud, unmissable: to stderr with a banner (the run goes on)."""
    bar = "!" * 78
    print(f"{bar}\nWARNING: {message}\n{bar}", file=sys.stderr, flush=True)
