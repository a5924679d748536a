"""End to end (slow): the README's main command trains, exports, serves and is accurate."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from s2s_zoo.export.conformance import check_serving

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_recipe_reaches_ninety_percent_and_fine_tunes(tmp_path):
    script = REPO / "recipes/translation/gru_bahdanau.py"
    common = ["--export-dir", str(tmp_path / "exported")]
    proc = subprocess.run(
        [sys.executable, str(script), *common, "--checkpoint-dir", str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"beam: exact match ([\d.]+)%[^\n]* on (\d+) held-out", proc.stdout)
    assert match, proc.stdout[-3000:]
    assert float(match.group(1)) >= 90.0 and int(match.group(2)) >= 500
    version_1 = tmp_path / "exported/translation_gru_bahdanau/1"
    assert check_serving(version_1, texts=["", "twelve", "x " * 3000]).ok

    # fine-tune on a few new pairs: a new version appears, version 1 stays
    new = tmp_path / "new.tsv"
    new.write_text(
        "".join(
            f"{s}\t{t}\n"
            for s, t in [
                ("one million", "un million"),
                ("two million", "deux millions"),
                ("three million", "trois millions"),
                ("four million", "quatre millions"),
            ]
            * 25
        )
    )
    tune = subprocess.run(
        [
            sys.executable,
            str(script),
            *common,
            "--init-from",
            str(version_1),
            "--train",
            str(new),
            "--valid",
            str(new),
            "--epochs",
            "2",
            "--checkpoint-dir",
            str(tmp_path / "ckpt2"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert tune.returncode == 0, tune.stderr[-3000:]
    assert (tmp_path / "exported/translation_gru_bahdanau/2/saved_model.pb").is_file()
    assert (version_1 / "saved_model.pb").is_file()
