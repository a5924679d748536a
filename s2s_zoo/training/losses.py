"""Sequence loss (the `tfa.seq2seq.sequence_loss` replacement) and token accuracy.

Both mask padding by the label (`y_true == pad_id`) themselves, so they do not
depend on whether Keras propagated a mask to the logits.

Under a multi-replica `tf.distribute` strategy the loss is normalised by the
number of target tokens in the *global* batch (an all-reduce across replicas), so
training with R replicas takes exactly the steps of one replica at the same global
batch; see `SequenceLoss.call`.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


class SequenceLoss(keras.losses.Loss):
    """Token-level cross-entropy averaged over non-padding tokens, with label smoothing.

    Returns per-token values already divided by the token count, with
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
        if self.label_smoothing:
            log_probs = ops.log_softmax(logits, axis=-1)
            nll = -ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
            uniform = -ops.mean(log_probs, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        else:
            # TF's fused kernel: its gradient (softmax - one-hot) comes with the forward
            # pass, where log_softmax + gather costs more passes over [batch, time, vocab]
            # (issue 12: 16k vocabularies)
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_true, logits=logits)
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        per_token = nll * mask
        local_tokens = ops.sum(mask)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return per_token / ops.maximum(local_tokens, 1.0)
        return _replica_share(per_token, mask, local_tokens, context)

    def get_config(self) -> dict:
        return {"name": self.name, "label_smoothing": self.label_smoothing, "pad_id": self.pad_id}


def _replica_share(per_token, mask, local_tokens, context):
    """One replica's per-token loss values under an R-replica strategy.

    Keras sums the replicas' gradients and, for the reported loss, multiplies each
    replica's value by R and averages over replicas weighted by their rows. So:

    - the differentiable part is `per_token / global_tokens`, whose gradients summed
      over replicas are exactly the gradient of the global-batch masked mean (a mean
      of per-replica means would weight a replica's tokens by how many it happened
      to get);
    - a constant (stop-gradient) correction makes every replica's value equal to
      `global_mean / R`, so the reported loss is the global-batch mean even when the
      batch does not split evenly (a replica with no rows gets weight 0).
    """
    local_sum = ops.sum(per_token)
    totals = context.all_reduce(
        tf.distribute.ReduceOp.SUM, tf.stack([tf.stop_gradient(local_sum), local_tokens])
    )
    global_tokens = ops.maximum(totals[1], 1.0)
    share = per_token / global_tokens
    target = totals[0] / global_tokens / float(context.num_replicas_in_sync)
    correction = tf.stop_gradient(target - local_sum / global_tokens)
    return share + correction * mask / ops.maximum(local_tokens, 1.0)


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
