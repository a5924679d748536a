"""The one recipe runner: parse -> read -> preprocess -> build -> fit -> checkpoint ->
export -> serving check -> evaluate, for every task and every catalog model.

A recipe script declares a `Recipe` (task, catalog model, overrides, defaults) and
calls `main(RECIPE)`; `s2s-zoo train --task T --model M` builds the same `Recipe`
from the catalog entry's own defaults. Task-specific behaviour lives in the task
(`s2s_zoo.tasks`), model-specific behaviour in the catalog (`s2s_zoo.models`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from s2s_zoo.bundle import load_bundle, save_bundle
from s2s_zoo.data.readers import DataFormatError
from s2s_zoo.export.conformance import batch_inputs, check_serving
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import (
    build_from_catalog,
    entry,
    requires_joint_vocabulary,
    source_features,
)
from s2s_zoo.tasks.base import Example, Splits, Task, get_task
from s2s_zoo.training.callbacks import DecodedValidation
from s2s_zoo.training.distribute import STRATEGIES, is_chief, make_strategy
from s2s_zoo.training.fit import TrainConfig, compile_model, fit, set_precision
from s2s_zoo.training.priors import init_output_bias

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Recipe:
    """What a recipe script declares. `train`/`decoding` None: the catalog entry's defaults."""

    name: str
    task: str
    model: str
    model_overrides: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig | None = None
    decoding: DecodingConfig | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the task's options

    def train_config(self) -> TrainConfig:
        return self.train or TrainConfig(**entry(self.model).train)

    def decoding_config(self) -> DecodingConfig:
        return self.decoding or DecodingConfig(**entry(self.model).decoding)


def recipe_for(task: str, model: str, name: str | None = None) -> Recipe:
    """A recipe from a catalog entry's own training and decoding defaults."""
    entry(model)  # unknown names fail here, with the catalog listed
    return Recipe(name=name or f"{task}_{model}", task=task, model=model)


# -- arguments ---------------------------------------------------------------------------


