"""Pointer-generator and coverage layers against brute-force NumPy references."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.layers.copy import CopyDistribution, GenerationProbability
from s2s_zoo.layers.coverage import CoverageAttention, coverage_loss

RNG = np.random.default_rng(0)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference_mixture(logits, attention, p_gen, source_ids, pad_id=0):
    """p_gen * softmax + (1 - p_gen) * attention summed per id by a Python loop."""
    batch, steps, vocab = logits.shape
    out = np.zeros_like(logits, dtype=np.float64)
    for b in range(batch):
        real = source_ids[b] != pad_id
        for t in range(steps):
            a = attention[b, t] * real
            gate = p_gen[b, t, 0] if a.sum() > 0 else 1.0
            out[b, t] = gate * softmax(logits[b, t].astype(np.float64))
            if a.sum() > 0:
                for i, token in enumerate(source_ids[b]):
                    out[b, t, token] += (1 - gate) * a[i] / a.sum()
    return out


def random_inputs(batch=3, steps=4, length=6, vocab=11):
    logits = RNG.normal(size=(batch, steps, vocab)).astype(np.float32) * 3
    source_ids = np.array([[5, 7, 5, 5, 2, 0], [1, 9, 10, 3, 0, 0], [4, 4, 4, 4, 4, 4]], np.int32)[
        :batch, :length
    ]
    scores = RNG.normal(size=(batch, steps, length)).astype(np.float32)
    scores = np.where((source_ids != 0)[:, None, :], scores, -1e9)
    attention = softmax(scores).astype(np.float32)
    p_gen_logit = RNG.normal(size=(batch, steps, 1)).astype(np.float32) * 2
    return logits, attention, p_gen_logit, source_ids


# --- CopyDistribution -------------------------------------------------------------------


def test_docstring_example_by_hand() -> None:
    # p_gen 0.5: every id gets 0.5 * 1/4; id 3 also gets 0.5 * (0.75 + 0.25) from copying
    out = CopyDistribution()(
        tf.zeros([1, 4]),
        tf.constant([[0.75, 0.25, 0.0]]),
        tf.zeros([1, 1]),
        tf.constant([[3, 3, 0]]),
    )
    np.testing.assert_allclose(np.exp(out), [[0.125, 0.125, 0.125, 0.625]], atol=1e-6)


def test_mixture_matches_brute_force_and_sums_to_one() -> None:
    logits, attention, p_gen_logit, source_ids = random_inputs()
    log_probs = CopyDistribution()(logits, attention, p_gen_logit, source_ids).numpy()
    expected = reference_mixture(logits, attention, sigmoid(p_gen_logit), source_ids)
    np.testing.assert_allclose(np.exp(log_probs), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-5)
    # the shared search's log_softmax leaves the output unchanged
    np.testing.assert_allclose(tf.nn.log_softmax(log_probs).numpy(), log_probs, atol=1e-5)


def test_copy_mass_is_one_minus_p_gen_times_attention_with_repeats_summed() -> None:
    vocab = 6
    logits = np.full((1, 1, vocab), -30.0, np.float32)  # no generation mass to speak of
    logits[0, 0, 1] = 30.0  # ... except on id 1, which the source does not contain
    attention = np.array([[[0.1, 0.2, 0.3, 0.4]]], np.float32)
    source_ids = np.array([[4, 2, 4, 4]], np.int32)  # id 4 three times
    p_gen = np.array([[[0.3]]], np.float32)
    probs = np.exp(CopyDistribution(p_gen_is_logit=False)(logits, attention, p_gen, source_ids))
    np.testing.assert_allclose(probs[0, 0], [0, 0.3, 0.7 * 0.2, 0, 0.7 * 0.8, 0], atol=1e-6)


def test_padding_positions_get_no_mass() -> None:
    logits = np.zeros((1, 1, 5), np.float32)
    # attention that (wrongly) puts half its mass on the padding position: renormalised away
    attention = np.array([[[0.25, 0.25, 0.5]]], np.float32)
    source_ids = np.array([[3, 4, 0]], np.int32)
    probs = np.exp(CopyDistribution()(logits, attention, np.zeros((1, 1, 1)), source_ids))
    np.testing.assert_allclose(probs[0, 0], [0.1, 0.1, 0.1, 0.35, 0.35], atol=1e-6)
    # an all-padding source leaves generation alone (p_gen taken as 1)
    probs = np.exp(
        CopyDistribution()(logits, attention, np.zeros((1, 1, 1)), tf.zeros([1, 3], tf.int32))
    )
    np.testing.assert_allclose(probs[0, 0], np.full(5, 0.2), atol=1e-6)


def test_one_step_shapes_and_probability_input_agree_with_the_sequence_form() -> None:
    logits, attention, p_gen_logit, source_ids = random_inputs()
    layer = CopyDistribution()
    sequence = layer(logits, attention, p_gen_logit, source_ids).numpy()
    step = layer(logits[:, 2], attention[:, 2], p_gen_logit[:, 2], source_ids).numpy()
    np.testing.assert_allclose(step, sequence[:, 2], atol=1e-6)
    from_probability = CopyDistribution(p_gen_is_logit=False)(
        logits, attention, sigmoid(p_gen_logit), source_ids
    )
    np.testing.assert_allclose(from_probability.numpy(), sequence, atol=1e-5)


def test_gradients_are_finite_and_match_the_formula() -> None:
    logits, attention, p_gen_logit, source_ids = random_inputs()
    logits[0, 0, :] = [-1e4] * 5 + [1e4] * 6  # extreme logits
    p_gen_logit[1, 1, 0] = 40.0  # p_gen rounds to 1 in float32
    p_gen_logit[2, 0, 0] = -40.0  # p_gen rounds to 0
    targets = np.array([[0, 7, 1, 5], [9, 8, 0, 10], [4, 6, 4, 0]])  # some absent from source
    variables = [tf.Variable(x) for x in (logits, attention, p_gen_logit)]
    with tf.GradientTape() as tape:
        log_probs = CopyDistribution()(*variables, source_ids)
        picked = tf.gather(log_probs, targets, batch_dims=2)
        # the search's extra log_softmax and a loss over every entry both backpropagate
        loss = -tf.reduce_sum(picked) + tf.reduce_sum(tf.nn.log_softmax(log_probs) * 1e-3)
    gradients = tape.gradient(loss, variables)
    for gradient in gradients:
        assert np.all(np.isfinite(gradient.numpy()))
    # d(-log P(y))/dz = -sigmoid'(z) (P_vocab(y) - P_copy(y)) / P(y), away from saturation
    with tf.GradientTape() as tape:
        z = tf.Variable(p_gen_logit)
        picked = tf.gather(
            CopyDistribution()(logits, attention, z, source_ids), targets, batch_dims=2
        )
        loss = -tf.reduce_sum(picked)
    numeric = tape.gradient(loss, z).numpy()[..., 0]
    p_vocab = softmax(logits.astype(np.float64))
    p_copy = reference_mixture(logits, attention, np.zeros_like(p_gen_logit), source_ids)
    pv = np.take_along_axis(p_vocab, targets[..., None], -1)[..., 0]
    pc = np.take_along_axis(p_copy, targets[..., None], -1)[..., 0]
    gate = sigmoid(p_gen_logit[..., 0].astype(np.float64))
    with np.errstate(invalid="ignore"):  # [0, 0]: both probabilities underflow to 0
        expected = -gate * (1 - gate) * (pv - pc) / (gate * pv + (1 - gate) * pc)
    np.testing.assert_allclose(numeric[0, 1:], expected[0, 1:], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(numeric[1:], expected[1:], rtol=1e-3, atol=1e-6)


def test_source_id_outside_the_vocabulary_is_an_error() -> None:
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside the vocabulary"):
        CopyDistribution()(tf.zeros([1, 4]), tf.ones([1, 1]), tf.zeros([1, 1]), tf.constant([[4]]))


def test_copy_distribution_in_a_traced_graph_with_dynamic_shapes() -> None:
    layer = CopyDistribution()
    spec = [
        tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([None, 1], tf.float32),
        tf.TensorSpec([None, None], tf.int32),
    ]
    traced = tf.function(layer.call, input_signature=spec)
    logits, attention, p_gen_logit, source_ids = random_inputs()
    out = traced(logits[:, 0], attention[:, 0], p_gen_logit[:, 0], source_ids)
    expected = layer(logits[:, 0], attention[:, 0], p_gen_logit[:, 0], source_ids)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-6)


def test_config_round_trips() -> None:
    layer = CopyDistribution(p_gen_is_logit=False, pad_id=3, name="copy")
    clone = CopyDistribution.from_config(layer.get_config())
    assert (clone.p_gen_is_logit, clone.pad_id, clone.name) == (False, 3, "copy")
    gate = GenerationProbability(returns="probability", name="p_gen")
    clone = GenerationProbability.from_config(gate.get_config())
    assert (clone.returns, clone.name) == ("probability", "p_gen")
    attention = CoverageAttention(units=7, name="cov")
    clone = CoverageAttention.from_config(attention.get_config())
    assert (clone.units, clone.name) == (7, "cov")


# --- GenerationProbability --------------------------------------------------------------


def test_generation_probability_is_three_dot_products_and_a_bias() -> None:
    context, state, inputs = (RNG.normal(size=(2, 3, d)).astype(np.float32) for d in (4, 5, 2))
    gate = GenerationProbability()
    logit = gate(context, state, inputs).numpy()
    kernel, bias = (w.numpy() for w in gate.dense.weights)
    w_c, w_s, w_x = kernel[:4, 0], kernel[4:9, 0], kernel[9:, 0]
    expected = context @ w_c + state @ w_s + inputs @ w_x + bias[0]
    np.testing.assert_allclose(logit[..., 0], expected, atol=1e-5)
    probability = GenerationProbability(returns="probability")
    probability(context[:, 0], state[:, 0], inputs[:, 0])  # builds on [B, D]
    probability.set_weights(gate.get_weights())
    np.testing.assert_allclose(
        probability(context[:, 0], state[:, 0], inputs[:, 0]).numpy(),
        sigmoid(logit[:, 0]),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="returns must be"):
        GenerationProbability(returns="prob")


# --- coverage ---------------------------------------------------------------------------


def test_coverage_loss_by_hand() -> None:
    # c_0 = 0 -> step 0 costs 0; c_1 = a_0: min(.6,.5)+min(.1,.3)+min(.3,.2) = 0.8;
    # c_2 = a_0 + a_1 = (1.1, .4, .5): min(.2,1.1)+min(.2,.4)+min(.6,.5) = 0.9 (masked out)
    attention = np.array(
        [
            [[0.5, 0.3, 0.2], [0.6, 0.1, 0.3], [0.2, 0.2, 0.6]],
            [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        ],
        np.float32,
    )
    mask = np.array([[1, 1, 0], [1, 1, 1]], np.float32)
    # second row: 0 + min(1, 1) + 0 = 1; total (0.8 + 1.0) over 5 real tokens
    assert coverage_loss(attention, mask).numpy() == pytest.approx(1.8 / 5)
    assert coverage_loss(attention, np.ones((2, 3))).numpy() == pytest.approx(2.7 / 6)
    assert coverage_loss(attention, np.zeros((2, 3))).numpy() == 0.0


def test_coverage_excludes_the_current_step() -> None:
    # OpenNMT-py #2013: with a_t inside c_t the loss is sum(a_t) = 1 per step. Step 0 must
    # see zero coverage, so a one-step target costs nothing however peaked the attention.
    attention = np.array([[[0.9, 0.1]]], np.float32)
    assert coverage_loss(attention, np.ones((1, 1))).numpy() == 0.0
    layer = CoverageAttention(units=4)
    memory = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    _, weights, coverages = layer(RNG.normal(size=(2, 3, 6)).astype(np.float32), memory)
    np.testing.assert_array_equal(coverages[:, 0].numpy(), 0.0)
    np.testing.assert_allclose(coverages[:, 1].numpy(), weights[:, 0].numpy(), atol=1e-7)
    np.testing.assert_allclose(
        coverages.numpy(), np.cumsum(weights.numpy(), axis=1) - weights.numpy(), atol=1e-6
    )
    assert coverage_loss(weights[:, :1], np.ones((2, 1))).numpy() == 0.0


def reference_coverage_attention(layer, queries, memory, mask):
    """The paper's formula from the layer's weights, step by step in NumPy."""
    w_h = layer.memory_projection.kernel.numpy()
    w_s, b = layer.query_projection.kernel.numpy(), layer.query_projection.bias.numpy()
    w_c, v = layer.coverage_weight.numpy(), layer.score_vector.numpy()
    batch, steps, _ = queries.shape
    coverage = np.zeros(mask.shape)
    all_weights = []
    for t in range(steps):
        features = memory @ w_h + (queries[:, t] @ w_s + b)[:, None] + coverage[..., None] * w_c
        scores = np.tanh(features) @ v
        weights = softmax(np.where(mask, scores, -np.inf))
        all_weights.append(weights)
        coverage = coverage + weights
    return np.stack(all_weights, axis=1)


def test_coverage_attention_matches_the_formula_and_masks_padding() -> None:
    keras.utils.set_random_seed(1)
    layer = CoverageAttention(units=6)
    memory = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    queries = RNG.normal(size=(2, 4, 7)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    contexts, weights, _ = layer(queries, memory, mask)
    # larger coverage weights so the coverage term visibly matters
    layer.coverage_weight.assign(layer.coverage_weight.numpy() * 5)
    contexts, weights, _ = layer(queries, memory, mask)
    expected = reference_coverage_attention(layer, queries, memory, mask)
    np.testing.assert_allclose(weights.numpy(), expected, atol=1e-5)
    assert np.all(weights.numpy()[1, :, 2:] == 0.0)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        contexts.numpy(), np.einsum("bts,bsd->btd", weights.numpy(), memory), atol=1e-5
    )
    # without the coverage feature the later steps would attend differently
    layer.coverage_weight.assign(np.zeros(6, np.float32))
    assert not np.allclose(layer(queries, memory, mask)[1].numpy()[:, 1:], expected[:, 1:])
    # a source with no real position attends nowhere
    _, empty, _ = layer(queries, memory, np.zeros((2, 5), bool))
    assert np.all(empty.numpy() == 0.0)


def test_step_by_step_equals_teacher_forcing() -> None:
    keras.utils.set_random_seed(2)
    layer = CoverageAttention(units=5)
    memory = RNG.normal(size=(3, 6, 4)).astype(np.float32)
    queries = RNG.normal(size=(3, 5, 8)).astype(np.float32)
    mask = tf.sequence_mask([6, 4, 1], 6)
    contexts, weights, coverages = layer(queries, memory, mask)
    keys = layer.keys(memory)
    coverage = tf.zeros([3, 6])
    for t in range(5):
        np.testing.assert_allclose(coverage.numpy(), coverages[:, t].numpy(), atol=1e-6)
        context, step_weights, coverage = layer.step(queries[:, t], memory, keys, coverage, mask)
        np.testing.assert_allclose(step_weights.numpy(), weights[:, t].numpy(), atol=1e-6)
        np.testing.assert_allclose(context.numpy(), contexts[:, t].numpy(), atol=1e-6)


def test_coverage_attention_gradients_reach_every_weight() -> None:
    layer = CoverageAttention(units=4)
    memory = tf.constant(RNG.normal(size=(2, 5, 3)).astype(np.float32))
    queries = tf.constant(RNG.normal(size=(2, 3, 6)).astype(np.float32))
    with tf.GradientTape() as tape:
        contexts, weights, coverages = layer(queries, memory, tf.sequence_mask([5, 2], 5))
        loss = tf.reduce_sum(contexts**2) + coverage_loss(weights, tf.ones([2, 3]), coverages)
    gradients = tape.gradient(loss, layer.trainable_weights)
    assert len(gradients) == 5
    for gradient in gradients:
        assert gradient is not None and np.all(np.isfinite(gradient.numpy()))
        assert np.any(gradient.numpy() != 0.0)
