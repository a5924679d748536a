"""Resume a `fit` killed at any moment (even `kill -9`) where its last backup left off.

Why not `keras.callbacks.BackupAndRestore`: in Keras 3.15 it restores weights,
optimizer and the epoch number, but a run killed mid-epoch restarts that epoch from
its first batch (the saved batch index is never read), and a kill while it writes
leaves a half-written file under the fixed name it loads. Here:

- a backup is a weights file (model + optimizer state, so the step counter and
  Adam moments continue) plus `state.json` naming it, with the epoch, the number of
  batches done in that epoch and the early-stopping state. Each backup writes a new
  weights file and then replaces `state.json` atomically, so whatever instant the
  process dies, `state.json` names a complete backup;
- the data position continues: `resume_dataset` advances a reshuffling dataset past
  the epochs already done (each `iter()` of a seeded `shuffle(...,
  reshuffle_each_iteration=True)` draws the next epoch's order) and skips the
  batches already done in the interrupted epoch. With the same seed and
  `tf.config.experimental.enable_op_determinism()` the resumed run ends on the
  weights of an uninterrupted one;
- step backups are written at the *start* of the next batch (the same state as the
  end of the previous one), so a backup never points at the end of an epoch: the
  epoch-end backup, written after validation, covers that.

Keras detail this relies on: for a dataset of unknown length Keras takes the length
of the *first* epoch of a `fit` call (plus one) as the length of every later epoch,
so a short first epoch (the rest of the interrupted one) would truncate the others.
The resumed dataset therefore reports a length (`cardinality`) of the full epoch
plus one, which is what Keras infers in an uninterrupted run; an exact length
would make Keras open an extra iterator per epoch and so change the shuffle order.
A run killed during its first epoch has no complete epoch to measure, so it
reports a length no epoch reaches (only Keras' progress-bar total shows it).

Limits: the rerun must build the dataset with the same global and shuffle seeds;
the train loss/accuracy logged for the resumed epoch cover only its batches after
the resume (metric totals are not backed up). With backups, `fit` always trains on
the wrapper, so a dataset of known length is seen as one of unknown length (as
`make_dataset`'s always is): Keras then ends each epoch with one failed read,
which still counts one optimizer iteration (measured, Keras 3.15) in every run
alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

STATE = "state.json"
_UNKNOWN_EPOCH_LENGTH = 2**62  # longer than any epoch: Keras then ends epochs at end of data


@dataclass(frozen=True)
class ResumePoint:
    """Where a backup says training stopped."""

    epoch: int  # epochs fully done
    batch: int  # batches done in epoch `epoch`
    weights: Path
    early_stopping: dict | None = None
    epoch_batches: int | None = None  # batches in a full epoch, once one has been seen
    seed_states: list | None = None  # the seed generators' states (see `seed_states`)


def read_backup(backup_dir: str | Path) -> ResumePoint | None:
    """The last complete backup in `backup_dir`, or None if there is none."""
    state_path = Path(backup_dir) / STATE
    if not state_path.exists():
        return None
    try:
        state = json.loads(state_path.read_text())
        point = ResumePoint(
            epoch=int(state["epoch"]),
            batch=int(state["batch"]),
            weights=Path(backup_dir) / state["weights"],
            early_stopping=state.get("early_stopping"),
            epoch_batches=state.get("epoch_batches"),
            seed_states=state.get("seed_states"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{state_path}: not a training backup state ({error!r})") from None
    if not point.weights.exists():
        raise ValueError(f"{state_path}: names {point.weights.name}, which is missing")
    return point


def restore(model: keras.Model, point: ResumePoint) -> None:
    """Load a backup's model, optimizer and random state into a compiled, built `model`."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(point.weights)
    states = seed_states(model)
    if point.seed_states is not None:
        if len(point.seed_states) != len(states):
            raise ValueError(
                f"the backup has {len(point.seed_states)} random-seed states, the model "
                f"{len(states)}: it was written for another model"
            )
        for variable, value in zip(states, point.seed_states, strict=True):
            variable.assign(np.asarray(value, variable.dtype))


def seed_states(model: keras.Model) -> list:
    """The state variables of the model's random seed generators (dropout masks).

    `save_weights` leaves them out, so a resumed run would draw the dropout masks of
    a fresh start; backups store them to continue the very same random stream.
    """
    return [
        generator.state
        for layer in model._flatten_layers(include_self=True)
        for generator in getattr(layer, "_seed_generators", [])
    ]


def resume_dataset(dataset: tf.data.Dataset, point: ResumePoint | None) -> tf.data.Dataset:
    """`dataset` wrapped to resume at `point` (None: from the start); call just before `fit`.

    Advances its shuffle order past `point.epoch` epochs (one `iter()` each); the
    wrapper's next iteration skips `point.batch` batches and later iterations are
    the plain epochs (the skip count is a variable that `SkipDone` zeroes after the
    first epoch). Runs with backups always train on the wrapper, so a resumed run
    and an uninterrupted one draw their iterators alike: one per epoch, made when
    the epoch's first batch is read (also for datasets of known length, on which
    Keras would otherwise open a spare iterator at each epoch end).
    """
    done_epochs, skip_batches = (point.epoch, point.batch) if point is not None else (0, 0)
    for _ in range(done_epochs):
        iter(dataset)  # draws the next reshuffle seed; reads no data
    skip = tf.Variable(skip_batches, dtype=tf.int64, trainable=False, name="resume_skip")
    wrapped = tf.data.Dataset.range(1).flat_map(lambda _: dataset.skip(skip))
    wrapped = wrapped.with_options(dataset.options())
    wrapped._s2s_zoo_resume_skip = skip  # kept alive with the dataset; zeroed by SkipDone
    if skip_batches:
        # The epoch length Keras would have inferred (see the module docstring).
        length = point.epoch_batches + 1 if point.epoch_batches else _UNKNOWN_EPOCH_LENGTH
        wrapped.cardinality = lambda: tf.constant(length, tf.int64)
    return wrapped