def argument_parser(recipe: Recipe, task: Task, description: str = "") -> argparse.ArgumentParser:
    """Every recipe's options: data, the task's own, training, decoding, export."""
    train, decoding = recipe.train_config(), recipe.decoding_config()
    p = argparse.ArgumentParser(description=description or recipe.name, allow_abbrev=False)
    p.add_argument("--train", help="training data (formats: see the task's readers)")
    p.add_argument("--valid", help="validation data (same formats); required with --train")
    p.add_argument("--test", help="held-out data to evaluate the exported model on")
    p.add_argument(
        "--data-dir",
        default=str(REPO_ROOT / "data" / recipe.name),
        help="where a generated default task is written (reused when present)",
    )
    task.add_arguments(p)
    p.add_argument("--init-from", help="exported version dir or checkpoint dir to fine-tune")
    p.add_argument("--export-dir", default=str(REPO_ROOT / "exported"), help="export base")
    p.add_argument("--name", default=recipe.name, help="model name under the export base")
    p.add_argument(
        "--checkpoint-dir",
        help="checkpoint bundle directory (default: checkpoints/NAME/VERSION)",
    )
    p.add_argument("--epochs", type=int, default=train.epochs)
    p.add_argument("--batch-size", type=int, default=train.batch_size)
    p.add_argument("--learning-rate", type=float, default=train.learning_rate)
    p.add_argument("--label-smoothing", type=float, default=train.label_smoothing)
    p.add_argument("--max-minutes", type=float, default=train.max_minutes, help="time budget")
    p.add_argument(
        "--budget-clock",
        choices=("wall", "cpu"),
        default=train.budget_clock,
        help="what --max-minutes counts: wall-clock time, or this process's CPU time over "
        "the machine's cores (comparable on a shared machine)",
    )
    p.add_argument(
        "--patience", type=int, default=train.patience, help="early-stopping epochs (0: off)"
    )
    p.add_argument("--vocab-size", type=int, default=task.options["vocab_size"])
    p.add_argument("--beam-size", type=int, default=decoding.beam_size)
    p.add_argument("--length-penalty", type=float, default=decoding.length_penalty)
    p.add_argument(
        "--min-length",
        type=int,
        default=decoding.min_length,
        help="no end of output before this many tokens (0: off)",
    )
    p.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        default=decoding.no_repeat_ngram_size,
        help="never repeat an output n-gram of this many tokens (0: off)",
    )
    p.add_argument(
        "--coverage-penalty",
        type=float,
        default=decoding.coverage_penalty,
        help="GNMT coverage penalty beta for beam search, attention models only (0: off)",
    )
    p.add_argument(
        "--mixed-precision",
        nargs="?",
        const="float16",
        choices=["float16", "bfloat16"],
        help="mixed precision: float16 (GPUs; the default when given alone) or bfloat16",
    )
    p.add_argument("--xla", action="store_true", help="jit_compile the training step")
    p.add_argument("--seed", type=int, default=train.seed)
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="mirrored: all GPUs (or --devices) of this machine; multi_worker: the cluster "
        "in TF_CONFIG (see the README)",
    )
    p.add_argument("--devices", help="comma-separated devices for --strategy mirrored")
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=train.warmup_steps,
        help="linear warmup to --learning-rate, then inverse square root decay (0: constant)",
    )
    p.add_argument(
        "--accumulate", type=int, default=train.accumulate, help="batches per optimizer update"
    )
    p.add_argument(
        "--batch-tokens",
        type=int,
        help="text tasks: batch by padded tokens (--batch-size caps the rows)",
    )
    p.add_argument(
        "--logdir", help="TensorBoard events and training.csv (default: CHECKPOINTS/logs)"
    )
    p.add_argument(
        "--valid-decode",
        type=non_negative_int,
        default=200,
        metavar="N",
        help="after each epoch, greedy-decode N validation sources (a fixed seeded sample) "
        "and log the task's metrics as val_<metric> (val_bleu, val_wer, ...; 0: off); "
        "decoding time is not counted in --max-minutes",
    )
    p.add_argument(
        "--early-stopping-metric",
        default=train.early_stopping_metric,
        metavar="NAME",
        help="what early stopping (and the weights kept) follows on the validation split: "
        "loss, or a decoded metric of the task such as bleu, wer, rouge1 (needs "
        "--valid-decode > 0; wer/cer are minimised, others maximised)",
    )
    p.add_argument(
        "--backup-dir",
        help="resumable backup; rerun the same command after a crash to continue from it "
        "(default: CHECKPOINTS/backup; deleted when training ends)",
    )
    p.add_argument(
        "--backup-every", type=int, help="steps between backups (default: at epoch ends)"
    )
    p.add_argument(
        "--epoch-checkpoints",
        help="write each epoch's weights here (for `s2s-zoo average`)",
    )
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
    return p


def train_config_from(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        max_minutes=args.max_minutes,
        budget_clock=args.budget_clock,
        jit_compile=args.xla,
        seed=args.seed,
        warmup_steps=args.warmup_steps,
        accumulate=args.accumulate,
        early_stopping_metric=args.early_stopping_metric,
    )


def non_negative_int(value: str) -> int:
    """argparse type: an integer >= 0."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


def decoding_from(args: argparse.Namespace, defaults: DecodingConfig) -> DecodingConfig:
    """The recipe's decoding settings with the command line's beam size, penalties and
    output controls."""
    return dataclasses.replace(
        defaults,
        beam_size=args.beam_size,
        length_penalty=args.length_penalty,
        num_hypotheses=min(defaults.num_hypotheses, args.beam_size),
        min_length=args.min_length,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        coverage_penalty=args.coverage_penalty,
    )


# -- data and model ----------------------------------------------------------------------


def load_splits(task: Task, args: argparse.Namespace) -> Splits:
    """User files with --train/--valid(/--test), else the task's built-in corpus."""
    if args.train:
        if not args.valid:
            raise SystemExit("--valid is required with --train")
        return {s: task.read(getattr(args, s), args) for s in ("train", "valid", "test")
                if getattr(args, s)}  # fmt: skip
    if args.valid or args.test:
        raise SystemExit("--valid/--test need --train (the default task makes its own splits)")
    return task.default_splits(args)


