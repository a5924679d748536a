"""The text-to-text recipe flow shared by every `recipes/translation/*.py` script.

data -> tokenizers (trained, or inherited with --init-from) -> model from the
catalog -> fit -> checkpoint bundle -> SavedModel export -> Session-path serving
check -> evaluation of the *exported* model.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.readers import DataFormatError, read_pairs
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_catalog
from s2s_zoo.tasks.translation.numbers import make_number_splits
from s2s_zoo.training.fit import (
    TrainConfig,
    compile_model,
    distribution_strategy,
    fit,
    set_precision,
)
from s2s_zoo.training.recipe_common import (
    add_common_arguments,
    decoding_from,
    export_and_check,
    load_for_fine_tuning,
    model_overrides,
    train_config_from,
)

Pairs = list[tuple[str, str]]


@dataclass
class TextRecipe:
    """What a recipe script declares: its export name, catalog entry and defaults."""

    name: str
    model: str
    model_overrides: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    vocab_size: int = 8000
    max_source_length: int = 128
    max_target_length: int = 128
    default_train_size: int = 20_000


def argument_parser(recipe: TextRecipe, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--train", help="training pairs, TSV (source<TAB>target) or JSONL")
    p.add_argument("--valid", help="validation pairs (same formats); required with --train")
    p.add_argument("--test", help="held-out pairs to evaluate the exported model on")
    p.add_argument("--format", choices=["tsv", "jsonl"], help="override format detection")
    p.add_argument("--source-field", default="source", help="JSONL source field name")
    p.add_argument("--target-field", default="target", help="JSONL target field name")
    p.add_argument(
        "--train-size",
        type=int,
        default=recipe.default_train_size,
        help="pairs of the embedded number task (ignored with --train)",
    )
    add_common_arguments(p, recipe.name, recipe.train, recipe.decoding, recipe.vocab_size)
    return p


def load_splits(args: argparse.Namespace) -> dict[str, Pairs]:
    """User files with --train/--valid(/--test), else the embedded number task."""
    if args.train:
        if not args.valid:
            raise SystemExit("--valid is required with --train")
        splits = {}
        for split in ("train", "valid", "test"):
            path = getattr(args, split)
            if path:
                report = read_pairs(
                    path,
                    file_format=args.format,
                    source_field=args.source_field,
                    target_field=args.target_field,
                )
                print(report.summary())
                splits[split] = report.pairs
        return splits
    if args.valid or args.test:
        raise SystemExit("--valid/--test need --train (the default task makes its own splits)")
    print(
        f"No --train given: using the embedded task, English -> French number words "
        f"(num2words), {args.train_size} training pairs, held-out numbers for test."
    )
    return make_number_splits(args.train_size, 500, 1000, seed=args.seed)


def build_inference(recipe: TextRecipe, args: argparse.Namespace, train: Pairs):
    """A fresh model with tokenizers trained on `train`, or the one to fine-tune."""
    decoding = decoding_from(args, recipe.decoding)
    overrides = model_overrides(args, recipe.model_overrides)
    if args.init_from:
        return load_for_fine_tuning(args.init_from, decoding)
    preprocessor = TextPreprocessor(
        train_sentencepiece([s for s, _ in train], args.vocab_size),
        train_sentencepiece([t for _, t in train], args.vocab_size),
        recipe.max_source_length,
        recipe.max_target_length,
    )
    model = build_from_catalog(
        recipe.model, preprocessor.source_vocab_size, preprocessor.target_vocab_size, **overrides
    )
    return Seq2SeqInference(preprocessor, model, decoding)


def decode_file(signature, sources: Sequence[str], batch_size: int = 64) -> list[str]:
    """Run an exported signature over `sources` in batches; return the best strings."""
    outputs: list[str] = []
    for i in range(0, len(sources), batch_size):
        batch = tf.constant(list(sources[i : i + batch_size]), tf.string)
        outputs += [o.decode("utf-8") for o in signature(inputs=batch)["outputs"].numpy()]
    return outputs


def evaluate_export(export_path: Path, pairs: Pairs, show: int = 5) -> dict[str, float]:
    """Exact match (and BLEU when sacrebleu is installed) of the exported model."""
    loaded = tf.saved_model.load(str(export_path))
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    metrics: dict[str, float] = {}
    for mode in ("greedy", "beam"):
        start = time.perf_counter()
        hyps = decode_file(loaded.signatures[mode], sources)
        seconds = time.perf_counter() - start
        exact = sum(h == r for h, r in zip(hyps, references, strict=True)) / len(pairs)
        metrics[f"{mode}_exact_match"] = exact
        line = f"{mode:>6}: exact match {exact:.2%} on {len(pairs)} held-out pairs"
        try:
            import sacrebleu

            bleu = sacrebleu.corpus_bleu(hyps, [references]).score
            metrics[f"{mode}_bleu"] = bleu
            line += f", BLEU {bleu:.1f}"
        except ImportError:
            pass
        print(f"{line} ({len(pairs) / seconds:.0f} sentences/s)")
        if mode == "beam":
            for s, h, r in list(zip(sources, hyps, references, strict=True))[:show]:
                mark = "ok" if h == r else "WRONG"
                print(f"  [{mark}] {s!r} -> {h!r}" + ("" if h == r else f" (want {r!r})"))
    return metrics


def run(recipe: TextRecipe, argv: Sequence[str] | None = None, description: str = "") -> dict:
    """Train, export, serving-check and evaluate; returns paths and metrics."""
    args = argument_parser(recipe, description or recipe.name).parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    set_precision(args.mixed_precision)
    splits = load_splits(args)
    train_config = train_config_from(args)
    with distribution_strategy().scope():  # several GPUs: MirroredStrategy; else a no-op
        inference = build_inference(recipe, args, splits["train"])
        compile_model(inference.model.training_model, train_config)
    model = inference.model
    print(
        f"Model {recipe.model}: {model.count_params():,} parameters; vocab "
        f"{inference.preprocessor.source_vocab_size} -> "
        f"{inference.preprocessor.target_vocab_size}"
    )

    train_ds = make_dataset(
        splits["train"], inference.preprocessor, args.batch_size, seed=args.seed
    )
    valid_ds = make_dataset(splits["valid"], inference.preprocessor, args.batch_size, shuffle=False)
    history = fit(model.training_model, train_ds, valid_ds, train_config)

    sample = [s for s, _ in splits["valid"][:3]] + ["", "  "]
    result: dict[str, Any] = export_and_check(inference, args, sample)
    result["history"] = history.history
    eval_pairs = splits.get("test") or splits["valid"]
    result["metrics"] = evaluate_export(result["export_path"], eval_pairs)
    return result


def main(recipe: TextRecipe, description: str = "") -> None:
    """Entry point for recipe scripts: data errors end the run with `file:line: reason`."""
    try:
        run(recipe, description=description)
    except DataFormatError as error:
        raise SystemExit(f"error: {error}") from None
