"""Dialogue benchmark: memory networks with and without copying vs a flat GRU baseline.

Generates the bAbI-style restaurant task (sub-task 5, full dialogs) once, trains each
catalog model for a fixed wall-clock budget with the same runner users run (so each is
exported and checked on the TF Serving path), and prints per-response accuracy,
per-dialog accuracy and entity F1 of the *exported* model on the test set (training KB)
and the OOV test set (restaurants, cuisines and locations never seen in training),
greedy and beam.

    python benchmarks/dialogue.py                                  # 8 minutes per model
    python benchmarks/dialogue.py --minutes 3 --models mem2seq_dialog --test-dialogs 50
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from s2s_zoo.inference import DecodingConfig
from s2s_zoo.models.registry import entry
from s2s_zoo.training.runner import Recipe, run

MODELS = ("mem2seq_dialog", "memn2n_dialog", "gru_bahdanau")
SETS = (("test", "metrics"), ("test-OOV", "metrics_test-OOV"))
COLUMNS = ("per_response_accuracy", "per_dialog_accuracy", "entity_f1")
# Responses are short: every model gets the same fixed output budget.
DECODING = DecodingConfig(
    beam_size=4,
    length_penalty=0.6,
    num_hypotheses=1,
    max_length_ratio=0.0,
    max_length_offset=64,
    max_length_cap=64,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per model")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--train-dialogs", type=int, default=1000)
    parser.add_argument("--test-dialogs", type=int, default=100, help="per test set")
    parser.add_argument("--workdir", help="keep data and exports here (default: a temp dir)")
    parser.add_argument(
        "--entity-substitution",
        type=float,
        default=0.5,
        help="for copying models (mem2seq_dialog), as the recipe: share of training examples "
        "with invented KB values; the others cannot copy, so they train on the data as is",
    )
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="s2s_dialogue_"))
    options = {"num_dev": 100, "num_test": args.test_dialogs}
    rows = []
    for model in args.models:
        recipe = Recipe(
            name=f"dialogue_{model}",
            task="dialogue",
            model=model,
            decoding=DECODING,
            options=options,
        )
        argv = [
            "--data-dir",
            str(workdir / "data"),
            "--num-dialogs",
            str(args.train_dialogs),
            "--export-dir",
            str(workdir / "exported"),
            "--checkpoint-dir",
            str(workdir / "checkpoints" / model),
            "--max-minutes",
            str(args.minutes),
            "--valid-decode",  # no per-epoch decoding: the budget is all training
            "0",
            "--epochs",
            "1000",
            "--patience",
            "0",
        ]
        if entry(model).decoder == "mem2seq":
            argv += ["--entity-substitution", str(args.entity_substitution)]
        start = time.perf_counter()
        result = run(recipe, argv)
        minutes = (time.perf_counter() - start) / 60
        epochs = len(result["history"]["loss"])
        for name, key in SETS:
            for mode in ("greedy", "beam"):
                values = [result[key][f"{mode}_{c}"] for c in COLUMNS]
                rows.append((model, name, mode, *values, epochs, minutes))

    train = entry(args.models[0]).train
    print(
        f"\nbAbI-style restaurant task 5, {args.train_dialogs} training dialogs, "
        f"{args.test_dialogs} dialogs per test set; {args.minutes:g} training minutes per "
        f"model (batch {train.get('batch_size')}), exported models, workdir {workdir}\n"
    )
    print(
        "| model | test set | search | per-response | per-dialog | entity F1 | epochs | "
        "minutes (train + eval) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for model, name, mode, response, dialog, f1, epochs, minutes in rows:
        print(
            f"| {model} | {name} | {mode} | {response:.1%} | {dialog:.1%} | {f1:.3f} | "
            f"{epochs} | {minutes:.0f} |"
        )


if __name__ == "__main__":
    main()
