"""What a task is: how its data is read, turned into model inputs, served and scored.

A `Task` owns everything that depends on what the data is: its readers and
command-line options, its default corpus, the preprocessor (source front end +
target tokenizer) it builds from training data, its tf.data pipeline, what a
client sends to the export for one example, and its metrics. The runner
(`s2s_zoo.training.runner`) drives any task the same way; a new task is one
module that subclasses `Task` and registers itself with `@register_task`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import tensorflow as tf

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.data.preprocessor import TargetText
from s2s_zoo.data.readers import read_pairs
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.registry import registrar

Example = tuple[str, str]  # (source, target): source text, or a media file path
Splits = dict[str, list[Example]]

TASKS: dict[str, type[Task]] = {}
# class decorator: make a task available by name to recipes and `s2s-zoo train`
register_task = registrar(TASKS, "name")


class Task:
    """Base class; see the module docstring. `options` are the recipe's task settings."""

    name: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    # recipe-settable options and their defaults (vocab_size is every task's)
    default_options: ClassVar[dict[str, Any]] = {"vocab_size": 8000}
    supports_batch_tokens: ClassVar[bool] = False  # `dataset` honours --batch-tokens

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        unknown = sorted(set(options or {}) - set(self.default_options))
        if unknown:
            raise ValueError(
                f"unknown options for task {self.name!r}: {unknown}; "
                f"known: {sorted(self.default_options)}"
            )
        self.options = {**self.default_options, **(options or {})}
        # split name -> file of the generated default corpus, set by `default_splits`
        self.split_files: dict[str, Path] = {}

    # -- data ---------------------------------------------------------------------------

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Task-specific command-line options (data formats, front-end switches)."""

    def read(self, path: str, args: argparse.Namespace) -> list[Example]:
        raise NotImplementedError

    def default_splits(self, args: argparse.Namespace) -> Splits:
        """The built-in corpus, made offline, with train/valid/test splits."""
        raise NotImplementedError

    # -- model inputs ---------------------------------------------------------------------

    def make_preprocessor(self, train: list[Example], args: argparse.Namespace) -> TargetText:
        """Tokenizers trained on `train` and the source front end."""
        raise NotImplementedError

    def make_joint_preprocessor(self, train: list[Example], args: argparse.Namespace) -> TargetText:
        """Like `make_preprocessor`, with ONE tokenizer trained on sources + targets and
        used for both sides, for models that share embeddings across sides
        (`Seq2SeqModel.requires_joint_vocabulary`). Tasks whose sources are not text
        cannot have one, so by default this refuses."""
        raise ValueError(
            f"the model shares its embeddings between source and target, which needs one "
            f"joint vocabulary, but task {self.name!r} has no text source to share it with "
            f"(use share_embeddings='decoder_output' or 'none')"
        )

    def model_overrides(self, preprocessor: TargetText, args: argparse.Namespace) -> dict:
        """Model config values the data fixes (e.g. image size, mel bins)."""
        return {}

    def after_build(self, model, args: argparse.Namespace) -> None:
        """Last touches to a freshly built model (e.g. loading backbone weights)."""

    def dataset(
        self,
        examples: list[Example],
        preprocessor: TargetText,
        args: argparse.Namespace,
        training: bool,
    ) -> tf.data.Dataset:
        raise NotImplementedError

    # -- serving and evaluation -------------------------------------------------------------

    def serving_input(self, source: str) -> str | bytes | dict[str, Any]:
        """What a client sends to the export for one example's source: the value of the
        model's one input, or a dict of input name -> value for several inputs."""
        return source

    def unusual_inputs(self) -> list[Any]:
        """Odd requests the serving check adds to real samples (empty, unreadable, ...)."""
        return ["", "  "]

    def show(self, source: str) -> str:
        """How an example's source is printed next to its output."""
        return repr(source)

    def score(self, hypotheses: Sequence[str], references: Sequence[list[str]]) -> dict:
        """Corpus metrics of `hypotheses` against one or more references each."""
        return {"exact_match": exact_match(hypotheses, references)}

    def baselines(self, sources: Sequence[str]) -> dict[str, list[str]]:
        """Outputs of simple systems, scored next to the model's (e.g. a summary's lead)."""
        return {}

    def output_stats(self, sources: Sequence[str], hypotheses: Sequence[str]) -> dict:
        """What the score does not show about outputs (e.g. copy rate, repetition)."""
        return {}

    def score_sources(
        self, sources: Sequence[Any], hypotheses: Sequence[str], references: Sequence[list[str]]
    ) -> dict:
        """`score`, for tasks whose metrics need the sources too (e.g. per-dialog accuracy)."""
        return self.score(hypotheses, references)

    def example_group(self, source: Any) -> Any:
        """What an example belongs to and is scored with (a dialog), or None. A sample of
        the validation split for per-epoch decoding takes whole groups."""
        return None

    def source_groups(self, split_path: str | Path) -> dict[str, list[str]] | None:
        """{example source: the groups it is also scored in} for a split file, or None.

        Tasks whose data records where each example comes from (a font, a speech
        engine) read it here, e.g. from a `<split>.sources.tsv` beside the split; the
        runner then reports `task.score` per group as well as overall.
        """
        return None


