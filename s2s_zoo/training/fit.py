"""Compile and fit a model's training view: optimizer, loss, precision, XLA, strategy.

GPU-ready switches (`mixed_precision`, `jit_compile`, `distribution_strategy`) are
plain arguments; on this project's CPU machines they default to off/default.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass

import keras
import tensorflow as tf

from s2s_zoo.training.losses import MaskedAccuracy, SequenceLoss


@dataclass
class TrainConfig:
    """Optimisation settings shared by every recipe."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    label_smoothing: float = 0.0
    patience: int = 3
    max_minutes: float | None = None
    # "wall": max_minutes of wall-clock time; "cpu": of this process's CPU time divided by
    # the machine's cores (an idle machine's wall minutes, unaffected by other processes)
    budget_clock: str = "wall"
    jit_compile: bool = False
    seed: int = 0


def set_precision(mixed_precision: bool) -> None:
    """`mixed_float16` on GPUs (logits stay float32: see the output layers)."""
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all GPUs when there are several, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


class TimeBudget(keras.callbacks.Callback):
    """Stop training once a time budget is spent (checked after each batch).

    `clock="wall"` counts wall-clock time; `clock="cpu"` counts the process's CPU time
    (all its threads) divided by the number of cores, i.e. the wall time the run would
    take with the whole machine to itself, so runs on a shared machine stay comparable.
    """

    CLOCKS = ("wall", "cpu")

    def __init__(self, minutes: float, clock: str = "wall") -> None:
        super().__init__()
        if clock not in self.CLOCKS:
            raise ValueError(f"budget clock must be one of {self.CLOCKS}, got {clock!r}")
        self.seconds = minutes * 60.0
        self.clock = clock
        self.start = 0.0

    def now(self) -> float:
        if self.clock == "cpu":
            return time.process_time() / (os.cpu_count() or 1)
        return time.monotonic()

    def on_train_begin(self, logs=None) -> None:
        self.start = self.now()

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.now() - self.start > self.seconds:
            self.model.stop_training = True


def compile_model(model: keras.Model, config: TrainConfig) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
        loss=SequenceLoss(label_smoothing=config.label_smoothing),
        metrics=[MaskedAccuracy()],
        jit_compile=config.jit_compile,
    )


def fit(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    valid_ds: tf.data.Dataset | None,
    config: TrainConfig,
    verbose: int | None = None,
) -> keras.callbacks.History:
    """Teacher-forced training with early stopping on validation loss (best weights kept).

    The progress bar is Keras' own; when stdout is not a terminal (CI, log files)
    one line per epoch is printed instead of a redrawn bar.
    """
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    callbacks: list[keras.callbacks.Callback] = []
    if valid_ds is not None and config.patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    if config.max_minutes:
        callbacks.append(TimeBudget(config.max_minutes, config.budget_clock))
    with warnings.catch_warnings():
        # tf.data input of unknown length: Keras warns at each epoch end; that is expected.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        return model.fit(
            train_ds,
            validation_data=valid_ds,
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the dataset shuffles itself, seeded
        )
