"""Callbacks `fit` adds: time budget, run logs (TensorBoard + CSV), decoded validation
metrics and epoch checkpoints.

Keras' TensorBoard callback logs the epoch metrics and the learning rate but, in
Keras 3, not the graph of the train step (`write_graph` only covers the model
summary: Keras' train function is a Python wrapper around an inner tf.function);
`TrainStepGraph` records that graph with `tf.summary.trace_on` around the first
step, which is when the step is traced.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from keras import ops

CSV_NAME = "training.csv"
EPOCH_CHECKPOINT = "epoch-{epoch:04d}.weights.h5"


class TimeBudget(keras.callbacks.Callback):
    """Stop training once a time budget is spent (checked after each batch).

    `clock="wall"` counts wall-clock time; `clock="cpu"` counts the process's CPU time
    (all its threads) divided by the number of cores, i.e. the wall time the run would
    take with the whole machine to itself, so runs on a shared machine stay comparable.
    The clock starts at `on_train_begin`, so a resumed run gets the full budget.
    """

    CLOCKS = ("wall", "cpu")

    def __init__(self, minutes: float, clock: str = "wall") -> None:
        super().__init__()
        if clock not in self.CLOCKS:
            raise ValueError(f"budget clock must be one of {self.CLOCKS}, got {clock!r}")
        self.seconds = minutes * 60.0
        self.clock = clock
        self.start = 0.0
        self.paused_at: float | None = None

    def pause(self) -> None:
        """Stop counting (e.g. while validation outputs are decoded) until `resume`."""
        self.paused_at = self.now()

    def resume(self) -> None:
        if self.paused_at is not None:
            self.start += self.now() - self.paused_at  # the pause is not spent budget
            self.paused_at = None

    def now(self) -> float:
        if self.clock == "cpu":
            return time.process_time() / _usable_cores()
        return time.monotonic()

    def on_train_begin(self, logs=None) -> None:
        self.start = self.now()

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.now() - self.start > self.seconds:
            self.model.stop_training = True


def _usable_cores() -> int:
    """Cores this process may run on (CPU affinity, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no sched_getaffinity (macOS)
        return os.cpu_count() or 1


class LearningRateLog(keras.callbacks.Callback):
    """Put the optimizer's current learning rate into each epoch's logs (for the CSV)."""

    def on_epoch_end(self, epoch, logs=None) -> None:
        if logs is not None and self.model.optimizer is not None:
            logs["learning_rate"] = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))


class DecodedValidation(keras.callbacks.Callback):
    """After each epoch, decode a fixed sample of the validation split on the current
    weights and put the task's metrics in the logs as `val_<metric>` (`val_bleu`,
    `val_wer`, `val_rouge1`, ...), so TensorBoard and training.csv show them per epoch.

    Teacher-forced loss and token accuracy can keep improving while decoded output
    does not (the model never sees its own mistakes in training), so the decoded
    metric is the one to watch. It must run before the logging callbacks (`fit` puts
    it first) so they see the values.

    `decode() -> hypotheses` of `sources`, in order, with the current weights;
    `score(sources, hypotheses, references) -> {name: value}`. Under a multi-worker
    strategy every worker decodes (the same weights give the same outputs), so early
    stopping on a decoded metric decides alike everywhere. Decoding time is not counted
    in a `TimeBudget` given as `budget`.
    """

    budget: TimeBudget | None = None

    def __init__(
        self,
        decode: Callable[[], list[str]],
        score: Callable[[Sequence[Any], Sequence[str], Sequence[list[str]]], dict],
        sources: Sequence[Any],
        references: Sequence[list[str]],
    ) -> None:
        super().__init__()
        if len(sources) != len(references):
            raise ValueError(f"{len(sources)} sources for {len(references)} reference sets")
        self.decode, self.score = decode, score
        self.sources, self.references = list(sources), list(references)

    def on_epoch_end(self, epoch, logs=None) -> None:
        if logs is None or not self.sources:
            return
        if self.budget is not None:
            self.budget.pause()
        try:
            hypotheses = self.decode()
        finally:
            if self.budget is not None:
                self.budget.resume()
        for name, value in self.score(self.sources, hypotheses, self.references).items():
            logs[f"val_{name}"] = float(value)


class TrainStepGraph(keras.callbacks.Callback):
    """Write the graph of the first traced train step to `logdir/train` for TensorBoard."""

    def __init__(self, logdir: str | Path) -> None:
        super().__init__()
        self.logdir = Path(logdir) / "train"
        self._tracing = False

    def on_train_begin(self, logs=None) -> None:
        tf.summary.trace_on(graph=True, profiler=False)
        self._tracing = True

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self._tracing:
            self._export()

    def on_train_end(self, logs=None) -> None:
        if self._tracing:
            self._export()

    def _export(self) -> None:
        self._tracing = False
        writer = tf.summary.create_file_writer(str(self.logdir))
        with writer.as_default():
            tf.summary.trace_export(name="train_step", step=0)
        writer.close()


def logging_callbacks(logdir: str | Path, append: bool = False) -> list[keras.callbacks.Callback]:
    """TensorBoard (losses, token accuracy, learning rate, step graph) and a CSV log.

    `append=True` (a resumed run) keeps the CSV rows of the epochs already done.
    """
    try:
        import tensorboard  # noqa: F401  (tf.summary writes nothing without it)
    except ImportError:
        raise ImportError(
            "logdir needs TensorBoard: pip install 's2s-zoo[logs]' (tensorboard>=2.21,<2.22)"
        ) from None
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    return [
        LearningRateLog(),
        keras.callbacks.TensorBoard(str(logdir), write_graph=True, update_freq="epoch"),
        TrainStepGraph(logdir),
        ResumableCSVLogger(str(logdir / CSV_NAME), append=append),
    ]


class ResumableCSVLogger(keras.callbacks.CSVLogger):
    """`CSVLogger` that, appending to a log (a resumed run), writes under the columns
    already there: a column the run does not have is "NA", one the first run did not
    have is left out; rows are never misaligned with the header."""

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)  # Keras resets `keys` here
        header = _csv_header(Path(self.filename)) if self.append else None
        if header:
            self.keys = [key for key in header if key != "epoch"]


def _csv_header(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        return next(csv.reader(handle), None)


def epoch_checkpoints(directory: str | Path) -> keras.callbacks.ModelCheckpoint:
    """Save `epoch-NNNN.weights.h5` after every epoch (for `average_checkpoints`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return keras.callbacks.ModelCheckpoint(
        str(directory / EPOCH_CHECKPOINT), save_weights_only=True, save_freq="epoch"
    )
