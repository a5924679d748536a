"""fit(logdir=...): a CSV row per epoch, TensorBoard scalars and the train-step graph."""

from __future__ import annotations

import csv

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.tasks.translation.numbers import number_pair
from s2s_zoo.tasks.translation.task import TranslationTask
from s2s_zoo.training.callbacks import CSV_NAME
from s2s_zoo.training.fit import TrainConfig, compile_model, fit
from s2s_zoo.training.runner import decoded_validation
from tests.conftest import make_tiny_inference

pytest.importorskip("tensorboard")


def events(directory) -> tuple[set[tuple[str, int]], list]:
    tags, values = set(), []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.add((value.tag, event.step))
                values.append(value)
    return tags, values


def test_csv_tensorboard_and_checkpoints(tmp_path):
    pairs = [number_pair(n) for n in range(0, 120, 3)]
    inference = make_tiny_inference(pairs, seed=0)
    config = TrainConfig(epochs=2, batch_size=16, warmup_steps=3, patience=0)
    model = inference.model.training_model
    compile_model(model, config)
    task = TranslationTask()
    valid = pairs[:16]
    history = fit(
        model,
        make_dataset(pairs, inference.preprocessor, 16),
        make_dataset(pairs[:16], inference.preprocessor, 16, shuffle=False),
        config,
        0,
        logdir=tmp_path / "logs",
        checkpoint_dir=tmp_path / "checkpoints",
        validation_decoding=decoded_validation(inference, task, valid, 10),
    )
    with open(tmp_path / "logs" / CSV_NAME) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    keys = ("loss", "token_accuracy", "val_loss", "val_token_accuracy", "learning_rate")
    for key in (*keys, "val_bleu", "val_exact_match"):
        assert [float(r[key]) for r in rows] == pytest.approx(history.history[key], rel=1e-6)
    # the last epoch's decoded metrics are the task's score of greedy search on the first
    # 10 validation sources with the final weights
    sources = [s for s, _ in valid[:10]]
    hyps = [o.decode() for o in inference.greedy(tf.constant(sources))["outputs"].numpy()]
    want = task.score(hyps, [[t] for _, t in valid[:10]])
    assert float(rows[-1]["val_bleu"]) == pytest.approx(want["bleu"], rel=1e-6)
    assert float(rows[-1]["val_exact_match"]) == pytest.approx(want["exact_match"])
    # The learning rate is the schedule's at the optimizer's step after each epoch.
    schedule = model.optimizer._learning_rate
    assert float(rows[-1]["learning_rate"]) == pytest.approx(
        float(schedule(model.optimizer.iterations)), rel=1e-6
    )

    train_tags, train_values = events(tmp_path / "logs" / "train")
    for tag in ("epoch_loss", "epoch_token_accuracy", "epoch_learning_rate"):
        assert {(tag, 0), (tag, 1)} <= train_tags
    valid_tags, _ = events(tmp_path / "logs" / "validation")
    assert {
        ("epoch_loss", 0),
        ("epoch_loss", 1),
        ("epoch_bleu", 0),
        ("epoch_bleu", 1),
    } <= valid_tags
    # The traced train step: its run metadata holds Keras' one_step_on_data function.
    graph = [v for v in train_values if v.tag == "train_step"]
    assert len(graph) == 1
    metadata = config_pb2.RunMetadata()
    metadata.ParseFromString(tf.make_ndarray(graph[0].tensor).item())
    functions = {
        f.signature.name
        for g in metadata.function_graphs
        for f in g.pre_optimization_graph.library.function
    }
    assert any("one_step_on_data" in name for name in functions)

    saved = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert saved == ["epoch-0001.weights.h5", "epoch-0002.weights.h5"]
