"""`s2s-zoo check` and `inspect` on a captioning export: the input name comes from the
export, the default samples (unreadable as images) are an all-bad request that must
still be served, and inspect prints the limits the signatures enforce."""

from __future__ import annotations

import numpy as np
import pytest

from s2s_zoo import cli
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.features.image import encode_png
from tests.test_catalog import media_examples, media_inference


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("captioning")
    inference = media_inference("show_attend_tell", media_examples("image", tmp))
    return inference, export_saved_model(inference, tmp / "export")


def test_check_without_comparison_serves_an_all_bad_request(image_export, capsys):
    _, path = image_export
    assert cli.main(["check", str(path), "--no-compare"]) == 0  # samples "", "hello world"
    out = capsys.readouterr().out
    assert "OK: every signature loaded and ran" in out and "'preprocess'" in out


def test_check_compares_image_files_with_the_bundle(image_export, tmp_path, capsys):
    _, path = image_export
    png = tmp_path / "grey.png"
    png.write_bytes(encode_png(np.full((40, 80, 3), 128, np.uint8)))
    assert cli.main(["check", str(path), "--text", str(png), "--text", "not a file"]) == 0
    assert "match the in-process model" in capsys.readouterr().out


def test_inspect_prints_the_effective_limits(image_export, capsys):
    inference, path = image_export
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "input  images: string" in out
    cap = inference.decoding.max_length_cap
    assert f"output: at most {cap} tokens (EOS included)" in out
    assert f"per item: min({cap}, ceil(0.0 x encoder memory positions) + 6)" in out
    assert "source: at most" not in out  # images have no source token limit
