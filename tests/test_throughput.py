"""Gradient accumulation, checkpoint averaging and token-budget batching."""

from __future__ import annotations

import os
import time
from collections import Counter

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.pipeline import make_dataset, token_batch_sizes
from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import PAD_ID, train_sentencepiece
from s2s_zoo.tasks.translation.numbers import number_pair
from s2s_zoo.training.averaging import average_checkpoints, latest_checkpoints
from s2s_zoo.training.fit import TrainConfig, make_optimizer

# --- gradient accumulation -----------------------------------------------------------

MICRO, STEPS = 4, 3  # micro-batch size, micro-batches per update


def linear(optimizer) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros"),
        ]
    )
    model.compile(optimizer, "mse")  # a mean loss: the mean of equal-size means is the mean
    return model


def data(rows: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3)).astype(np.float32)
    return x, (x @ rng.normal(size=(3, 2)) + 1.0).astype(np.float32)


@pytest.mark.parametrize("name", ["sgd", "adam_clipped"])
def test_accumulating_micro_batches_equals_one_big_batch(name):
    """Keras' gradient_accumulation_steps: mean of N micro-batch gradients, one update."""

    def optimizer(accumulate: int):
        if name == "sgd":
            return keras.optimizers.SGD(
                0.1, gradient_accumulation_steps=accumulate if accumulate > 1 else None
            )
        # Ours: Adam with clipnorm (clipping applies to the averaged gradient).
        return make_optimizer(TrainConfig(learning_rate=0.1, clipnorm=0.5, accumulate=accumulate))

    x, y = data(MICRO * STEPS * 2)  # two updates' worth
    big = linear(optimizer(1))
    big.fit(x, y, batch_size=MICRO * STEPS, epochs=1, shuffle=False, verbose=0)
    accumulated = linear(optimizer(STEPS))
    accumulated.fit(x, y, batch_size=MICRO, epochs=1, shuffle=False, verbose=0)
    assert int(accumulated.optimizer.iterations) == int(big.optimizer.iterations) == 2
    for a, b in zip(big.get_weights(), accumulated.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert not np.allclose(big.get_weights()[0], 1.0)  # the weights did move


def test_no_update_before_the_last_micro_batch():
    x, y = data(MICRO * (STEPS - 1))
    model = linear(keras.optimizers.SGD(0.1, gradient_accumulation_steps=STEPS))
    model.fit(x, y, batch_size=MICRO, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_array_equal(model.get_weights()[0], np.ones((3, 2), np.float32))
    model.fit(x[:MICRO], y[:MICRO], batch_size=MICRO, epochs=1, shuffle=False, verbose=0)
    assert not np.allclose(model.get_weights()[0], 1.0)


# --- checkpoint averaging ------------------------------------------------------------


def small_model(dropout_seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4),
            keras.layers.Dropout(0.1, seed=dropout_seed),
            keras.layers.Dense(2),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


def test_average_of_two_weight_files(tmp_path):
    model = small_model()
    x, y = data(8)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)  # optimizer state + iterations 2
    rng = np.random.default_rng(1)
    first = [rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
    second = [rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(first)
    model.save_weights(tmp_path / "a.weights.h5")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)  # iterations 4, newer moments
    model.set_weights(second)
    model.save_weights(tmp_path / "b.weights.h5")
    newest_optimizer = [v.numpy() for v in model.optimizer.variables]

    out = average_checkpoints(
        [tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"], tmp_path / "avg.weights.h5"
    )
    fresh = small_model()
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(out)
    for got, a, b in zip(fresh.get_weights(), first, second, strict=True):
        np.testing.assert_array_equal(got, ((a.astype(np.float64) + b) / 2).astype(np.float32))
    # The optimizer state (and its integer step) is the newest file's, not averaged.
    assert int(fresh.optimizer.iterations) == 4
    for got, want in zip(fresh.optimizer.variables, newest_optimizer, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def test_average_refuses_another_architecture(tmp_path):
    small_model().save_weights(tmp_path / "a.weights.h5")
    wide = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5), keras.layers.Dense(2)])
    wide.save_weights(tmp_path / "b.weights.h5")
    with pytest.raises(ValueError, match=r"a\.weights\.h5: array .*b\.weights\.h5"):
        average_checkpoints(
            [tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"], tmp_path / "o.weights.h5"
        )
    with pytest.raises(ValueError, match="must not be one of the inputs"):
        average_checkpoints([tmp_path / "a.weights.h5"], tmp_path / "a.weights.h5")
    with pytest.raises(ValueError, match="no checkpoints"):
        average_checkpoints([], tmp_path / "o.weights.h5")


def test_latest_checkpoints_by_write_time(tmp_path):
    now = time.time()
    for age, name in [(30, "epoch-0003"), (10, "epoch-0001"), (20, "epoch-0002")]:
        path = tmp_path / f"{name}.weights.h5"
        with h5py.File(path, "w"):
            pass
        os.utime(path, (now - age, now - age))
    assert [p.name for p in latest_checkpoints(tmp_path, 2)] == [
        "epoch-0002.weights.h5",
        "epoch-0001.weights.h5",
    ]
    with pytest.raises(FileNotFoundError, match="no files matching"):
        latest_checkpoints(tmp_path / "empty", 2)


# --- batching by tokens ----------------------------------------------------------------

PAIRS = [number_pair(n) for n in [*range(0, 200, 3), 777_777, 123_456_789, 99_999, 342]]
PAIRS.append(PAIRS[5])  # a duplicate: the epoch must be a multiset


@pytest.fixture(scope="module")
def pre() -> TextPreprocessor:
    return TextPreprocessor(
        train_sentencepiece([s for s, _ in PAIRS], 60),
        train_sentencepiece([t for _, t in PAIRS], 60),
        max_source_length=24,
        max_target_length=20,
    )


def rows_of(batch) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    (source, _), target_out = batch
    return [
        (tuple(int(i) for i in s if i != PAD_ID), tuple(int(i) for i in t if i != PAD_ID))
        for s, t in zip(source.numpy(), target_out.numpy(), strict=True)
    ]


def test_token_batches_stay_within_budget_and_cover_the_epoch(pre):
    budget = 60
    ds = make_dataset(
        PAIRS, pre, 1000, seed=3, bucket_boundaries=(4, 6, 9, 13), batch_tokens=budget
    )
    sources = pre.source_ragged(tf.constant([s for s, _ in PAIRS])).to_list()
    _, target_out = pre.target_in_out_ragged(tf.constant([t for _, t in PAIRS]))
    expected = Counter(zip(map(tuple, sources), map(tuple, target_out.to_list()), strict=True))
    for _ in range(2):  # two epochs, two shuffles
        seen: Counter = Counter()
        sizes = set()
        for batch in ds:
            (source, target_in), target_out = batch
            rows = source.shape[0]
            assert rows * source.shape[1] <= budget
            assert rows * target_in.shape[1] <= budget
            assert target_in.shape == target_out.shape
            sizes.add(rows)
            seen.update(rows_of(batch))
        assert seen == expected  # nothing lost, nothing duplicated
        assert max(sizes) > budget // 24  # short buckets carry more rows than the longest allows


def test_token_batch_sizes_arithmetic():
    # Buckets [.,4) [4,6) [6,9) [9,13) [13,20]: at most 3, 5, 8, 12, 20 tokens.
    assert token_batch_sizes([4, 6, 9, 13, 30], 60, 1000, 20) == ([4, 6, 9, 13], [20, 12, 7, 5, 3])
    assert token_batch_sizes([4, 6], 60, 10, 20)[1] == [10, 10, 3]  # capped by batch_size rows
    with pytest.raises(ValueError, match="batch_tokens=15 cannot hold one example"):
        token_batch_sizes([4], 15, 10, 20)