class SkipDone(keras.callbacks.Callback):
    """Zero a resumed dataset's skip count once the interrupted epoch is finished."""

    def __init__(self, dataset: tf.data.Dataset) -> None:
        super().__init__()
        self.skip = getattr(dataset, "_s2s_zoo_resume_skip", None)

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self.skip is not None:
            self.skip.assign(0)


class TrainingBackup(keras.callbacks.Callback):
    """Back up model, optimizer, position and early stopping; see the module docstring.

    `save_freq`: steps between backups (None: only at epoch ends; epoch ends always
    back up). `write=False` on non-chief workers (they restore, never write).
    `keep=True` leaves the last backup when training finishes (default: deleted,
    so the next run starts afresh).
    """

    def __init__(
        self,
        backup_dir: str | Path,
        save_freq: int | None = None,
        early_stopping: keras.callbacks.EarlyStopping | None = None,
        resumed_from: ResumePoint | None = None,
        write: bool = True,
        keep: bool = False,
    ) -> None:
        super().__init__()
        if save_freq is not None and save_freq < 1:
            raise ValueError("save_freq must be a positive number of steps (or None)")
        self.backup_dir = Path(backup_dir)
        self.save_freq = save_freq
        self.early_stopping = early_stopping
        self.resumed_from = resumed_from
        self.write = write
        self.keep = keep
        self._epoch = 0
        self._done_in_epoch = 0
        self._since_backup = 0
        self._due = False
        self._epoch_batches = resumed_from.epoch_batches if resumed_from is not None else None

    def on_train_begin(self, logs=None) -> None:
        point = self.resumed_from
        if point is not None and point.early_stopping and self.early_stopping is not None:
            # Runs after EarlyStopping.on_train_begin reset it (it is earlier in the list).
            _set_early_stopping_state(self.early_stopping, point, self.backup_dir)

    def on_epoch_begin(self, epoch, logs=None) -> None:
        point = self.resumed_from
        self._epoch = epoch
        self._done_in_epoch = point.batch if point is not None and epoch == point.epoch else 0

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self._due:
            self._save(self._epoch, self._done_in_epoch)

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._done_in_epoch += 1
        self._since_backup += 1
        self._due = self.save_freq is not None and self._since_backup >= self.save_freq

    def on_epoch_end(self, epoch, logs=None) -> None:
        self._epoch_batches = self._done_in_epoch
        self._save(epoch + 1, 0)

    def on_train_end(self, logs=None) -> None:
        if self.write and not self.keep:
            for path in self.backup_dir.glob("backup-*"):
                path.unlink()
            (self.backup_dir / STATE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # leave the folder only if others' files are in it
                self.backup_dir.rmdir()

    def _save(self, epoch: int, batch: int) -> None:
        self._due = False
        self._since_backup = 0
        if not self.write:
            return
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        weights = f"backup-{tag}.weights.h5"
        self.model.save_weights(self.backup_dir / weights)
        state: dict = {
            "epoch": epoch,
            "batch": batch,
            "weights": weights,
            "epoch_batches": self._epoch_batches,
            "seed_states": [v.numpy().tolist() for v in seed_states(self.model)],
        }
        if self.early_stopping is not None:
            state["early_stopping"] = _early_stopping_state(
                self.early_stopping, self.backup_dir, f"backup-{tag}.best.npz"
            )
        tmp = self.backup_dir / f".{STATE}.{tag}"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.backup_dir / STATE)  # the commit point
        keep = {weights, state.get("early_stopping", {}).get("best_weights")}
        for path in self.backup_dir.glob("backup-*"):
            if path.name not in keep:
                path.unlink()


def _early_stopping_state(callback: keras.callbacks.EarlyStopping, directory: Path, name: str):
    state = {
        "monitor": callback.monitor,  # its mode follows from it (training.fit)
        "wait": int(callback.wait),
        "best": None if callback.best is None else float(callback.best),
        "best_epoch": int(callback.best_epoch),
        "best_weights": None,
    }
    if callback.best_weights is not None:
        np.savez(directory / name, *callback.best_weights)
        state["best_weights"] = name
    return state


def _set_early_stopping_state(
    callback: keras.callbacks.EarlyStopping, point: ResumePoint, directory: Path
) -> None:
    state = point.early_stopping or {}
    if state.get("monitor", callback.monitor) != callback.monitor:
        # the resumed run watches another value (e.g. --early-stopping-metric changed):
        # a loss is no best for BLEU, so its early stopping starts afresh
        print(
            f"Early stopping now follows {callback.monitor} (the backup followed "
            f"{state['monitor']}): its best value and patience start afresh"
        )
        return
    callback.wait = state["wait"]
    callback.best = state["best"]
    callback.best_epoch = state["best_epoch"]
    if state.get("best_weights"):
        with np.load(directory / state["best_weights"]) as arrays:
            callback.best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
