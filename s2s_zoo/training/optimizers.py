"""Optimizers whose gradient clipping sees the whole batch's gradient under tf.distribute.

Keras 3 (TF backend) clips each replica's partial gradient in `_clip_gradients` and only
then all-reduces (sums) the replicas' gradients in `_all_reduce_sum_gradients`, so with
R replicas `clipnorm` bounds each of R partial gradients instead of their sum: once
clipping is active, training on R replicas takes other steps than on one device at the
same global batch. Here the all-reduce moves in front of the clipping (the same
`all_reduce` call Keras makes, so embedding gradients stay `IndexedSlices` with the
replicas' rows joined, which Adam's sparse update needs), and Keras' own all-reduce
then passes the already-summed gradients through. One all-reduce per step, as before.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class ClipAfterAllReduce:
    """Mixin for a Keras optimizer: clip the replicas' summed gradient, not each part."""

    def _reduces_before_clipping(self) -> bool:
        context = tf.distribute.get_replica_context()
        clipping = self.clipnorm or self.global_clipnorm or self.clipvalue
        return bool(clipping) and context is not None and context.num_replicas_in_sync > 1

    def _clip_gradients(self, grads):
        if not self._reduces_before_clipping():
            return super()._clip_gradients(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        context = tf.distribute.get_replica_context()
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
        full = list(grads)
        for i, g in zip(present, summed, strict=True):
            full[i] = g
        return super()._clip_gradients(full)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        # Keras calls this after `_clip_gradients`; the gradients are summed already
        if self._reduces_before_clipping():
            return list(grads_and_vars)
        return super()._all_reduce_sum_gradients(grads_and_vars)


@keras.saving.register_keras_serializable(package="s2s_zoo")
class Adam(ClipAfterAllReduce, keras.optimizers.Adam):
    """`keras.optimizers.Adam`, clipping the global batch's gradient under tf.distribute."""