def build_inference(
    recipe: Recipe, task: Task, args: argparse.Namespace, train: list[Example]
) -> Seq2SeqInference:
    """A fresh model with tokenizers trained on `train`, or the one to fine-tune."""
    decoding = decoding_from(args, recipe.decoding_config())
    extra = json.loads(args.model_config)
    if args.init_from:
        if extra:
            raise SystemExit("--model-config cannot change a model loaded with --init-from")
        loaded = load_bundle(args.init_from)
        print(f"Fine-tuning from {args.init_from}: its vocabulary and architecture are kept.")
        return Seq2SeqInference(loaded.preprocessor, loaded.model, decoding)
    # merged first: --model-config may override a key the recipe sets (a TypeError before)
    if requires_joint_vocabulary(recipe.model, **{**recipe.model_overrides, **extra}):
        preprocessor = task.make_joint_preprocessor(train, args)  # or a clear refusal
    else:
        preprocessor = task.make_preprocessor(train, args)
    overrides = {**task.model_overrides(preprocessor, args), **recipe.model_overrides, **extra}
    source_vocab = getattr(preprocessor, "source_vocab_size", 0)
    model = build_from_catalog(
        recipe.model, source_vocab, preprocessor.target_vocab_size, **overrides
    )
    task.after_build(model, args)
    # a fresh model starts predicting the target unigram distribution (training.priors)
    init_output_bias(model.decoder, preprocessor, [t for _, t in train])
    return Seq2SeqInference(preprocessor, model, decoding)


# -- finish: checkpoint, export, check, evaluate ------------------------------------------


def checkpoint_export_and_check(
    inference: Seq2SeqInference, task: Task, args: argparse.Namespace, splits: Splits
) -> dict[str, Any]:
    """Save the checkpoint first (a failed export must not lose a run), then export the
    next version, name the checkpoint after it, and check the export on the Session path."""
    base = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    pending = base or REPO_ROOT / "checkpoints" / args.name / f"pending-{uuid.uuid4().hex[:8]}"
    save_bundle(inference, pending, task=task.name)
    try:
        export_path = export_saved_model(
            inference, Path(args.export_dir) / args.name, task=task.name
        )
    except Exception:
        print(
            f"Export failed; the trained model is safe in {pending}. Export it again with:\n"
            f"  s2s-zoo export --from {pending} --export-dir {args.export_dir} --name {args.name}"
        )
        raise
    checkpoint_dir = pending
    # one checkpoint per export version, so fine-tuning never overwrites its starting point;
    # a version folder left by a run that exported elsewhere is never replaced
    if base is None and not (pending.parent / export_path.name).exists():
        checkpoint_dir = pending.parent / export_path.name
        pending.rename(checkpoint_dir)
    print(f"Checkpoint: {checkpoint_dir}\nExported SavedModel: {export_path}")
    if not args.no_serving_check:
        samples = [task.serving_input(s) for s, _ in splits["valid"][:3]]
        unusual = task.unusual_inputs()  # also alone: a request of only unreadable items
        # and an empty request, which a client that filters its inputs can send
        batches = [samples + unusual, unusual, []]
        report = check_serving(export_path, inference, batches=batches)
        if not report.ok:
            raise SystemExit("Serving check FAILED:\n" + "\n".join(report.mismatches))
        print(f"Serving check (TF1 Session loader, fresh process): OK for {report.signatures}")
    return {"export_path": export_path, "checkpoint_dir": checkpoint_dir}


