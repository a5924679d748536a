"""The recipe flow for image captioning and speech recognition.

Same shape as translation (`text_recipe.py`): data (user files, or the embedded
default task generated offline) -> target tokenizer -> catalog model -> fit ->
export + checkpoint + Session-path serving check with real image / WAV bytes ->
evaluation of the *exported* model (BLEU-4 for captions, WER/CER for speech).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from s2s_zoo.data.readers import DataFormatError
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.metrics import corpus_bleu, error_rates
from s2s_zoo.models.registry import build_from_catalog, source_kind
from s2s_zoo.training.fit import (
    TrainConfig,
    compile_model,
    distribution_strategy,
    fit,
    set_precision,
)
from s2s_zoo.training.recipe_common import (
    REPO_ROOT,
    add_common_arguments,
    decoding_from,
    export_and_check,
    load_for_fine_tuning,
    model_overrides,
    train_config_from,
)

Pairs = list[tuple[str, str]]  # (image or WAV path, caption or transcript)
BAD_INPUT = b"this is not an image or a WAV file"


@dataclass
class MediaRecipe:
    """What a captioning or speech recipe script declares."""

    name: str
    model: str
    model_overrides: dict[str, Any] = field(default_factory=dict)
    front_end: dict[str, Any] = field(default_factory=dict)  # ImageFrontEnd/AudioFrontEnd args
    train: TrainConfig = field(default_factory=TrainConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    vocab_size: int = 64
    max_target_length: int = 64
    default_task: dict[str, Any] = field(default_factory=dict)  # args of the task generator
    spec_augment: bool = False  # speech only: SpecAugment masking on training batches

    @property
    def kind(self) -> str:
        return source_kind(self.model)


# -- arguments and data --------------------------------------------------------------------


def argument_parser(recipe: MediaRecipe, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    what = "image_path<TAB>caption TSV, or COCO captions JSON with --image-dir"
    if recipe.kind == "audio":
        what = "manifest: CSV/TSV with path,transcript columns, or JSONL"
    p.add_argument("--train", help=f"training data: {what}")
    p.add_argument("--valid", help="validation data (same formats); required with --train")
    p.add_argument("--test", help="held-out data to evaluate the exported model on")
    p.add_argument(
        "--data-dir",
        default=str(REPO_ROOT / "data" / recipe.name),
        help="where the embedded default task is generated (reused when present)",
    )
    if recipe.kind == "image":
        p.add_argument("--image-dir", help="image folder for COCO-style JSON annotations")
        p.add_argument("--backbone-weights", help="local weights file for the CNN backbone")
        p.add_argument("--freeze-backbone", action="store_true", help="train the decoder only")
    else:
        p.add_argument("--path-field", default="path", help="manifest audio path column")
        p.add_argument("--transcript-field", default="transcript", help="transcript column")
        p.add_argument(
            "--spec-augment",
            action=argparse.BooleanOptionalAction,
            default=recipe.spec_augment,
            help="SpecAugment masking on training batches",
        )
    add_common_arguments(p, recipe.name, recipe.train, recipe.decoding, recipe.vocab_size)
    return p


def _read(recipe: MediaRecipe, args: argparse.Namespace, path: str) -> Pairs:
    if recipe.kind == "image":
        from s2s_zoo.data.captions import read_caption_tsv, read_coco_captions

        if path.endswith(".json"):
            if not args.image_dir:
                raise SystemExit("--image-dir is required with COCO-style JSON annotations")
            return read_coco_captions(path, args.image_dir)
        return read_caption_tsv(path)
    from s2s_zoo.data.asr_manifests import read_manifest

    return read_manifest(path, path_field=args.path_field, transcript_field=args.transcript_field)


def load_splits(recipe: MediaRecipe, args: argparse.Namespace) -> dict[str, Pairs]:
    """User files with --train/--valid(/--test), else the embedded task (made offline)."""
    if args.train:
        if not args.valid:
            raise SystemExit("--valid is required with --train")
        splits = {s: _read(recipe, args, getattr(args, s)) for s in ("train", "valid", "test")
                  if getattr(args, s)}  # fmt: skip
        for name, pairs in splits.items():
            print(f"{name}: {len(pairs)} examples from {getattr(args, name)}")
        return splits
    if args.valid or args.test:
        raise SystemExit("--valid/--test need --train (the default task makes its own splits)")
    files = default_task(recipe)(args.data_dir, seed=args.seed, **recipe.default_task)
    return {name: _read(recipe, args, str(path)) for name, path in files.items()}


def default_task(recipe: MediaRecipe) -> Callable[..., dict[str, Path]]:
    if recipe.kind == "image":
        from s2s_zoo.tasks.captioning.digit_strips import make_digit_caption_task

        print("No --train given: handwritten-digit strings (scikit-learn digits) -> words.")
        return make_digit_caption_task
    from s2s_zoo.tasks.speech.espeak_numbers import make_spoken_number_task

    print("No --train given: spoken numbers rendered by espeak-ng, test voices held out.")
    return make_spoken_number_task


# -- model ---------------------------------------------------------------------------------


def build_inference(recipe: MediaRecipe, args: argparse.Namespace, train: Pairs):
    """A fresh model with a target tokenizer trained on `train`, or the one to fine-tune."""
    decoding = decoding_from(args, recipe.decoding)
    overrides = model_overrides(args, recipe.model_overrides)
    if args.init_from:
        return load_for_fine_tuning(args.init_from, decoding)
    target_proto = train_sentencepiece([t for _, t in train], args.vocab_size)
    if recipe.kind == "image":
        from s2s_zoo.data.media_preprocessors import ImagePreprocessor
        from s2s_zoo.features.image import ImageFrontEnd

        front = ImageFrontEnd(**recipe.front_end)
        pre = ImagePreprocessor(target_proto, front, recipe.max_target_length)
        overrides = {"image_height": front.height, "image_width": front.width, **overrides}
        if args.freeze_backbone:
            overrides["backbone_trainable"] = False
    else:
        from s2s_zoo.data.media_preprocessors import AudioPreprocessor
        from s2s_zoo.features.audio import AudioFrontEnd

        front = AudioFrontEnd(**recipe.front_end)
        pre = AudioPreprocessor(target_proto, front, recipe.max_target_length)
        overrides = {"feature_dim": front.feature_dim, **overrides}
    model = build_from_catalog(recipe.model, 0, pre.target_vocab_size, **overrides)
    if recipe.kind == "image" and args.backbone_weights:
        model.backbone.load_weights(args.backbone_weights)
        print(f"Backbone weights loaded from {args.backbone_weights}")
    return Seq2SeqInference(pre, model, decoding)


def make_datasets(recipe, args, inference, splits) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    from s2s_zoo.data import media_pipeline

    pre = inference.preprocessor
    if recipe.kind == "image":
        make = media_pipeline.make_image_dataset
        return (
            make(splits["train"], pre, args.batch_size, seed=args.seed),
            make(splits["valid"], pre, args.batch_size, shuffle=False),
        )
    make = media_pipeline.make_audio_dataset
    return (
        make(splits["train"], pre, args.batch_size, seed=args.seed, spec_augment=args.spec_augment),
        make(splits["valid"], pre, args.batch_size, shuffle=False),
    )


# -- evaluation ----------------------------------------------------------------------------


def decode_files(signature, input_name: str, paths: Sequence[str], batch_size: int = 32):
    """Run an exported signature over files (sent as bytes); return best strings."""
    outputs: list[str] = []
    for i in range(0, len(paths), batch_size):
        batch = tf.constant([Path(p).read_bytes() for p in paths[i : i + batch_size]])
        result = signature(**{input_name: batch})
        outputs += [o.decode("utf-8") for o in result["outputs"].numpy()]
    return outputs


def evaluate_export(
    export_path: Path, kind: str, pairs: Pairs, input_name: str, show: int = 5
) -> dict[str, float]:
    """BLEU-4 and exact match (captions) or WER/CER (speech) of the exported model."""
    loaded = tf.saved_model.load(str(export_path))
    references: dict[str, list[str]] = {}
    for path, text in pairs:
        references.setdefault(path, []).append(text)
    paths = list(references)
    metrics: dict[str, float] = {}
    for mode in ("greedy", "beam"):
        start = time.perf_counter()
        hyps = decode_files(loaded.signatures[mode], input_name, paths)
        seconds = time.perf_counter() - start
        refs = [references[p] for p in paths]
        exact = sum(h in r for h, r in zip(hyps, refs, strict=True)) / len(paths)
        metrics[f"{mode}_exact_match"] = exact
        line = f"{mode:>6}: exact match {exact:.2%}"
        if kind == "image":
            metrics[f"{mode}_bleu4"] = corpus_bleu(hyps, refs)
            line += f", BLEU-4 {metrics[f'{mode}_bleu4']:.1f}"
        else:
            rates = error_rates(hyps, [r[0] for r in refs])
            metrics[f"{mode}_wer"], metrics[f"{mode}_cer"] = rates["wer"], rates["cer"]
            line += f", WER {rates['wer']:.2%}, CER {rates['cer']:.2%}"
        print(f"{line} on {len(paths)} held-out files ({len(paths) / seconds:.0f} files/s)")
        if mode == "beam":
            for p, h, r in list(zip(paths, hyps, refs, strict=True))[:show]:
                want = "" if h in r else f" (want {r[0]!r})"
                print(f"  [{'ok' if h in r else 'WRONG'}] {Path(p).name} -> {h!r}{want}")
    return metrics


# -- the flow ------------------------------------------------------------------------------


def run(recipe: MediaRecipe, argv: Sequence[str] | None = None, description: str = "") -> dict:
    """Train, export, serving-check and evaluate; returns paths, history and metrics."""
    args = argument_parser(recipe, description or recipe.name).parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    set_precision(args.mixed_precision)
    splits = load_splits(recipe, args)
    train_config = train_config_from(args)
    with distribution_strategy().scope():
        inference = build_inference(recipe, args, splits["train"])
        compile_model(inference.model.training_model, train_config)
    print(
        f"Model {recipe.model}: {inference.model.count_params():,} parameters; "
        f"target vocab {inference.preprocessor.target_vocab_size}"
    )
    train_ds, valid_ds = make_datasets(recipe, args, inference, splits)
    history = fit(inference.model.training_model, train_ds, valid_ds, train_config)

    samples = [Path(p).read_bytes() for p, _ in splits["valid"][:3]] + [BAD_INPUT, b""]
    result = export_and_check(inference, args, samples)
    result["history"] = history.history
    eval_pairs = splits.get("test") or splits["valid"]
    result["metrics"] = evaluate_export(
        result["export_path"], recipe.kind, eval_pairs, inference.input_name
    )
    return result


def main(recipe: MediaRecipe, description: str = "") -> None:
    """Entry point for recipe scripts: data errors end the run with `file:line: reason`."""
    try:
        run(recipe, description=description)
    except (DataFormatError, FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
