"""`--strategy` through a recipe: the README's two-worker example, run as two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_distribute import free_ports

REPO = Path(__file__).resolve().parents[1]
FLAGS = [
    "--train-size", "300", "--epochs", "1", "--batch-size", "16", "--vocab-size", "120",
    "--model-config",
    '{"embedding_dim": 8, "encoder_units": 8, "decoder_units": 16, "attention_units": 8}',
]  # fmt: skip
LAUNCHERS = {
    "recipe": [sys.executable, str(REPO / "recipes/translation/gru_bahdanau.py")],
    # the CLI imports TensorFlow quietly first: it must not initialise the devices then
    "cli": [sys.executable, "-m", "s2s_zoo.cli", "train", "--task", "translation", "--model",
            "gru_bahdanau", "--name", "translation_gru_bahdanau"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_recipe_on_two_workers_exports_once(launcher, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        out = ["--export-dir", str(tmp_path / "exported"), "--checkpoint-dir",
               str(tmp_path / f"run{index}")]  # fmt: skip
        args = [*LAUNCHERS[launcher], *FLAGS, "--strategy", "multi_worker", *out]
        processes.append(
            subprocess.Popen(args, env={**env, "TF_CONFIG": json.dumps(config)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )  # fmt: skip
    outputs = [p.communicate(timeout=900)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    # the chief exported one version and checked it; the other worker wrote nothing
    versions = sorted(
        p.name for p in (tmp_path / "exported" / "translation_gru_bahdanau").iterdir()
    )
    assert versions == ["1"]
    assert "Serving check" in outputs[0] and "Exported SavedModel" not in outputs[1]


def test_mirrored_strategy_through_the_runner(tmp_path):
    """On a machine without GPUs, mirrored runs on the CPU: the same flow end to end."""
    from s2s_zoo.training.runner import run
    from tests.test_recipe import TINY_RECIPE

    result = run(
        TINY_RECIPE,
        ["--strategy", "mirrored", "--train-size", "200", "--epochs", "1", "--export-dir",
         str(tmp_path / "exported"), "--checkpoint-dir", str(tmp_path / "run")],
    )  # fmt: skip
    assert result["export_path"].name == "1"