def decode_with(
    signature, input_name: str | Sequence[str], inputs: Sequence[Any], batch_size: int = 32
):
    """Run an exported signature over inputs in batches; return the best strings.

    `inputs` are what `Task.serving_input` returns: values for a single-input model,
    dicts of input name -> value for several inputs (padded per batch, see `batch_inputs`).
    """
    outputs: list[str] = []
    for i in range(0, len(inputs), batch_size):
        batch = batch_inputs(inputs[i : i + batch_size], input_name)
        result = signature(**{k: tf.constant(v, tf.string) for k, v in batch.items()})
        outputs += [o.decode("utf-8") for o in result["outputs"].numpy()]
    return outputs


def references_by_source(examples: Sequence[Example]) -> tuple[list, list[list[str]]]:
    """(distinct sources in first-seen order, all references of each): an image with
    several captions is decoded once and scored against all of them."""
    references: dict[str, list[str]] = {}
    for source, target in examples:
        references.setdefault(source, []).append(target)
    return list(references), list(references.values())


def decoded_validation(
    inference: Seq2SeqInference,
    task: Task,
    examples: Sequence[Example],
    count: int,
    seed: int = 0,
    early_stopping_metric: str = "loss",
) -> DecodedValidation | None:
    """The per-epoch `val_<metric>` callback over about `count` validation sources: a
    seeded sample of whole groups (`Task.example_group`: a dialog) or of sources, kept in
    file order (a length-sorted file is not cut to its short end); greedy search on the
    live weights. None when `count` is 0. Refuses an early-stopping metric the task does
    not report."""
    sources, refs = references_by_source(examples)
    if count == 0:
        sources, refs = [], []
    elif count < len(sources):
        chosen = sample_by_group(sources, count, task.example_group, seed)
        sources, refs = [sources[i] for i in chosen], [refs[i] for i in chosen]
    if early_stopping_metric != "loss":
        if not sources:
            raise SystemExit(
                f"--early-stopping-metric {early_stopping_metric} needs --valid-decode > 0"
            )
        known = sorted(task.score_sources(sources, [""] * len(sources), refs))
        if early_stopping_metric not in known:
            raise SystemExit(
                f"--early-stopping-metric {early_stopping_metric!r}: the {task.name} task "
                f"reports {['loss', *known]}"
            )
    if not sources:
        return None
    names = inference.input_names
    inputs = [task.serving_input(s) for s in sources]  # read once (media files), not per epoch

    def greedy(**tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        return inference.greedy(*[tensors[name] for name in names])

    def decode() -> list[str]:
        return decode_with(greedy, names, inputs)

    return DecodedValidation(decode, task.score_sources, sources, refs)


def sample_by_group(sources: Sequence[Any], count: int, group_of, seed: int) -> list[int]:
    """Indices of about `count` sources (whole groups, at least one), sorted."""
    groups: dict[Any, list[int]] = {}
    for index, source in enumerate(sources):
        key = group_of(source)
        groups.setdefault(index if key is None else key, []).append(index)
    order = list(groups)
    random.Random(seed).shuffle(order)
    chosen: list[int] = []
    for key in order:
        if chosen and len(chosen) + len(groups[key]) > count:
            continue
        chosen += groups[key]
        if len(chosen) >= count:
            break
    return sorted(chosen)


def evaluate_export(
    export_path: str | Path,
    task: Task,
    examples: list[Example],
    show: int = 5,
    groups: dict[str, list[str]] | None = None,
) -> dict[str, float]:
    """The task's metrics of the *exported* model, greedy and beam, on `examples`.

    Examples sharing a source (an image with several captions) are decoded once and
    scored against all their references. With `groups` ({source: group names}, from
    `task.source_groups`), every metric is also reported per group, as
    `beam_wer[festival]`.
    """
    loaded = tf.saved_model.load(str(export_path))
    input_names = sorted(loaded.signatures["greedy"].structured_input_signature[1])
    sources, refs = references_by_source(examples)
    members = group_members(sources, groups) if groups else {}
    inputs = [task.serving_input(s) for s in sources]
    metrics: dict[str, float] = {}
    for mode in ("greedy", "beam"):
        start = time.perf_counter()
        hyps = decode_with(loaded.signatures[mode], input_names, inputs)
        seconds = time.perf_counter() - start
        scores = {
            **task.score_sources(sources, hyps, refs),
            **task.output_stats(sources, hyps),
        }
        metrics.update({f"{mode}_{k}": v for k, v in scores.items()})
        shown = ", ".join(_format_metric(k, v) for k, v in scores.items())
        rate = len(sources) / max(seconds, 1e-9)
        print(f"{mode:>6}: {shown} on {len(sources)} held-out inputs ({rate:.0f}/s)")
        for group, indices in members.items():
            part = task.score([hyps[i] for i in indices], [refs[i] for i in indices])
            metrics.update({f"{mode}_{k}[{group}]": v for k, v in part.items()})
            if mode == "beam":
                shown = ", ".join(_format_metric(k, v) for k, v in part.items())
                print(f"    {group} ({len(indices)}): {shown}")
        if mode == "beam":
            for s, h, r in list(zip(sources, hyps, refs, strict=True))[:show]:
                mark = "ok" if h in r else "WRONG"
                want = "" if h in r else f" (want {r[0]!r})"
                print(f"  [{mark}] {task.show(s)} -> {h!r}{want}")
    for name, hyps in task.baselines(sources).items():  # on the same inputs, for comparison
        scores = {**task.score(hyps, refs), **task.output_stats(sources, hyps)}
        metrics.update({f"{name}_{k}": v for k, v in scores.items()})
        shown = ", ".join(_format_metric(k, v) for k, v in scores.items())
        print(f"{name:>6}: {shown} (baseline)")
    return metrics


def group_members(sources: Sequence[str], groups: dict[str, list[str]]) -> dict[str, list[int]]:
    """{group: indices of `sources` in it}, groups sorted by name; every source must be listed."""
    missing = [s for s in sources if s not in groups]
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(sources)} evaluation sources have no group in the split's "
            f"sources file, e.g. {missing[0]}"
        )
    members: dict[str, list[int]] = {}
    for index, source in enumerate(sources):
        for group in groups[source]:
            members.setdefault(group, []).append(index)
    return dict(sorted(members.items()))


