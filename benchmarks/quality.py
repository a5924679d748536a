"""Translation quality on a real offline corpus: gettext catalogs, English -> French.

Builds the corpus from /usr/share/locale (deduplicated, split by a hash of the
source), trains each recipe for a fixed wall-clock budget with the same recipe
machinery users run, exports it, and prints corpus BLEU (sacrebleu) of the
*exported* model on the test split, greedy and beam.

    python benchmarks/quality.py                       # both recipes, 10 minutes each
    python benchmarks/quality.py --minutes 2 --recipes transformer
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from s2s_zoo.data.readers import write_pairs
from s2s_zoo.tasks.translation.gettext_corpus import DEFAULT_LOCALE_DIR, build_corpus
from s2s_zoo.training.runner import run

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes" / "translation"


def load_recipe(name: str):
    """The RECIPE object of `recipes/translation/<name>.py`."""
    path = RECIPES_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"no recipe at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per recipe")
    parser.add_argument("--recipes", nargs="+", default=["lstm_luong", "transformer"])
    parser.add_argument("--language", default="fr")
    parser.add_argument("--locale-dir", default=str(DEFAULT_LOCALE_DIR))
    parser.add_argument("--max-words", type=int, default=30)
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--workdir", help="keep data and exports here (default: a temp dir)")
    args = parser.parse_args()

    splits, report = build_corpus(args.language, args.locale_dir, max_words=args.max_words)
    print(f"gettext corpus en->{args.language}: {report.summary()}")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="s2s_quality_"))
    files = {}
    for name, pairs in splits.items():
        files[name] = workdir / f"{name}.tsv"
        write_pairs(files[name], pairs)

    rows = []
    for name in args.recipes:
        recipe = load_recipe(name)
        print(f"\n=== {name} ({recipe.model}), {args.minutes:g} minutes ===", flush=True)
        start = time.perf_counter()
        result = run(
            recipe,
            [
                "--train",
                str(files["train"]),
                "--valid",
                str(files["dev"]),
                "--test",
                str(files["test"]),
                "--max-minutes",
                str(args.minutes),
                "--valid-decode",  # no per-epoch decoding: the budget is all training
                "0",
                "--epochs",
                "1000",  # the time budget ends training
                "--patience",
                "3",
                "--vocab-size",
                str(args.vocab_size),
                "--export-dir",
                str(workdir / "exported"),
                "--checkpoint-dir",
                str(workdir / "checkpoints" / name),
                "--name",
                f"quality_{name}",
            ],  # fmt: skip
        )
        epochs = len(result["history"]["loss"])
        metrics = result["metrics"]
        rows.append((name, epochs, time.perf_counter() - start, metrics))

    test_size = report.split_sizes["test"]
    print(f"\nTest split: {test_size} pairs; sacrebleu corpus BLEU of the exported model")
    print(f"{'recipe':<14}{'epochs':>7}{'total s':>9}{'greedy':>8}{'beam':>8}{'exact g/b':>14}")
    for name, epochs, seconds, m in rows:
        print(
            f"{name:<14}{epochs:>7}{seconds:>9.0f}{m['greedy_bleu']:>8.1f}{m['beam_bleu']:>8.1f}"
            f"{m['greedy_exact_match']:>8.1%}/{m['beam_exact_match']:.1%}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
