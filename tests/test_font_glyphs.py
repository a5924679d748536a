"""Font discovery (held-out designs, DejaVu kept out) and digit glyph rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2s_zoo.tasks.captioning import font_glyphs
from s2s_zoo.tasks.captioning.font_glyphs import FAMILIES, draw_glyph, find_fonts, has_digits

FONTS = find_fonts()
needs_fonts = pytest.mark.skipif(
    not (FONTS.train and FONTS.held_out),
    reason="needs the Debian font packages of .ci/run (e.g. fonts-liberation2, fonts-go)",
)
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _font(family: str) -> Path:
    paths = {**FONTS.train, **FONTS.held_out}.get(family)
    if not paths:
        pytest.skip(f"{family} is not installed")
    regular = [p for p in paths if "Regular" in p.name]
    return (regular or list(paths))[0]


@needs_fonts
def test_installed_fonts_split_by_design_and_never_dejavu():
    group = {f.name: f.group for f in FAMILIES}
    assert not set(FONTS.train) & set(FONTS.held_out)
    assert not {group[n] for n in FONTS.train} & {group[n] for n in FONTS.held_out}
    every = [p for paths in (*FONTS.train.values(), *FONTS.held_out.values()) for p in paths]
    assert every and not any("dejavu" in str(p).lower() for p in every)
    assert not any("dejavu" in font_glyphs.font_family_name(p).lower() for p in every)
    fingerprint = FONTS.fingerprint()
    assert sorted(fingerprint["held_out"]) == sorted(FONTS.held_out)


@pytest.mark.skipif(not DEJAVU.is_file(), reason="needs fonts-dejavu-core")
def test_dejavu_is_refused_even_under_another_name(tmp_path):
    (tmp_path / "LiberationSans-Regular.ttf").symlink_to(DEJAVU)
    fonts = find_fonts([tmp_path])
    assert not fonts.train and not fonts.held_out
    assert any("DejaVu Sans" in note for note in fonts.notes)
    assert "fonts-liberation2" in font_glyphs.describe(fonts)


@needs_fonts
def test_a_missing_held_out_side_is_filled_from_training_and_said(tmp_path):
    for family in ("Liberation Sans", "Liberation Serif"):
        path = _font(family)
        (tmp_path / path.name).symlink_to(path)
    fonts = find_fonts([tmp_path])
    assert set(fonts.train) | set(fonts.held_out) == {"Liberation Sans", "Liberation Serif"}
    assert fonts.train and fonts.held_out
    assert any("no held-out fonts installed" in note for note in fonts.notes)
    missing = {f.name for f in fonts.missing}
    assert "Roboto" in missing and "Liberation Sans" not in missing


def test_fonts_without_digits_are_rejected():
    tifinagh = Path("/usr/share/fonts/truetype/noto/NotoSansTifinaghSIL-Regular.ttf")
    if not tifinagh.is_file():
        pytest.skip("needs fonts-noto-core")
    assert not has_digits(tifinagh)


@needs_fonts
@pytest.mark.parametrize("digit", [0, 4, 8])
def test_glyph_height_and_baseline_match_pillows_layout(digit):
    from PIL import ImageFont

    path = _font("Liberation Serif")
    glyph = draw_glyph(path, digit, size=128)  # the render size: no resampling error
    left, top, right, bottom = ImageFont.truetype(str(path), 128).getbbox(str(digit), anchor="ls")
    assert glyph.ink.dtype == np.float32 and 0 <= glyph.ink.min() and glyph.ink.max() <= 1
    assert abs(glyph.ink.shape[0] - (bottom - top)) <= 1 and abs(glyph.top - top) <= 1
    small = draw_glyph(path, digit, size=32)
    assert abs(small.ink.shape[0] - (bottom - top) / 4) <= 1 and abs(small.top - top / 4) <= 1


def _centroid_x(ink: np.ndarray) -> float:
    return float((ink * np.arange(ink.shape[1])).sum() / ink.sum())


@needs_fonts
def test_shear_slants_by_the_requested_amount():
    path = _font("Liberation Sans")
    upright, slanted = draw_glyph(path, 0, 200), draw_glyph(path, 0, 200, shear=0.25)
    assert slanted.ink.shape[0] == upright.ink.shape[0] and slanted.top == upright.top
    h = upright.ink.shape[0]
    quarter = h // 4

    def lean(ink):  # top quarter's centre of ink minus the bottom quarter's
        return _centroid_x(ink[:quarter]) - _centroid_x(ink[-quarter:])

    assert lean(slanted.ink) - lean(upright.ink) == pytest.approx(0.25 * (h - quarter), abs=1.5)
    backwards = draw_glyph(path, 0, 200, shear=-0.25)
    assert lean(backwards.ink) - lean(upright.ink) == pytest.approx(-0.25 * (h - quarter), abs=1.5)


@needs_fonts
def test_stroke_changes_stem_width_in_output_pixels():
    path = _font("Liberation Sans")

    def stem(stroke):  # ink across the middle row of a "1": the stem's width in pixels
        ink = draw_glyph(path, 1, 64, stroke=stroke).ink
        return float(ink[ink.shape[0] // 2].sum())

    base = stem(0.0)
    assert 4 < base < 9
    assert stem(2.0) - base == pytest.approx(2.0, abs=0.5)
    assert stem(-1.0) - base == pytest.approx(-1.0, abs=0.5)


def test_glyph_arguments_are_checked():
    with pytest.raises(ValueError, match="digit must be 0..9"):
        draw_glyph("unused.ttf", 10, 20)
    with pytest.raises(ValueError, match="size must be >= 4"):
        draw_glyph("unused.ttf", 3, 2)


def test_ci_installs_every_catalogued_font_package():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    call = ci.split("apt_install_missing fonts-", 1)[1].split("\n\n", 1)[0]
    listed = ("fonts-" + call).replace("\\", " ").split()
    assert sorted(listed) == sorted(font_glyphs.FONT_PACKAGES)
