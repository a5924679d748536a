"""fit(logdir=...): a CSV row per epoch, TensorBoard scalars and the train-step graph."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.tasks.translation.numbers import number_pair
from s2s_zoo.tasks.translation.task import TranslationTask
from s2s_zoo.training.callbacks import CSV_NAME
from s2s_zoo.training.fit import TimeBudget, TrainConfig, compile_model, fit
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
    decoded = decoded_validation(inference, task, valid, 10)
    seen = []  # per epoch: the hypotheses and a checksum of the weights they came from
    decode = decoded.decode

    def recording_decode():
        seen.append((decode(), sum(float(w.numpy().sum()) for w in model.weights)))
        return seen[-1][0]

    decoded.decode = recording_decode
    history = fit(
        model,
        make_dataset(pairs, inference.preprocessor, 16),
        make_dataset(pairs[:16], inference.preprocessor, 16, shuffle=False),
        config,
        0,
        logdir=tmp_path / "logs",
        checkpoint_dir=tmp_path / "checkpoints",
        validation_decoding=decoded,
    )
    with open(tmp_path / "logs" / CSV_NAME) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    keys = ("loss", "token_accuracy", "val_loss", "val_token_accuracy", "learning_rate")
    for key in (*keys, "val_bleu", "val_exact_match"):
        assert [float(r[key]) for r in rows] == pytest.approx(history.history[key], rel=1e-6)
    # each epoch's decoded metrics score that epoch's hypotheses of the 10 sampled sources,
    # decoded with that epoch's weights: the last ones with the final weights
    assert len(decoded.sources) == 10 and len(seen) == 2
    assert seen[0][1] != seen[1][1]  # the weights moved between the two decodes
    final = sum(float(w.numpy().sum()) for w in model.weights)
    assert seen[1][1] == pytest.approx(final, rel=1e-9)
    for row, (hyps, _) in zip(rows, seen, strict=True):
        want = task.score(hyps, decoded.references)
        assert float(row["val_bleu"]) == pytest.approx(want["bleu"], rel=1e-6)
        assert float(row["val_exact_match"]) == pytest.approx(want["exact_match"])
    fresh = inference.greedy(tf.constant(decoded.sources))["outputs"].numpy()
    assert [o.decode() for o in fresh] == seen[1][0]
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


def test_early_stopping_on_a_decoded_metric_keeps_the_best_epoch(tmp_path):
    """exact_match decoded as 1.0 then 0.5: patience 1 stops after the second epoch and
    restores the first epoch's weights (a metric maximised, unlike the loss)."""
    from s2s_zoo.training.callbacks import DecodedValidation

    pairs = [number_pair(n) for n in range(0, 120, 3)]
    inference = make_tiny_inference(pairs, seed=0)
    config = TrainConfig(epochs=4, batch_size=16, patience=1, early_stopping_metric="exact_match")
    model = inference.model.training_model
    compile_model(model, config)
    answers = iter([["a", "b"], ["a", "x"], ["x", "x"], ["x", "x"]])
    weights_seen = []

    def decode():
        weights_seen.append([w.numpy().copy() for w in model.weights])
        return next(answers)

    callback = DecodedValidation(
        decode,
        lambda s, h, r: {"exact_match": sum(a in b for a, b in zip(h, r, strict=True)) / 2},
        ["s1", "s2"],
        [["a"], ["b"]],
    )
    history = fit(
        model,
        make_dataset(pairs, inference.preprocessor, 16),
        make_dataset(pairs[:16], inference.preprocessor, 16, shuffle=False),
        config,
        0,
        validation_decoding=callback,
    )
    assert history.history["val_exact_match"] == [1.0, 0.5]  # no better: stopped
    for restored, best in zip(model.weights, weights_seen[0], strict=True):
        np.testing.assert_array_equal(restored.numpy(), best)


def test_decoded_metric_without_decoding_is_refused():
    pairs = [number_pair(n) for n in range(10)]
    inference = make_tiny_inference(pairs, seed=0)
    config = TrainConfig(epochs=1, batch_size=4, early_stopping_metric="bleu")
    compile_model(inference.model.training_model, config)
    with pytest.raises(ValueError, match="needs decoded validation metrics"):
        fit(inference.model.training_model, make_dataset(pairs, inference.preprocessor, 4),
            None, config, 0)  # fmt: skip


def test_time_budget_does_not_count_a_pause():
    budget = TimeBudget(minutes=1.0)
    clock = iter([0.0, 50.0, 80.0, 100.0])
    budget.now = lambda: next(clock)
    budget.on_train_begin()  # t = 0
    budget.pause()  # t = 50
    budget.resume()  # t = 80: 30 s of pause are not spent
    budget.set_model(type("M", (), {"stop_training": False})())
    budget.on_train_batch_end(0)  # t = 100: 70 s spent, over 60 s
    assert budget.model.stop_training and budget.start == 30.0


def test_a_resumed_csv_log_keeps_its_columns(tmp_path):
    from s2s_zoo.training.callbacks import logging_callbacks

    (tmp_path / CSV_NAME).write_text("epoch,loss,val_bleu\n0,2.0,1.5\n")
    csv_logger = logging_callbacks(tmp_path, append=True)[-1]
    csv_logger.set_model(type("M", (), {"stop_training": False})())
    csv_logger.on_train_begin()  # Keras' CSVLogger forgets its columns here
    csv_logger.on_epoch_end(1, {"loss": 1.0, "val_loss": 3.0})  # no val_bleu this time
    csv_logger.on_train_end()
    with open(tmp_path / CSV_NAME) as f:
        rows = list(csv.reader(f))
    assert rows == [["epoch", "loss", "val_bleu"], ["0", "2.0", "1.5"], ["1", "1.0", "NA"]]


def test_an_early_stopping_metric_the_task_lacks_is_refused():
    pairs = [number_pair(n) for n in range(10)]
    inference = make_tiny_inference(pairs, seed=0)
    with pytest.raises(SystemExit, match=r"reports \['loss', 'bleu', 'exact_match'\]"):
        decoded_validation(inference, TranslationTask(), pairs, 5, early_stopping_metric="wer")
    with pytest.raises(SystemExit, match="needs --valid-decode > 0"):
        decoded_validation(inference, TranslationTask(), pairs, 0, early_stopping_metric="bleu")
    sample = decoded_validation(inference, TranslationTask(), pairs, 4, seed=3)
    assert len(sample.sources) == 4 and sample.sources == sorted(
        sample.sources, key=[s for s, _ in pairs].index
    )  # a sample, kept in file order


def test_the_validation_sample_takes_whole_groups():
    from s2s_zoo.training.runner import sample_by_group

    sources = [f"d{d}t{t}" for d in range(10) for t in range(3)]  # 10 dialogs of 3 turns

    def dialog(source):
        return source.split("t")[0]

    chosen = sample_by_group(sources, 7, dialog, seed=1)
    groups = {dialog(sources[i]) for i in chosen}
    assert chosen == sorted(chosen) and len(chosen) == 6 and len(groups) == 2  # whole dialogs
    assert sample_by_group(sources, 7, dialog, seed=1) == chosen  # seeded
    assert len(sample_by_group(sources, 7, lambda s: None, seed=1)) == 7  # no groups: sources
    assert len(sample_by_group(sources, 1, dialog, seed=1)) == 3  # at least one group
