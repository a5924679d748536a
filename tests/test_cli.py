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


def test_predict_warns_of_each_truncated_source_by_line(exported):
    _, path = exported
    long = " ".join(["seven hundred and twelve"] * 50)
    result = s2s_zoo(
        "predict", "--model", str(path), "--mode", "greedy", stdin=f"one\n{long}\ntwo\n"
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    warnings = [line for line in result.stderr.splitlines() if "over the model's limit" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: line 2: the source is ")


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


def test_models_is_quiet_without_verbose():
    out = s2s_zoo("models", "--vocab", "50")
    assert out.returncode == 0, out.stderr
    for chatter in ("oneDNN", "cpu_feature_guard", "cuInit"):
        assert chatter not in out.stderr


def test_evaluate_and_export_from_a_checkpoint(exported, number_splits, tmp_path):
    from s2s_zoo.bundle import resolve_bundle_dir, save_bundle
    from s2s_zoo.data.readers import write_pairs

    inference, path = exported
    test_file = tmp_path / "test.tsv"
    write_pairs(test_file, number_splits["test"][:20])
    evaluation = s2s_zoo(
        "evaluate", "--model", str(path), "--test", str(test_file), "--task", "translation"
    )
    assert evaluation.returncode == 0, evaluation.stderr
    assert "greedy: exact match" in evaluation.stdout and "on 20 held-out" in evaluation.stdout

    save_bundle(inference, tmp_path / "checkpoints" / "tiny" / "1", task="translation")
    save_bundle(inference, tmp_path / "checkpoints" / "tiny" / "2", task="translation")
    # the folder of versions resolves to its highest version, as the README says
    assert resolve_bundle_dir(tmp_path / "checkpoints" / "tiny").name == "2"
    export = s2s_zoo(
        "export", "--from", str(tmp_path / "checkpoints" / "tiny"),
        "--export-dir", str(tmp_path / "exported"), "--name", "tiny",
    )  # fmt: skip
    assert export.returncode == 0, export.stderr + export.stdout
    new = tmp_path / "exported" / "tiny" / "1"
    assert (new / "saved_model.pb").is_file() and "OK" in export.stdout
    # the export records its task, so evaluate needs no --task
    again = s2s_zoo("evaluate", "--model", str(new), "--test", str(test_file))
    assert again.returncode == 0, again.stderr
    assert metric_lines(again.stdout) == metric_lines(evaluation.stdout)  # same weights


def metric_lines(stdout: str) -> list[str]:
    """The metric lines of an evaluation, without the throughput that varies."""
    return [line.split(" on ")[0] for line in stdout.splitlines() if ": exact match" in line]
