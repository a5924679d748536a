"""The training budget the held-out-source benchmarks give every run, as flags and as the
recipe runner's arguments (speech_cross_engine.py, captioning_cross_source.py)."""

from __future__ import annotations

import argparse


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """--minutes, --clock and --patience."""
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per run")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="what --minutes counts (runner --budget-clock); cpu: comparable on a shared machine",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=10,
        help="early-stopping epochs on the validation loss (the recipes' 3-4 stop augmented "
        "runs, whose loss is noisier, long before the budget; 0: off, the last weights "
        "are scored)",
    )


def budget_argv(args: argparse.Namespace) -> list[str]:
    """Runner arguments: the time budget bounds training, not an epoch count."""
    return ["--max-minutes", str(args.minutes), "--budget-clock", args.clock,
            "--epochs", "1000", "--patience", str(args.patience)]  # fmt: skip
