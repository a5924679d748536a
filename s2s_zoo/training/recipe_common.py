"""What every recipe (translation, captioning, speech) shares after its data is ready:
the common command-line options, the train/decoding configs they fill in, and the
finish — export a new SavedModel version, save the checkpoint bundle next to it,
and check the export on the Session (TF Serving) path.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from s2s_zoo.bundle import load_bundle, save_bundle
from s2s_zoo.export.conformance import check_serving
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.training.fit import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def add_common_arguments(
    p: argparse.ArgumentParser,
    name: str,
    train: TrainConfig,
    decoding: DecodingConfig,
    vocab_size: int,
) -> None:
    """Options every recipe takes, with the recipe's own defaults."""
    p.add_argument("--init-from", help="exported version dir or checkpoint dir to fine-tune")
    p.add_argument("--export-dir", default=str(REPO_ROOT / "exported"), help="export base")
    p.add_argument("--name", default=name, help="model name under the export base")
    p.add_argument("--checkpoint-dir", help="where to save the training checkpoint bundle")
    p.add_argument("--epochs", type=int, default=train.epochs)
    p.add_argument("--batch-size", type=int, default=train.batch_size)
    p.add_argument("--learning-rate", type=float, default=train.learning_rate)
    p.add_argument("--label-smoothing", type=float, default=train.label_smoothing)
    p.add_argument("--max-minutes", type=float, default=train.max_minutes, help="time budget")
    p.add_argument(
        "--patience", type=int, default=train.patience, help="early-stopping epochs (0: off)"
    )
    p.add_argument("--vocab-size", type=int, default=vocab_size)
    p.add_argument("--beam-size", type=int, default=decoding.beam_size)
    p.add_argument("--length-penalty", type=float, default=decoding.length_penalty)
    p.add_argument("--mixed-precision", action="store_true", help="mixed_float16 (GPU)")
    p.add_argument("--xla", action="store_true", help="jit_compile the training step")
    p.add_argument("--seed", type=int, default=train.seed)
    p.add_argument(
        "--no-serving-check",
        action="store_true",
        help="skip the Session-path check of the export (not recommended)",
    )
    p.add_argument(
        "--model-config",
        default="{}",
        help="JSON overrides of the model config, e.g. '{\"decoder_units\": 128}'",
    )


def train_config_from(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        max_minutes=args.max_minutes,
        jit_compile=args.xla,
        seed=args.seed,
    )


def decoding_from(args: argparse.Namespace, defaults: DecodingConfig) -> DecodingConfig:
    """The recipe's decoding settings with the command line's beam size and penalty."""
    return DecodingConfig(
        beam_size=args.beam_size,
        length_penalty=args.length_penalty,
        num_hypotheses=min(defaults.num_hypotheses, args.beam_size),
        max_length_ratio=defaults.max_length_ratio,
        max_length_offset=defaults.max_length_offset,
        max_length_cap=defaults.max_length_cap,
    )


def model_overrides(args: argparse.Namespace, defaults: dict[str, Any]) -> dict[str, Any]:
    """Recipe defaults updated by --model-config; refused with --init-from."""
    extra = json.loads(args.model_config)
    if extra and args.init_from:
        raise SystemExit("--model-config cannot change a model loaded with --init-from")
    return {**defaults, **extra}


def load_for_fine_tuning(path: str, decoding: DecodingConfig) -> Seq2SeqInference:
    """The exported or checkpointed model at `path`, with this run's decoding settings."""
    loaded = load_bundle(path)
    print(f"Fine-tuning from {path}: its vocabulary and architecture are kept.")
    return Seq2SeqInference(loaded.preprocessor, loaded.model, decoding)


def export_and_check(
    inference: Seq2SeqInference, args: argparse.Namespace, samples: Sequence[str | bytes]
) -> dict[str, Any]:
    """Export the next version, save its checkpoint, run the serving check on `samples`."""
    export_path = export_saved_model(inference, Path(args.export_dir) / args.name)
    # one checkpoint per export version, so fine-tuning never overwrites its starting point
    checkpoint_dir = Path(
        args.checkpoint_dir or REPO_ROOT / "checkpoints" / args.name / export_path.name
    )
    save_bundle(inference, checkpoint_dir)
    print(f"Checkpoint: {checkpoint_dir}\nExported SavedModel: {export_path}")
    if not args.no_serving_check:
        report = check_serving(export_path, inference, texts=list(samples))
        if not report.ok:
            raise SystemExit("Serving check FAILED:\n" + "\n".join(report.mismatches))
        print(f"Serving check (TF1 Session loader, fresh process): OK for {report.signatures}")
    return {"export_path": export_path, "checkpoint_dir": checkpoint_dir}