class FileSourceTask(Task):
    """A task whose sources are media files (images, audio) sent as bytes, read by a
    front end (`front_end_class`) into features, with a generated default corpus."""

    unreadable = b"this is neither an image nor a WAV file"
    front_end_class: ClassVar[type]  # called with the task option "front_end"
    preprocessor_class: ClassVar[type]  # (target proto, front end, max target length)
    default_corpus: ClassVar[str] = ""  # what `default_splits` makes, for the log

    def generate_default_files(self, args: argparse.Namespace) -> dict[str, Path]:
        """Write the built-in corpus under `args.data_dir`: split name -> data file."""
        raise NotImplementedError

    def read_split(self, path: str | Path) -> list[Example]:
        """One generated split file's examples."""
        raise NotImplementedError

    def default_splits(self, args: argparse.Namespace) -> Splits:
        print(f"No --train given: {self.default_corpus}")
        files = self.generate_default_files(args)
        self.split_files = dict(files)
        return {split: self.read_split(path) for split, path in files.items()}

    def make_preprocessor(self, train: list[Example], args: argparse.Namespace) -> TargetText:
        target = train_sentencepiece([t for _, t in train], args.vocab_size)
        front = self.front_end_class(**self.options["front_end"])
        return self.preprocessor_class(target, front, self.options["max_target_length"])

    def serving_input(self, source: str) -> bytes:
        return Path(source).read_bytes()

    def unusual_inputs(self) -> list[bytes]:
        return [self.unreadable, b""]

    def show(self, source: str) -> str:
        return Path(source).name


class TextPairTask(Task):
    """A task whose data is (source text, target text) pairs in TSV or JSONL files
    (`data.readers.read_pairs`); subclasses name the JSONL fields' defaults."""

    source_field: ClassVar[str] = "source"
    target_field: ClassVar[str] = "target"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--format", choices=["tsv", "jsonl"], help="override detection")
        parser.add_argument("--source-field", default=self.source_field, help="JSONL source field")
        parser.add_argument("--target-field", default=self.target_field, help="JSONL target field")

    def read(self, path: str, args: argparse.Namespace) -> list[Example]:
        report = read_pairs(
            path,
            file_format=args.format,
            source_field=args.source_field,
            target_field=args.target_field,
        )
        print(report.summary())
        return report.pairs

    def dataset(self, examples, preprocessor, args, training):
        return make_dataset(
            examples,
            preprocessor,
            args.batch_size,
            shuffle=training,
            seed=args.seed,
            batch_tokens=args.batch_tokens if self.supports_batch_tokens else None,
        )


def augment_names(config_class: Any) -> Callable[[str], str]:
    """argparse `type` of an augmentation flag (`--image-augment`, `--audio-augment`):
    the comma list checked by `config_class.from_names`, spelled canonically."""

    def parse(value: str) -> str:
        try:
            config = config_class.from_names(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return ",".join(config.enabled) or "none"

    return parse


def augment_settings(
    config_class: Any,
    names: str,
    reserved: dict[str, str],
    validation: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Callable[[str], dict[str, Any]]:
    """argparse `type` of `--image-augment-settings` / `--audio-augment-settings`: a JSON
    object of `config_class` fields (`{"snr_db": [0, 20]}`).

    Each value must have its field's kind (a [low, high] list for a range, whole numbers
    where the field holds ints); lists become tuples. `reserved` fields are set by other
    flags and refused with the reason given. The whole is checked by building the config
    with `names` enabled (plus `validation` stand-ins, e.g. for noise recordings that
    another flag supplies); `extra` adds `from_names` keywords that are not fields, with
    their defaults.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    defaults.update(extra or {})

    def coerce(name: str, value: Any) -> Any:
        default = defaults[name]
        if isinstance(default, tuple) and default and isinstance(default[0], str):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise argparse.ArgumentTypeError(f"{name}: a list of names, got {value!r}")
            return tuple(value)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(_is_number(v) for v in value):
                raise argparse.ArgumentTypeError(f"{name}: a list of numbers, got {value!r}")
            if default and isinstance(default[0], int):
                if any(float(v) != int(v) for v in value):
                    raise argparse.ArgumentTypeError(f"{name}: whole numbers, got {value!r}")
                return tuple(int(v) for v in value)
            return tuple(float(v) for v in value)
        if isinstance(default, bool) or not _is_number(value):
            raise argparse.ArgumentTypeError(f"{name}: a number, got {value!r}")
        return int(value) if isinstance(default, int) and float(value) == int(value) else value

    def parse(value: str) -> dict[str, Any]:
        try:
            settings = json.loads(value)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"not JSON ({error}): {value!r}") from None
        if not isinstance(settings, dict):
            raise argparse.ArgumentTypeError(f"a JSON object of settings, got {value!r}")
        for name in settings:
            if name in reserved:
                raise argparse.ArgumentTypeError(f"{name}: {reserved[name]}")
            if name not in defaults:
                known = ", ".join(sorted(set(defaults) - set(reserved)))
                raise argparse.ArgumentTypeError(f"unknown setting {name!r}; known: {known}")
        settings = {name: coerce(name, v) for name, v in settings.items()}
        try:
            config_class.from_names(names, **{**(validation or {}), **settings})
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return settings

    return parse


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def exact_match(hypotheses: Sequence[str], references: Sequence[list[str]]) -> float:
    """Fraction of hypotheses equal to one of their references."""
    if not hypotheses:
        return 0.0
    return sum(h in refs for h, refs in zip(hypotheses, references, strict=True)) / len(hypotheses)


def get_task(name: str, options: dict[str, Any] | None = None) -> Task:
    """The registered task `name`, configured with a recipe's `options`."""
    import s2s_zoo.tasks.builtin  # noqa: F401  registers the built-in tasks

    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; registered: {sorted(TASKS)}")
    return TASKS[name](options)
