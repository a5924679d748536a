"""Compile and fit a model's training view: optimizer, schedule, loss, logs, resume.

GPU-ready switches (`mixed_precision`, `jit_compile`, a distribution strategy from
`training.distribute.make_strategy`) are plain arguments; on this project's CPU
machines they default to off/default. `fit` adds the run's callbacks: early
stopping, time budget, TensorBoard/CSV logs, epoch checkpoints and a resumable
backup, and under a distribution strategy writes files on the chief only.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from s2s_zoo.training.callbacks import TimeBudget, epoch_checkpoints, logging_callbacks
from s2s_zoo.training.distribute import (
    is_chief,
    is_multi_worker,
    prepare_for_strategy,
    shard_by_data,
)
from s2s_zoo.training.losses import MaskedAccuracy, SequenceLoss
from s2s_zoo.training.optimizers import Adam
from s2s_zoo.training.resume import (
    SkipDone,
    TrainingBackup,
    read_backup,
    restore,
    resume_dataset,
)
from s2s_zoo.training.schedules import WarmupInverseSqrt

__all__ = ["TimeBudget", "TrainConfig", "compile_model", "fit", "make_optimizer"]


@dataclass
class TrainConfig:
    """Optimisation settings shared by every recipe.

    `warmup_steps` > 0 replaces the constant learning rate by linear warmup to
    `learning_rate` and inverse-square-root decay (`WarmupInverseSqrt`), counted
    in optimizer updates.
    `accumulate` > 1 averages the gradients of that many batches per update
    (Keras' `gradient_accumulation_steps`: clipping applies to the average).
    """

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
    warmup_steps: int = 0
    accumulate: int = 1
    # what early stopping watches on the validation split: "loss" (teacher-forced), or a
    # decoded metric of the task ("bleu", "wer", ...) logged by a DecodedValidation
    early_stopping_metric: str = "loss"


# decoded metrics where less is better; any other decoded metric is maximised
LOWER_IS_BETTER = frozenset({"loss", "wer", "cer", "repeated_trigrams"})


PRECISIONS = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def set_precision(mixed_precision: str | bool | None) -> None:
    """Set Keras' global dtype policy: "float16" (GPUs), "bfloat16" (TPUs, recent GPUs and
    CPUs), True for float16, None/False for float32. Logits, losses and search scores stay
    float32 whatever the policy (see the output layers and the search)."""
    if mixed_precision is True:
        mixed_precision = "float16"
    name = PRECISIONS.get(mixed_precision, mixed_precision) if mixed_precision else "float32"
    if name not in ("float32", *PRECISIONS.values()):
        raise ValueError(f"unknown precision {mixed_precision!r}; use one of {sorted(PRECISIONS)}")
    keras.mixed_precision.set_global_policy(name)


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all GPUs when there are several, else the default strategy.

    Kept for the recipes; `training.distribute.make_strategy` chooses explicitly.
    """
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam with clipping, the schedule and gradient accumulation of `config`."""
    if config.accumulate < 1:
        raise ValueError("accumulate must be at least 1")
    if config.warmup_steps < 0:
        raise ValueError("warmup_steps must be >= 0")
    learning_rate = (
        WarmupInverseSqrt(config.learning_rate, config.warmup_steps, config.accumulate)
        if config.warmup_steps
        else config.learning_rate
    )
    return Adam(  # clips the replicas' summed gradient (see training/optimizers.py)
        learning_rate,
        clipnorm=config.clipnorm,
        gradient_accumulation_steps=config.accumulate if config.accumulate > 1 else None,
    )


def compile_model(model: keras.Model, config: TrainConfig) -> None:
    """Adam (`make_optimizer`), `SequenceLoss` and token accuracy; call under the strategy."""
    jit_compile = config.jit_compile
    if jit_compile and tf.distribute.get_strategy().num_replicas_in_sync > 1:
        # Keras itself turns XLA off under tf.distribute ("auto"); the loss's
        # cross-replica token count is an all-reduce inside the step.
        warnings.warn("jit_compile (XLA) is not used with several replicas", stacklevel=2)
        jit_compile = False
    model.compile(
        optimizer=make_optimizer(config),
        loss=SequenceLoss(label_smoothing=config.label_smoothing),
        metrics=[MaskedAccuracy()],
        jit_compile=jit_compile,
    )


def fit(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    valid_ds: tf.data.Dataset | None,
    config: TrainConfig,
    verbose: int | None = None,
    *,
    logdir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    backup_dir: str | Path | None = None,
    save_freq: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    validation_decoding: keras.callbacks.Callback | None = None,
) -> keras.callbacks.History:
    """Teacher-forced training with early stopping (best weights kept) on validation loss
    or a decoded metric (`config.early_stopping_metric`).

    logdir: TensorBoard events (`train/`, `validation/`) and `training.csv`.
    checkpoint_dir: `epoch-NNNN.weights.h5` after each epoch (see `averaging`).
    backup_dir: resumable backup; if it holds one, training continues from it
    (weights, optimizer, epoch, data position, early stopping). `save_freq`: steps
    between backups (default: epoch ends only). Deleted when training finishes.
    callbacks: extra callbacks, run after ours.
    validation_decoding: a `DecodedValidation`, run before early stopping and the logging
    callbacks so its `val_<metric>` values reach them (on every worker: see its docstring).

    The model must be compiled (under the strategy's scope for distributed runs).
    The progress bar is Keras' own; when stdout is not a terminal (CI, log files)
    one line per epoch is printed instead of a redrawn bar.
    """
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    strategy = model.distribute_strategy
    chief = is_chief(strategy)
    prepare_for_strategy(model)
    if is_multi_worker(strategy):
        train_ds = shard_by_data(train_ds)
        valid_ds = shard_by_data(valid_ds) if valid_ds is not None else None

    point = None
    if backup_dir is not None:
        point = read_backup(backup_dir)
        if point is not None:
            with strategy.scope():  # optimizer slots are built as the model's variables are
                restore(model, point)
        train_ds = resume_dataset(train_ds, point)

    callback_list: list[keras.callbacks.Callback] = []
    metric = config.early_stopping_metric
    if metric != "loss" and validation_decoding is None:
        raise ValueError(
            f"early stopping on {metric!r} needs decoded validation metrics (a DecodedValidation)"
        )
    if validation_decoding is not None:  # first: early stopping and the logs read its values
        callback_list.append(validation_decoding)
    early_stopping = None
    if valid_ds is not None and config.patience > 0:
        early_stopping = keras.callbacks.EarlyStopping(
            monitor=f"val_{metric}",
            mode="min" if metric in LOWER_IS_BETTER else "max",
            patience=config.patience,
            restore_best_weights=True,
        )
        callback_list.append(early_stopping)
    if config.max_minutes:
        budget = TimeBudget(config.max_minutes, config.budget_clock)
        callback_list.append(budget)
        if validation_decoding is not None:
            validation_decoding.budget = budget
    if logdir is not None and chief:
        callback_list += logging_callbacks(logdir, append=point is not None)
    if checkpoint_dir is not None and chief:
        callback_list.append(epoch_checkpoints(checkpoint_dir))
    if backup_dir is not None:
        callback_list += [
            TrainingBackup(backup_dir, save_freq, early_stopping, resumed_from=point, write=chief),
            SkipDone(train_ds),
        ]
    callback_list += list(callbacks)
    with warnings.catch_warnings():
        # tf.data input of unknown length: Keras warns at each epoch end; that is expected.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        return model.fit(
            train_ds,
            validation_data=valid_ds,
            epochs=config.epochs,
            initial_epoch=point.epoch if point is not None else 0,
            callbacks=callback_list,
            verbose=verbose,
            shuffle=False,  # the dataset shuffles itself, seeded
        )
