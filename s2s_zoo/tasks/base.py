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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import tensorflow as tf

from s2s_zoo.data.preprocessor import TargetText

Example = tuple[str, str]  # (source, target): source text, or a media file path
Splits = dict[str, list[Example]]

TASKS: dict[str, type[Task]] = {}
T = TypeVar("T", bound=type)


def register_task(name: str) -> Callable[[T], T]:
    """Class decorator: make a task available by `name` to recipes and `s2s-zoo train`."""

    def add(cls: T) -> T:
        cls.name = name
        TASKS[name] = cls
        return cls

    return add


class Task:
    """Base class; see the module docstring. `options` are the recipe's task settings."""

    name: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    # recipe-settable options and their defaults (vocab_size is every task's)
    default_options: ClassVar[dict[str, Any]] = {"vocab_size": 8000}

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        unknown = sorted(set(options or {}) - set(self.default_options))
        if unknown:
            raise ValueError(
                f"unknown options for task {self.name!r}: {unknown}; "
                f"known: {sorted(self.default_options)}"
            )
        self.options = {**self.default_options, **(options or {})}

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

    def serving_input(self, source: str) -> str | bytes:
        """What a client sends to the export for one example's source."""
        return source

    def unusual_inputs(self) -> list[str | bytes]:
        """Odd requests the serving check adds to real samples (empty, unreadable, ...)."""
        return ["", "  "]

    def show(self, source: str) -> str:
        """How an example's source is printed next to its output."""
        return repr(source)

    def score(self, hypotheses: Sequence[str], references: Sequence[list[str]]) -> dict:
        """Corpus metrics of `hypotheses` against one or more references each."""
        return {"exact_match": exact_match(hypotheses, references)}


class FileSourceTask(Task):
    """A task whose sources are media files (images, audio) sent as bytes."""

    unreadable = b"this is neither an image nor a WAV file"

    def serving_input(self, source: str) -> bytes:
        return Path(source).read_bytes()

    def unusual_inputs(self) -> list[bytes]:
        return [self.unreadable, b""]

    def show(self, source: str) -> str:
        return Path(source).name


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
