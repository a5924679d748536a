"""`s2s-zoo` subcommands against an exported model, run as a user would (subprocess)."""

from __future__ import annotations

import subprocess
import sys


def s2s_zoo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "s2s_zoo.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_greedy_beam_and_nbest(exported, number_splits, tmp_path):
    inference, path = exported
    sources = [s for s, _ in number_splits["test"][:3]]
    source_file = tmp_path / "in.txt"
    source_file.write_text("\n".join(sources) + "\n")
    want_greedy = [o.decode() for o in inference.greedy(sources)["outputs"].numpy()]
    want_beam = [o.decode() for o in inference.beam(sources)["outputs"].numpy()]

    greedy = s2s_zoo(
        "predict", "--model", str(path), "--mode", "greedy", "--input", str(source_file)
    )
    assert greedy.returncode == 0, greedy.stderr
    assert greedy.stdout.splitlines() == want_greedy

    beam = s2s_zoo("predict", "--model", str(path), stdin="\n".join(sources) + "\n")
    assert beam.returncode == 0, beam.stderr
    assert beam.stdout.splitlines() == want_beam

    nbest = s2s_zoo(
        "predict",
        "--model",
        str(path),
        "--beam-size",
        "4",
        "--n-best",
        "2",
        "--with-scores",
        "--input",
        str(source_file),
    )
    assert nbest.returncode == 0, nbest.stderr
    rows = [line.split("\t") for line in nbest.stdout.splitlines()]
    assert len(rows) == 2 * len(sources)
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert float(first[0]) >= float(second[0])


def test_inspect_and_check(exported):
    _, path = exported
    inspect = s2s_zoo("inspect", str(path))
    assert inspect.returncode == 0, inspect.stderr
    for name in ("serving_default", "beam", "greedy", "nbest", "gru", "nbest_outputs"):
        assert name in inspect.stdout
    check = s2s_zoo("check", str(path), "--text", "", "--text", "forty-two")
    assert check.returncode == 0, check.stderr
    assert "OK" in check.stdout


def test_models_lists_the_catalog():
    out = s2s_zoo("models", "--vocab", "100")
    assert out.returncode == 0, out.stderr
    assert "gru_bahdanau" in out.stdout


def test_predict_on_a_missing_model_is_a_clear_error(tmp_path):
    out = s2s_zoo("predict", "--model", str(tmp_path), stdin="one\n")
    assert out.returncode != 0
    assert "not a SavedModel version directory" in out.stderr
