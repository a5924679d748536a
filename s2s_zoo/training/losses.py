"""Sequence loss (the `tfa.seq2seq.sequence_loss` replacement) and token accuracy.

Both mask padding by the label (`y_true == pad_id`) themselves, so they do not
depend on whether Keras propagated a mask to the logits.
"""

from __future__ import annotations

import keras
from keras import ops


class SequenceLoss(keras.losses.Loss):
    """Token-level cross-entropy averaged over non-padding tokens, with label smoothing.

    Returns per-token values already divided by the batch's token count, with
    `reduction="sum"`, so the result is the masked mean however Keras reduces.
    """

    def __init__(
        self, label_smoothing: float = 0.0, pad_id: int = 0, name: str = "sequence_loss"
    ) -> None:
        super().__init__(name=name, reduction="sum")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError("label_smoothing must be in [0, 1)")
        self.label_smoothing = label_smoothing
        self.pad_id = pad_id

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, "float32")
        log_probs = ops.log_softmax(logits, axis=-1)
        nll = -ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
        if self.label_smoothing:
            uniform = -ops.mean(log_probs, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        return nll * mask / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self) -> dict:
        return {"name": self.name, "label_smoothing": self.label_smoothing, "pad_id": self.pad_id}


class MaskedAccuracy(keras.metrics.Metric):
    """Fraction of non-padding target tokens predicted exactly (teacher forcing).

    Keeps token totals across batches, so the epoch value is per token, not a mean
    of per-batch ratios.
    """

    def __init__(self, pad_id: int = 0, name: str = "token_accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.tokens = self.add_variable(shape=(), initializer="zeros", name="tokens")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true = ops.cast(y_true, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        self.hits.assign_add(ops.sum(ops.cast(ops.equal(predicted, y_true), "float32") * mask))
        self.tokens.assign_add(ops.sum(mask))

    def result(self):
        return self.hits / ops.maximum(self.tokens, 1.0)

    def reset_state(self) -> None:
        self.hits.assign(0.0)
        self.tokens.assign(0.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "pad_id": self.pad_id}