def eval_split_groups(
    task: Task, args: argparse.Namespace, split: str
) -> dict[str, list[str]] | None:
    """The task's per-source groups for the evaluation split's file (user or generated)."""
    path = getattr(args, split, None) if args.train else task.split_files.get(split)
    return task.source_groups(path) if path else None


def _format_metric(name: str, value: float) -> str:
    if name in ("exact_match", "wer", "cer") or name.endswith(("accuracy", "f1")):
        return f"{name.replace('_', ' ')} {value:.2%}"
    if name in ("copy_rate", "repeated_trigrams"):
        return f"{name.replace('_', ' ')} {value:.3f}"
    return f"{name} {value:.1f}"


# -- the flow ------------------------------------------------------------------------------


def run_directory(args: argparse.Namespace) -> Path:
    """Where this run name keeps logs and backups: --checkpoint-dir, or checkpoints/NAME."""
    return (
        Path(args.checkpoint_dir) if args.checkpoint_dir else REPO_ROOT / "checkpoints" / args.name
    )


def run(recipe: Recipe, argv: Sequence[str] | None = None, description: str = "") -> dict:
    """Train, checkpoint, export, serving-check and evaluate; returns paths, metrics, the
    history and `train_steps` (optimizer updates)."""
    task = get_task(recipe.task, recipe.options)
    args = argument_parser(recipe, task, description).parse_args(argv)
    if args.batch_tokens and not task.supports_batch_tokens:
        raise SystemExit(f"--batch-tokens is not supported by the {task.name} task")
    # first: a multi-worker strategy configures collectives before any TF op runs
    devices = args.devices.split(",") if args.devices else None
    strategy = make_strategy(args.strategy, devices)
    args.source_features = source_features(recipe.model)  # lets a task pick its front end
    keras.utils.set_random_seed(args.seed)
    set_precision(args.mixed_precision)
    splits = load_splits(task, args)
    train_config = train_config_from(args)
    with strategy.scope():
        inference = build_inference(recipe, task, args, splits["train"])
        compile_model(inference.model.training_model, train_config)
    model, pre = inference.model, inference.preprocessor
    vocab = f"{getattr(pre, 'source_vocab_size', '-')} -> {pre.target_vocab_size}"
    print(f"Model {recipe.model}: {model.count_params():,} parameters; vocab {vocab}")

    if args.early_stopping_metric != "loss" and args.strategy == "multi_worker":
        # each worker would decide from its own decoded metric; workers that disagree on
        # stopping would hang in the next all-reduce
        raise SystemExit(
            "--early-stopping-metric other than loss is not supported with multi_worker"
        )
    validation = decoded_validation(
        inference,
        task,
        splits["valid"],
        args.valid_decode,
        seed=args.seed,
        early_stopping_metric=args.early_stopping_metric,
    )
    train_ds = task.dataset(splits["train"], pre, args, training=True)
    valid_ds = task.dataset(splits["valid"], pre, args, training=False)
    home = run_directory(args)
    logdir = Path(args.logdir) if args.logdir else home / "logs"
    backup_dir = Path(args.backup_dir) if args.backup_dir else home / "backup"
    if (backup_dir / "state.json").is_file():
        print(f"Resuming from the backup in {backup_dir} (delete it to start over)")
    history = fit(
        model.training_model,
        train_ds,
        valid_ds,
        train_config,
        logdir=logdir,
        checkpoint_dir=args.epoch_checkpoints,
        backup_dir=backup_dir,
        save_freq=args.backup_every,
        validation_decoding=validation,
    )
    if not is_chief(strategy):  # only the chief writes checkpoints and exports
        return {"history": history.history}
    print(f"Training logs (TensorBoard, training.csv): {logdir}")

    result = checkpoint_export_and_check(inference, task, args, splits)
    result["history"] = history.history
    result["train_steps"] = int(model.training_model.optimizer.iterations.numpy())
    eval_split = "test" if splits.get("test") else "valid"
    groups = eval_split_groups(task, args, eval_split)
    result["metrics"] = evaluate_export(
        result["export_path"], task, splits[eval_split], groups=groups
    )
    for name in sorted(set(splits) - {"train", "valid", "test"}):  # extra held-out sets
        print(f"-- held-out set {name!r}")
        result[f"metrics_{name}"] = evaluate_export(result["export_path"], task, splits[name])
    return result


def main(recipe: Recipe, description: str = "", argv: Sequence[str] | None = None) -> None:
    """Entry point for recipe scripts: data errors end the run with `file:line: reason`.

    Only the project's own data errors are shortened to one line; anything else
    (a bug, a Keras shape error) keeps its traceback.
    """
    try:
        run(recipe, argv, description=description)
    except DataFormatError as error:
        raise SystemExit(f"error: {error}") from None


def evaluate_main(
    export_dir: str, test_path: str, task_name: str | None, argv: Sequence[str] = ()
) -> dict[str, float]:
    """`s2s-zoo evaluate`: read a test file with the export's task and score the export."""
    from s2s_zoo.bundle import bundle_task

    task_name = task_name or bundle_task(export_dir)
    if not task_name:
        raise SystemExit(f"{export_dir} records no task; pass --task")
    task = get_task(task_name)
    parser = argparse.ArgumentParser(prog=f"s2s-zoo evaluate ({task_name})")
    task.add_arguments(parser)
    args = parser.parse_args(list(argv))
    try:
        examples = task.read(test_path, args)
    except DataFormatError as error:
        raise SystemExit(f"error: {error}") from None
    return evaluate_export(export_dir, task, examples, groups=task.source_groups(test_path))
