"""Resumable training: backups, data position, and a run killed with SIGKILL.

The kill test trains in subprocesses with op determinism on; the resumed run must
end on exactly the weights (and optimizer step) of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.training.fit import TrainConfig, fit
from s2s_zoo.training.resume import (
    STATE,
    ResumePoint,
    SkipDone,
    TrainingBackup,
    read_backup,
    resume_dataset,
)
from s2s_zoo.training.schedules import WarmupInverseSqrt

ROOT = Path(__file__).resolve().parents[1]


def batches(ds) -> list[list[int]]:
    return [b.numpy().tolist() for b in ds]


def shuffled(seed: int = 3) -> tf.data.Dataset:
    return tf.data.Dataset.range(10).shuffle(10, seed=seed, reshuffle_each_iteration=True).batch(3)


def test_resume_dataset_continues_the_epoch_order():
    reference = shuffled()
    epochs = [batches(reference) for _ in range(4)]
    assert epochs[0] != epochs[1]  # the order does change per epoch
    point = ResumePoint(epoch=2, batch=1, weights=Path("-"), epoch_batches=4)
    resumed = resume_dataset(shuffled(), point)
    assert int(resumed.cardinality()) == 5  # what Keras infers for 4-batch epochs
    assert batches(resumed) == epochs[2][1:]
    SkipDone(resumed).on_epoch_end(2)
    assert batches(resumed) == epochs[3]
    at_epoch_start = resume_dataset(shuffled(), ResumePoint(epoch=1, batch=0, weights=Path("-")))
    assert batches(at_epoch_start) == epochs[1]
    fresh = resume_dataset(shuffled(), None)
    assert [batches(fresh) for _ in range(2)] == epochs[:2]
    # Killed in the first epoch: no epoch length known yet, so one no epoch reaches.
    first = resume_dataset(shuffled(), ResumePoint(epoch=0, batch=2, weights=Path("-")))
    assert int(first.cardinality()) > 10**15
    assert batches(first) == epochs[0][2:]


def test_read_backup_errors_name_the_file(tmp_path):
    assert read_backup(tmp_path) is None
    (tmp_path / STATE).write_text("{not json")
    with pytest.raises(ValueError, match=rf"{STATE}: not a training backup state"):
        read_backup(tmp_path)
    (tmp_path / STATE).write_text(json.dumps({"epoch": 1, "batch": 0, "weights": "gone.h5"}))
    with pytest.raises(ValueError, match="names gone.h5, which is missing"):
        read_backup(tmp_path)


def regression_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    return x, y


def linear_model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    # dropout: its random stream must continue across a resume too
    dropout = keras.layers.Dropout(0.3, seed=3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), dropout,
                              keras.layers.Dense(1)])  # fmt: skip
    model.compile(keras.optimizers.Adam(WarmupInverseSqrt(0.05, 5)), "mse")
    return model


def train_ds():
    """Shuffled batches of unknown length, like `make_dataset`'s (bucketing hides it).

    The shuffle order depends on the global seed too; a recipe sets it at start.
    """
    tf.random.set_seed(0)
    x, y = regression_data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(40, seed=7).batch(6)
    return ds.filter(lambda x, y: True)


def valid_ds():
    x, y = regression_data(1)
    return tf.data.Dataset.from_tensor_slices((x[:12], y[:12])).batch(6)


class Crash(keras.callbacks.Callback):
    """Raise once `at` batches of the run are done (a crash: no on_train_end)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.seen += 1
        if self.seen == self.at:
            raise RuntimeError("crash")


def test_crashed_fit_resumes_to_the_uninterrupted_weights(tmp_path):
    config = TrainConfig(epochs=4, patience=3)
    reference = linear_model()
    fit(reference, train_ds(), valid_ds(), config, 0)

    crashed = linear_model()
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="crash"):
        # 7 batches per epoch; a backup every 2 steps and at each epoch end: the
        # last one before the crash after step 12 is written as step 12 starts
        # (epoch 1, 4 batches done).
        fit(
            crashed,
            train_ds(),
            valid_ds(),
            config,
            0,
            backup_dir=backup,
            save_freq=2,
            callbacks=[Crash(12)],
        )
    point = read_backup(backup)
    assert (point.epoch, point.batch) == (1, 4)
    assert point.early_stopping["best"] is not None  # epoch 0 was validated

    resumed = linear_model(seed=99)  # other initial weights: all state comes from the backup
    history = fit(resumed, train_ds(), valid_ds(), config, 0, backup_dir=backup, save_freq=2)
    assert len(history.history["loss"]) == 3  # epochs 1, 2, 3
    # 28 batches; Keras also counts one optimizer iteration at each epoch's failed
    # read past the end of an unknown-length dataset, in both runs alike.
    assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations) == 32
    for a, b in zip(reference.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)
    np.testing.assert_allclose(
        history.history["val_loss"][-1], reference.history.history["val_loss"][-1], rtol=1e-6
    )
    assert not backup.exists()  # a finished run removes its backup and the folder it made


