"""Learning-rate schedule for Transformer-style training: linear warmup, then 1/sqrt decay.

Keras ships warmup only inside `CosineDecay`; the inverse square root schedule of
Vaswani et al. (2017) is not among its schedules, so it is written here as a
`LearningRateSchedule` (serialisable, so a saved optimizer config round-trips).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="s2s_zoo")
class WarmupInverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """`peak * min(step / warmup, sqrt(warmup / step))`, `step` counted in updates.

    Rises linearly from 0 at step 0 to `peak` at `warmup_steps`, then decays as
    1/sqrt(step): `peak / 2` at `4 * warmup_steps`. Keras calls a schedule with its
    raw iteration count, which under gradient accumulation counts micro-batches;
    `micro_steps_per_update` (the accumulation count) turns that into updates.
    """

    def __init__(
        self, peak_learning_rate: float, warmup_steps: int, micro_steps_per_update: int = 1
    ) -> None:
        super().__init__()
        if peak_learning_rate <= 0:
            raise ValueError("peak_learning_rate must be positive")
        if int(warmup_steps) < 1:
            raise ValueError("warmup_steps must be at least 1")
        if int(micro_steps_per_update) < 1:
            raise ValueError("micro_steps_per_update must be at least 1")
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.micro_steps_per_update = int(micro_steps_per_update)

    def __call__(self, step):
        step = ops.floor_divide(ops.cast(step, "int64"), self.micro_steps_per_update)
        step = ops.cast(step, "float32")
        warmup = float(self.warmup_steps)
        rising = step / warmup
        decaying = ops.sqrt(warmup / ops.maximum(step, 1.0))
        return self.peak_learning_rate * ops.minimum(rising, decaying)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "micro_steps_per_update": self.micro_steps_per_update,
        }
