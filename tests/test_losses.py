"""SequenceLoss and MaskedAccuracy against hand-computed numpy values."""

from __future__ import annotations

import numpy as np
import pytest

from s2s_zoo.training.losses import MaskedAccuracy, SequenceLoss

VOCAB = 7


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reference_loss(y_true, logits, smoothing=0.0, pad_id=0) -> float:
    log_p = log_softmax(logits.astype(np.float64))
    nll = -np.take_along_axis(log_p, y_true[..., None], axis=-1)[..., 0]
    per_token = (1.0 - smoothing) * nll + smoothing * (-log_p.mean(axis=-1))
    mask = y_true != pad_id
    return float(per_token[mask].sum() / mask.sum())


@pytest.fixture()
def batch():
    rng = np.random.default_rng(0)
    y_true = np.array([[4, 2, 5, 3, 0, 0], [6, 3, 0, 0, 0, 0], [1, 4, 4, 6, 5, 3]], np.int32)
    logits = rng.normal(size=(3, 6, VOCAB)).astype(np.float32) * 2.0
    return y_true, logits


def loss_value(loss, y_true, logits) -> float:
    return float(np.asarray(loss(y_true, logits)))


def test_sequence_loss_is_the_masked_mean_cross_entropy(batch):
    y_true, logits = batch
    value = loss_value(SequenceLoss(), y_true, logits)
    assert value == pytest.approx(reference_loss(y_true, logits), rel=1e-5)
    # Not the unmasked mean: padding would change it.
    unmasked = -np.take_along_axis(log_softmax(logits), y_true[..., None], -1).mean()
    assert abs(value - unmasked) > 1e-2


def test_sequence_loss_ignores_padded_positions(batch):
    y_true, logits = batch
    loss = SequenceLoss()
    base = loss_value(loss, y_true, logits)
    changed = logits.copy()
    changed[y_true == 0] = np.random.default_rng(1).normal(size=changed[y_true == 0].shape) * 50
    assert loss_value(loss, y_true, changed) == pytest.approx(base, rel=1e-6)
    # A non-padding position does count.
    changed[0, 0, 1] += 5.0  # (a shift of the whole row would be softmax-invariant)
    assert loss_value(loss, y_true, changed) != pytest.approx(base, rel=1e-3)


def test_extra_padding_columns_do_not_change_the_loss(batch):
    y_true, logits = batch
    loss = SequenceLoss()
    extra = 5
    padded_true = np.concatenate([y_true, np.zeros((3, extra), np.int32)], axis=1)
    noise = np.random.default_rng(2).normal(size=(3, extra, VOCAB)).astype(np.float32) * 10
    padded_logits = np.concatenate([logits, noise], axis=1)
    assert loss_value(loss, padded_true, padded_logits) == pytest.approx(
        loss_value(loss, y_true, logits), rel=1e-6
    )


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_label_smoothing_formula(batch, smoothing):
    y_true, logits = batch
    value = loss_value(SequenceLoss(label_smoothing=smoothing), y_true, logits)
    assert value == pytest.approx(reference_loss(y_true, logits, smoothing), rel=1e-5)
    assert value != pytest.approx(reference_loss(y_true, logits), rel=1e-3)


def test_custom_pad_id_and_all_padding(batch):
    y_true, logits = batch
    shifted = np.where(y_true == 0, 6, np.where(y_true == 6, 0, y_true)).astype(np.int32)
    value = loss_value(SequenceLoss(pad_id=6), shifted, logits)
    assert value == pytest.approx(reference_loss(shifted, logits, pad_id=6), rel=1e-5)
    # A batch of padding only gives 0, not NaN.
    assert loss_value(SequenceLoss(), np.zeros((2, 3), np.int32), logits[:2, :3]) == 0.0


def test_invalid_label_smoothing():
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError):
            SequenceLoss(label_smoothing=bad)


def one_hot_logits(predicted: np.ndarray) -> np.ndarray:
    return np.eye(VOCAB, dtype=np.float32)[predicted] * 3.0


def test_masked_accuracy_counts_tokens_across_batches():
    metric = MaskedAccuracy()
    # Batch 1: 5 real tokens, 4 right; the padded positions predict 0 (= pad), which
    # would count as hits if padding were not masked.
    y1 = np.array([[4, 5, 3, 0], [6, 3, 0, 0]], np.int32)
    p1 = np.array([[4, 5, 3, 0], [6, 2, 0, 0]], np.int32)
    # Batch 2: 3 real tokens, 1 right.
    y2 = np.array([[1, 4, 3]], np.int32)
    p2 = np.array([[1, 5, 5]], np.int32)

    metric.update_state(y1, one_hot_logits(p1))
    assert float(metric.result()) == pytest.approx(4 / 5)
    metric.update_state(y2, one_hot_logits(p2))
    # Per token over both batches, not the mean of per-batch ratios (0.567).
    assert float(metric.result()) == pytest.approx(5 / 8)

    metric.reset_state()
    assert float(metric.result()) == 0.0
    metric.update_state(np.zeros((1, 3), np.int32), one_hot_logits(np.zeros((1, 3), np.int32)))
    assert float(metric.result()) == 0.0  # no tokens: 0, not NaN


def test_masked_accuracy_custom_pad_id():
    metric = MaskedAccuracy(pad_id=6)
    y = np.array([[4, 0, 6, 6]], np.int32)
    p = np.array([[4, 1, 6, 6]], np.int32)
    metric.update_state(y, one_hot_logits(p))
    assert float(metric.result()) == pytest.approx(1 / 2)