def test_backup_files_are_replaced_and_early_stopping_restored(tmp_path):
    model = linear_model()
    stopper = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    backup = TrainingBackup(tmp_path, save_freq=3, early_stopping=stopper, keep=True)
    model.fit(
        train_ds(), validation_data=valid_ds(), epochs=2, verbose=0, callbacks=[stopper, backup]
    )
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len([f for f in files if f.endswith(".weights.h5")]) == 1  # older ones deleted
    assert len([f for f in files if f.endswith(".best.npz")]) == 1
    point = read_backup(tmp_path)
    assert (point.epoch, point.batch) == (2, 0)

    fresh = linear_model(seed=5)
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(point.weights)
    assert int(fresh.optimizer.iterations) == 16  # 2 x (7 batches + 1 end-of-data call)
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    new_stopper = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    resumed = TrainingBackup(tmp_path, early_stopping=new_stopper, resumed_from=point)
    new_stopper.on_train_begin()  # resets it ...
    resumed.on_train_begin()  # ... then the backup's state is put back
    assert new_stopper.best == stopper.best
    assert (new_stopper.wait, new_stopper.best_epoch) == (stopper.wait, stopper.best_epoch)
    for a, b in zip(stopper.best_weights, new_stopper.best_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_freq_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        TrainingBackup(tmp_path, save_freq=0)


# --- kill -9 ------------------------------------------------------------------------


class Pace(keras.callbacks.Callback):
    """Slow each batch down so the test can kill the run mid-epoch."""

    def on_train_batch_end(self, batch, logs=None) -> None:
        time.sleep(0.2)


def kill_run(out: str, backup: str, paced: bool) -> None:
    """Train the conftest tiny GRU deterministically; write weights and step."""
    tf.config.experimental.enable_op_determinism()
    from s2s_zoo.data.pipeline import make_dataset
    from s2s_zoo.tasks.translation.numbers import number_pair
    from s2s_zoo.training.fit import compile_model
    from tests.conftest import make_tiny_inference

    pairs = [number_pair(n) for n in range(0, 240, 3)]
    valid = [number_pair(n) for n in range(1, 50, 5)]
    inference = make_tiny_inference(pairs, seed=0)
    config = TrainConfig(epochs=3, batch_size=10, learning_rate=1e-2, patience=2, warmup_steps=5)
    model = inference.model.training_model
    compile_model(model, config)
    history = fit(
        model,
        make_dataset(pairs, inference.preprocessor, 10, seed=0),
        make_dataset(valid, inference.preprocessor, 10, shuffle=False),
        config,
        0,
        backup_dir=backup or None,
        save_freq=2,
        callbacks=[Pace()] if paced else [],
    )
    np.savez(Path(out) / "weights.npz", *model.get_weights())
    result = {"iterations": int(model.optimizer.iterations), "history": history.history}
    (Path(out) / "result.json").write_text(json.dumps(result))


def start(out: Path, backup: Path | None, paced: bool) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    args = f"{str(out)!r}, {str(backup or '')!r}, {paced}"
    code = f"from tests.test_resume import kill_run; kill_run({args})"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-4000:]


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    backup = tmp_path / "backup"
    uninterrupted = start(tmp_path / "uninterrupted", None, paced=False)
    victim = start(tmp_path / "killed", backup, paced=True)
    point = None
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and victim.poll() is None:
        try:
            point = read_backup(backup)
        except (ValueError, OSError):  # pragma: no cover - between os.replace and unlink
            point = None
        if point is not None and point.epoch >= 1 and point.batch > 0:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "the run ended before a mid-epoch backup"
    point = read_backup(backup)  # the backup survived the kill
    assert point is not None and point.epoch >= 1

    finish(start(tmp_path / "resumed", backup, paced=False))
    finish(uninterrupted)
    ref = json.loads((tmp_path / "uninterrupted" / "result.json").read_text())
    got = json.loads((tmp_path / "resumed" / "result.json").read_text())
    assert got["iterations"] == ref["iterations"]
    assert len(got["history"]["loss"]) == 3 - point.epoch
    assert got["history"]["val_loss"] == ref["history"]["val_loss"][point.epoch :]
    with np.load(tmp_path / "uninterrupted" / "weights.npz") as a:
        with np.load(tmp_path / "resumed" / "weights.npz") as b:
            for name in a.files:
                np.testing.assert_array_equal(b[name], a[name])
    assert not backup.exists() or not list(backup.iterdir())
