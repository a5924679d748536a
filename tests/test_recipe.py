"""The recipe flow on user files: TSV/JSONL input, data errors, fine-tuning into version 2."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from s2s_zoo.data.readers import DataFormatError, write_pairs
from s2s_zoo.inference import DecodingConfig
from s2s_zoo.tasks.translation.numbers import number_pair
from s2s_zoo.training.fit import TrainConfig
from s2s_zoo.training.runner import Recipe, run
from tests.conftest import TINY

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = Recipe(
    name="tiny",
    task="translation",
    model="gru_bahdanau",
    model_overrides=TINY,
    train=TrainConfig(epochs=1, batch_size=32, learning_rate=5e-3, patience=0),
    decoding=DecodingConfig(beam_size=2, num_hypotheses=2, max_length_cap=16),
    options={"vocab_size": 120},
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def common_args(tmp_path: Path) -> list[str]:
    """Everything under tmp_path (a later --checkpoint-dir wins over this one)."""
    return ["--export-dir", str(tmp_path / "exported"), "--epochs", "1", "--vocab-size", "120",
            "--checkpoint-dir", str(tmp_path / "run")]  # fmt: skip


def test_train_on_files_then_fine_tune_into_a_new_version(tmp_path, monkeypatch):
    from s2s_zoo.bundle import load_bundle
    from s2s_zoo.training import runner

    starts = []  # the weights each run's training starts from

    def recording_fit(model, *args, **kwargs):
        starts.append([w.copy() for w in model.get_weights()])
        return real_fit(model, *args, **kwargs)

    real_fit = runner.fit
    monkeypatch.setattr(runner, "fit", recording_fit)
    train = tmp_path / "train.tsv"
    valid = tmp_path / "valid.jsonl"
    write_pairs(train, [number_pair(n) for n in range(300)])
    write_pairs(valid, [number_pair(n) for n in range(300, 320)])
    first = run(
        TINY_RECIPE,
        [
            *common_args(tmp_path),
            "--train",
            str(train),
            "--valid",
            str(valid),
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
            "--no-serving-check",  # version 2 below is checked; the check is the same code
        ],
    )
    v1 = first["export_path"]
    assert v1.name == "1"
    v1_files = {p: digest(p) for p in v1.rglob("*") if p.is_file()}

    new_train = tmp_path / "new.jsonl"
    write_pairs(new_train, [number_pair(n) for n in range(500, 600)])
    second = run(
        TINY_RECIPE,
        [
            *common_args(tmp_path),
            "--train",
            str(new_train),
            "--valid",
            str(valid),
            "--init-from",
            str(v1),
            "--checkpoint-dir",
            str(tmp_path / "ckpt2"),
        ],
    )
    v2 = second["export_path"]
    assert v2.name == "2" and v2.parent == v1.parent
    assert {p: digest(p) for p in v1.rglob("*") if p.is_file()} == v1_files  # untouched
    for vocab in ("source.spm.model", "target.spm.model"):
        assert digest(v1 / "assets.extra/s2s_zoo" / vocab) == digest(
            v2 / "assets.extra/s2s_zoo" / vocab
        )
    # fine-tuning continued from the exported weights: it starts where version 1 ended
    exported = load_bundle(v1).model.training_model.get_weights()
    assert len(starts) == 2 and len(starts[1]) == len(exported)
    for start, weight in zip(starts[1], exported, strict=True):
        np.testing.assert_array_equal(start, weight)
    assert any(not np.array_equal(a, b) for a, b in zip(starts[0], starts[1], strict=True))


def test_custom_jsonl_field_names(tmp_path):
    import json

    train = tmp_path / "train.jsonl"
    train.write_text(
        "".join(json.dumps({"en": s, "fr": t}) + "\n" for s, t in map(number_pair, range(120)))
    )
    result = run(
        TINY_RECIPE,
        [
            *common_args(tmp_path),
            "--train",
            str(train),
            "--valid",
            str(train),
            "--source-field",
            "en",
            "--target-field",
            "fr",
            "--no-serving-check",
        ],
    )
    assert result["export_path"].is_dir()


def test_malformed_line_stops_with_file_and_line(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("one\tun\ntwo\tdeux\nthree deux trois\n")
    with pytest.raises(DataFormatError, match=r"train\.tsv:3"):
        run(TINY_RECIPE, [*common_args(tmp_path), "--train", str(train), "--valid", str(train)])
    assert not (tmp_path / "exported").exists()


def test_recipe_script_reports_bad_data_on_the_command_line(tmp_path):
    train = tmp_path / "bad.jsonl"
    train.write_text('{"source": "one", "target": "un"}\n{"source": "two"}\n')
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "recipes/translation/gru_bahdanau.py"),
            "--train",
            str(train),
            "--valid",
            str(train),
            "--export-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "bad.jsonl:2" in proc.stderr and "target" in proc.stderr


def test_training_switches_then_average_the_epochs(tmp_path):
    """--warmup-steps, --accumulate, --batch-tokens, --logdir, --epoch-checkpoints,
    --valid-decode and --early-stopping-metric in one run; then `s2s-zoo average` of its
    epoch checkpoints exports and serves."""
    import csv

    from s2s_zoo import cli

    train = tmp_path / "train.tsv"
    write_pairs(train, [number_pair(n) for n in range(200)])
    result = run(
        TINY_RECIPE,
        [*common_args(tmp_path), "--train", str(train), "--valid", str(train), "--epochs", "3",
         "--warmup-steps", "5", "--accumulate", "2", "--batch-tokens", "300",
         "--logdir", str(tmp_path / "logs"), "--epoch-checkpoints", str(tmp_path / "epochs"),
         "--valid-decode", "20", "--early-stopping-metric", "bleu", "--no-serving-check"],
    )  # fmt: skip
    losses = result["history"]["loss"]
    assert losses[-1] < losses[0], losses
    rows = list(csv.DictReader(open(tmp_path / "logs" / "training.csv")))
    assert len(rows) == 3 and "token_accuracy" in rows[0]
    # the decoded validation metrics of the task (translation: BLEU, exact match)
    assert all(0 <= float(r["val_bleu"]) <= 100 for r in rows)
    assert all(0 <= float(r["val_exact_match"]) <= 1 for r in rows)
    assert list((tmp_path / "logs").rglob("events.out.tfevents*"))
    assert len(list((tmp_path / "epochs").glob("*.weights.h5"))) == 3
    assert not (tmp_path / "run" / "backup").exists()  # removed once training finished

    code = cli.main(
        [
            "average",
            "--bundle",
            str(result["checkpoint_dir"]),
            "--weights-dir",
            str(tmp_path / "epochs"),
            "--last",
            "2",
            "--out",
            str(tmp_path / "avg"),
        ]
    )
    assert code == 0
    code = cli.main(["export", "--from", str(tmp_path / "avg"), "--export-dir",
                     str(tmp_path / "exported"), "--name", "averaged"])  # fmt: skip
    assert code == 0 and (tmp_path / "exported" / "averaged" / "1" / "saved_model.pb").is_file()


def test_batch_tokens_is_refused_where_a_task_cannot_honour_it(tmp_path):
    from s2s_zoo.training.runner import Recipe

    recipe = Recipe(name="cap", task="captioning", model="show_attend_tell")
    with pytest.raises(SystemExit, match="--batch-tokens is not supported by the captioning"):
        run(recipe, ["--batch-tokens", "100", "--export-dir", str(tmp_path)])
