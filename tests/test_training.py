"""A small training run learns: loss falls and greedy decoding gets better."""

from __future__ import annotations

import tensorflow as tf

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.tasks.translation.numbers import number_pair
from s2s_zoo.training.fit import TrainConfig, compile_model, fit
from tests.conftest import make_tiny_inference


def exact_match(inference, pairs) -> float:
    out = inference.greedy(tf.constant([s for s, _ in pairs]))["outputs"].numpy()
    return sum(o.decode() == t for o, (_, t) in zip(out, pairs, strict=True)) / len(pairs)


def test_loss_falls_and_greedy_improves():
    pairs = [number_pair(n) for n in range(0, 100)]
    inference = make_tiny_inference(pairs, seed=1)
    config = TrainConfig(epochs=25, batch_size=16, learning_rate=1e-2, patience=0)
    compile_model(inference.model.training_model, config)
    before = exact_match(inference, pairs)
    history = fit(
        inference.model.training_model,
        make_dataset(pairs, inference.preprocessor, 16, seed=1),
        None,
        config,
        verbose=0,
    )
    losses = history.history["loss"]
    after = exact_match(inference, pairs)
    assert losses[-1] < 0.25 * losses[0], losses
    assert before == 0.0
    assert after >= 0.5, after
