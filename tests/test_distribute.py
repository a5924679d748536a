"""Distributed training equals single-device training at the same global batch.

Logical devices and multi-worker collectives must be configured before TensorFlow
runs its first op, so the distributed sides run in fresh subprocesses
(`python -c "from tests.test_distribute import ...; ..."`); their results come back
as JSON and .npz files and are compared with a one-device run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAIRS_STEP = 3  # number_pair(n) for n in range(0, 300, 3): 100 pairs
BATCH = 10
EPOCHS = 2


def run_python(code: str, env: dict | None = None) -> subprocess.Popen:
    """Start `python -c code` from the worktree (no inherited TF_CONFIG)."""
    full_env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    full_env.update({"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: int = 900) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-4000:]
    return out


def weights_of(path: Path) -> list[np.ndarray]:
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


# --- one machine, several replicas (MirroredStrategy) -------------------------------


def mirrored_run(replicas: int, out: str) -> None:
    """Train the conftest tiny GRU for two epochs on `replicas` replicas; save results.

    With replicas > 1 this must be the first TF work of the process (subprocess).
    """
    import tensorflow as tf

    if replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    import keras

    from s2s_zoo.data.pipeline import make_dataset
    from s2s_zoo.tasks.translation.numbers import number_pair
    from s2s_zoo.training.distribute import make_strategy
    from s2s_zoo.training.fit import TrainConfig, fit
    from s2s_zoo.training.losses import MaskedAccuracy, SequenceLoss
    from tests.conftest import make_tiny_inference

    if replicas > 1:
        strategy = make_strategy("mirrored", [f"/cpu:{i}" for i in range(replicas)])
    else:
        strategy = make_strategy("default")
    pairs = [number_pair(n) for n in range(0, 300, PAIRS_STEP)]
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, patience=0)
    with strategy.scope():
        inference = make_tiny_inference(pairs, seed=0)
        # Plain SGD: an R-times-too-large gradient would show in the weights (Adam is
        # invariant to the gradient's scale), and no Adam normalisation amplifies the
        # rounding of near-zero gradients of rare tokens.
        inference.model.training_model.compile(
            optimizer=keras.optimizers.SGD(0.5), loss=SequenceLoss(), metrics=[MaskedAccuracy()]
        )
    model = inference.model.training_model
    np.savez(Path(out) / f"initial-{replicas}.npz", *model.get_weights())
    history = fit(
        model, make_dataset(pairs, inference.preprocessor, BATCH, seed=0), None, config, 0
    )
    result = {"replicas": strategy.num_replicas_in_sync, "history": history.history}
    if replicas > 1:
        result["uneven"] = uneven_split_check(strategy)
    np.savez(Path(out) / f"weights-{replicas}.npz", *model.get_weights())

    # Again with a clipnorm that is active at every step: Keras alone would clip each
    # replica's half of the gradient; training.optimizers clips their sum.
    from s2s_zoo.training.optimizers import ClipAfterAllReduce

    class ClippedSGD(ClipAfterAllReduce, keras.optimizers.SGD):
        pass

    with strategy.scope():
        inference = make_tiny_inference(pairs, seed=0)
        inference.model.training_model.compile(
            optimizer=ClippedSGD(0.5, clipnorm=0.05), loss=SequenceLoss(),
            metrics=[MaskedAccuracy()],
        )  # fmt: skip
    model = inference.model.training_model
    clipped = fit(
        model, make_dataset(pairs, inference.preprocessor, BATCH, seed=0), None, config, 0
    )
    result["clipped_history"] = clipped.history
    np.savez(Path(out) / f"clipped-{replicas}.npz", *model.get_weights())

    # The recipes' own optimizer: Adam with clipping, whose embedding gradients are
    # IndexedSlices (the all-reduce before clipping must keep them sparse-updatable).
    from s2s_zoo.training.optimizers import Adam

    with strategy.scope():
        inference = make_tiny_inference(pairs, seed=0)
        inference.model.training_model.compile(
            optimizer=Adam(0.01, clipnorm=0.05), loss=SequenceLoss(), metrics=[MaskedAccuracy()]
        )
    model = inference.model.training_model
    adam = fit(model, make_dataset(pairs, inference.preprocessor, BATCH, seed=0), None, config, 0)
    result["adam_history"] = adam.history
    np.savez(Path(out) / f"adam-{replicas}.npz", *model.get_weights())
    (Path(out) / f"result-{replicas}.json").write_text(json.dumps(result))


def uneven_split_check(strategy) -> dict:
    """SequenceLoss on a 3-row batch split 2 + 1 over two replicas vs on one device."""
    import tensorflow as tf

    from s2s_zoo.training.losses import SequenceLoss

    loss = SequenceLoss(label_smoothing=0.1)
    y = np.array([[3, 4, 5, 0], [6, 2, 0, 0], [1, 1, 1, 1]], np.int32)
    logits = np.random.default_rng(0).normal(size=(3, 4, 7)).astype(np.float32)

    def value_and_grad(y_part, logits_part):
        with tf.GradientTape() as tape:
            tape.watch(logits_part)
            value = loss(y_part, logits_part)
        return value, tape.gradient(value, logits_part)

    single_value, single_grad = value_and_grad(tf.constant(y), tf.constant(logits))
    rows = [slice(0, 2), slice(2, 3)]

    def part(array):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(array[rows[ctx.replica_id_in_sync_group]])
        )

    values, grads = strategy.run(value_and_grad, args=(part(y), part(logits)))
    local_values = [float(v) for v in strategy.experimental_local_results(values)]
    local_grads = [g.numpy() for g in strategy.experimental_local_results(grads)]
    return {
        "single": float(single_value),
        "replica_values": local_values,
        "grad_error": float(np.abs(np.concatenate(local_grads) - single_grad.numpy()).max()),
        "grad_scale": float(np.abs(single_grad.numpy()).max()),
    }


def test_two_replicas_train_like_one(tmp_path):
    two = run_python(
        f"from tests.test_distribute import mirrored_run; mirrored_run(2, {str(tmp_path)!r})"
    )
    mirrored_run(1, str(tmp_path))  # meanwhile, in this process
    finish(two)
    one_result = json.loads((tmp_path / "result-1.json").read_text())
    two_result = json.loads((tmp_path / "result-2.json").read_text())
    assert (one_result["replicas"], two_result["replicas"]) == (1, 2)
    # Same reported loss and token accuracy each epoch (the old per-replica
    # normalisation reported twice the loss and took steps twice as large).
    for key in ("loss", "token_accuracy"):
        np.testing.assert_allclose(
            two_result["history"][key], one_result["history"][key], rtol=1e-5
        )
    one, two_w = weights_of(tmp_path / "weights-1.npz"), weights_of(tmp_path / "weights-2.npz")
    assert len(one) == len(two_w) > 0
    moved = max(
        np.abs(b - a).max()
        for a, b in zip(one, weights_of(tmp_path / "initial-1.npz"), strict=True)
    )
    assert moved > 0.05  # training did move the weights
    for a, b in zip(one, two_w, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    # With active clipping too: same loss, same weights, and clipping did change them.
    np.testing.assert_allclose(
        two_result["clipped_history"]["loss"], one_result["clipped_history"]["loss"], rtol=1e-5
    )
    clipped_one = weights_of(tmp_path / "clipped-1.npz")
    clipped_two = weights_of(tmp_path / "clipped-2.npz")
    assert max(np.abs(a - b).max() for a, b in zip(one, clipped_one, strict=True)) > 0.05
    for a, b in zip(clipped_one, clipped_two, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    # Adam + clipping + embeddings: the sparse (IndexedSlices) path through the all-reduce
    # before clipping runs and trains alike: the same losses, the same weights up to Adam's
    # amplified rounding of near-zero gradients. Adam normalises the gradient's scale, so
    # this does not show where clipping applied (the SGD run above does).
    np.testing.assert_allclose(
        two_result["adam_history"]["loss"], one_result["adam_history"]["loss"], rtol=1e-4
    )
    adam_one, adam_two = weights_of(tmp_path / "adam-1.npz"), weights_of(tmp_path / "adam-2.npz")
    initial = weights_of(tmp_path / "initial-1.npz")
    assert max(np.abs(a - b).max() for a, b in zip(initial, adam_one, strict=True)) > 0.01
    for a, b in zip(adam_one, adam_two, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-3)
    # An uneven split (2 rows + 1 row): each replica reports global mean / 2 and the
    # replicas' gradients together are the one-device gradient of the global mean.
    uneven = two_result["uneven"]
    assert uneven["replica_values"] == pytest.approx([uneven["single"] / 2] * 2, rel=1e-6)
    assert uneven["grad_error"] <= 1e-6 * uneven["grad_scale"]


# --- several workers (MultiWorkerMirroredStrategy) ----------------------------------


def tiny_lm(pre):
    """A model with the training view's inputs/outputs, much cheaper than a GRU."""
    import keras

    source = keras.Input((None,), dtype="int32")
    target_in = keras.Input((None,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(pre.source_vocab_size, 8)(source)
    )
    hidden = keras.layers.Embedding(pre.target_vocab_size, 8)(target_in)
    hidden = keras.layers.Add()([hidden, keras.layers.Reshape((1, 8))(pooled)])
    logits = keras.layers.Dense(pre.target_vocab_size)(keras.layers.Dense(16, "tanh")(hidden))
    return keras.Model([source, target_in], logits)


def multi_worker_run(mode: str, out: str) -> None:
    """mode "worker": one task of the TF_CONFIG cluster; "single": one process."""
    from s2s_zoo.training.distribute import is_chief, make_strategy

    strategy = make_strategy("multi_worker" if mode == "worker" else "default")
    import keras

    from s2s_zoo.data.pipeline import make_dataset
    from s2s_zoo.data.preprocessor import TextPreprocessor
    from s2s_zoo.data.tokenizer import train_sentencepiece
    from s2s_zoo.tasks.translation.numbers import number_pair
    from s2s_zoo.training.fit import TrainConfig, compile_model, fit

    pairs = [number_pair(n) for n in range(0, 400, 5)]
    valid = [number_pair(n) for n in range(1, 60, 7)]
    pre = TextPreprocessor(
        train_sentencepiece([s for s, _ in pairs], 60),
        train_sentencepiece([t for _, t in pairs], 60),
        max_source_length=24,
        max_target_length=24,
    )
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-2, patience=5)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = tiny_lm(pre)
        compile_model(model, config)
    tag = mode + os.environ.get("TEST_TASK", "")
    history = fit(
        model,
        make_dataset(pairs, pre, 8, seed=0),
        make_dataset(valid, pre, 8, shuffle=False),
        config,
        0,
        logdir=Path(out) / f"logs-{tag}",
        checkpoint_dir=Path(out) / f"checkpoints-{tag}",
        # shared by the workers, as on a cluster file system; only the chief writes
        backup_dir=Path(out) / ("backup-" + mode),
        save_freq=3,
    )
    result = {"chief": is_chief(strategy), "history": history.history}
    np.savez(Path(out) / f"weights-{tag}.npz", *model.get_weights())
    (Path(out) / f"result-{tag}.json").write_text(json.dumps(result))


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_like_one_process(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    code = "from tests.test_distribute import multi_worker_run; multi_worker_run(%r, %r)"
    processes = [
        run_python(
            code % ("worker", str(tmp_path)),
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
                ),
                "TEST_TASK": str(i),
            },
        )
        for i in range(2)
    ]
    processes.append(run_python(code % ("single", str(tmp_path))))
    for process in processes:
        finish(process)
    results = {
        t: json.loads((tmp_path / f"result-{t}.json").read_text())
        for t in ("worker0", "worker1", "single")
    }
    assert [results[t]["chief"] for t in ("worker0", "worker1", "single")] == [True, False, True]
    single = weights_of(tmp_path / "weights-single.npz")
    w0, w1 = (
        weights_of(tmp_path / "weights-worker0.npz"),
        weights_of(tmp_path / "weights-worker1.npz"),
    )
    for a, b, c in zip(single, w0, w1, strict=True):
        np.testing.assert_array_equal(b, c)  # the workers hold one model
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-6)
    for key in ("loss", "val_loss", "token_accuracy"):
        np.testing.assert_allclose(
            results["worker0"]["history"][key], results["single"]["history"][key], rtol=1e-5
        )
    # Only the chief writes logs and checkpoints.
    assert (tmp_path / "logs-worker0" / "training.csv").exists()
    assert len(list((tmp_path / "checkpoints-worker0").glob("*.weights.h5"))) == 2
    assert not (tmp_path / "logs-worker1").exists()
    assert not (tmp_path / "checkpoints-worker1").exists()


# --- fast unit checks ---------------------------------------------------------------


def test_make_strategy_rejects_bad_names_and_config(monkeypatch):
    import tensorflow as tf

    from s2s_zoo.training.distribute import is_chief, make_strategy

    assert make_strategy("default") is tf.distribute.get_strategy()
    assert is_chief(make_strategy("default"))
    with pytest.raises(ValueError, match="unknown strategy 'horovod'"):
        make_strategy("horovod")
    with pytest.raises(ValueError, match="devices only apply"):
        make_strategy("default", ["/cpu:0"])
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": []}}')
    with pytest.raises(ValueError, match="TF_CONFIG: not a cluster/task"):
        make_strategy("multi_worker")


def test_mirrored_on_one_device_is_one_replica():
    from s2s_zoo.training.distribute import is_chief, make_strategy

    strategy = make_strategy("mirrored", ["/cpu:0"])
    assert strategy.num_replicas_in_sync == 1
    assert is_chief(strategy)


def test_shard_by_data_sets_the_data_policy():
    import tensorflow as tf

    from s2s_zoo.training.distribute import shard_by_data

    ds = shard_by_data(tf.data.Dataset.range(4))
    policy = ds.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
    assert list(ds.as_numpy_iterator()) == [0, 1, 2, 3]
