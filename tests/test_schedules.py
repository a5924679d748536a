"""WarmupInverseSqrt values, serialisation, and how the optimizer feeds it steps."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from s2s_zoo.training.fit import TrainConfig, make_optimizer
from s2s_zoo.training.schedules import WarmupInverseSqrt


def lr(schedule, step: int) -> float:
    return float(np.asarray(schedule(step)))


def test_exact_values():
    schedule = WarmupInverseSqrt(1e-3, 4000)
    assert lr(schedule, 0) == 0.0
    assert lr(schedule, 1000) == pytest.approx(0.25e-3, rel=1e-6)  # a quarter of warmup
    assert lr(schedule, 4000) == pytest.approx(1e-3, rel=1e-6)  # the peak
    assert lr(schedule, 16000) == pytest.approx(0.5e-3, rel=1e-6)  # 1/sqrt(4)
    assert lr(schedule, 9 * 4000) == pytest.approx(1e-3 / 3, rel=1e-6)


def test_rises_then_decays():
    schedule = WarmupInverseSqrt(2.0, 10)
    values = [lr(schedule, s) for s in range(0, 60)]
    assert values.index(max(values)) == 10
    assert all(a < b for a, b in zip(values[:10], values[1:11], strict=True))
    assert all(a > b for a, b in zip(values[10:-1], values[11:], strict=True))
    for s in range(11, 60):
        assert values[s] == pytest.approx(2.0 * math.sqrt(10 / s), rel=1e-6)


def test_config_round_trip():
    schedule = WarmupInverseSqrt(3e-4, 250, micro_steps_per_update=2)
    again = WarmupInverseSqrt.from_config(schedule.get_config())
    assert again.get_config() == {
        "peak_learning_rate": 3e-4,
        "warmup_steps": 250,
        "micro_steps_per_update": 2,
    }
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, WarmupInverseSqrt)
    for step in (0, 100, 250, 1000):
        assert lr(restored, step) == lr(schedule, step)
    assert lr(restored, 500) == pytest.approx(3e-4)  # 500 micro-steps = 250 updates
    # Inside an optimizer's config too (a saved model's optimizer round-trips).
    optimizer = keras.optimizers.Adam(schedule)
    rebuilt = keras.optimizers.Adam.from_config(optimizer.get_config())
    assert isinstance(rebuilt._learning_rate, WarmupInverseSqrt)
    assert rebuilt._learning_rate.get_config() == schedule.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupInverseSqrt(1e-3, 0)
    with pytest.raises(ValueError, match="peak_learning_rate"):
        WarmupInverseSqrt(0.0, 10)
    with pytest.raises(ValueError, match="micro_steps_per_update"):
        WarmupInverseSqrt(1.0, 10, 0)


def test_make_optimizer_uses_the_schedule_per_update():
    """With accumulation the schedule counts updates, not micro-batches.

    (Keras passes schedules its raw micro-batch count; the schedule divides.)
    """
    optimizer = make_optimizer(TrainConfig(learning_rate=1.0, warmup_steps=4, accumulate=2))
    assert isinstance(optimizer._learning_rate, WarmupInverseSqrt)
    assert optimizer.gradient_accumulation_steps == 2
    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer.build([variable])
    for _ in range(5):  # 5 micro-batches = 2 updates
        optimizer.apply([keras.ops.ones(3)], [variable])
    assert int(optimizer.iterations) == 2
    assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.5)  # update 2 of 4


def test_make_optimizer_defaults_and_errors():
    plain = make_optimizer(TrainConfig(learning_rate=0.01))
    assert float(np.asarray(plain.learning_rate)) == pytest.approx(0.01)
    assert plain.gradient_accumulation_steps is None
    assert plain.clipnorm == 1.0
    with pytest.raises(ValueError, match="accumulate"):
        make_optimizer(TrainConfig(accumulate=0))
    with pytest.raises(ValueError, match="warmup_steps"):
        make_optimizer(TrainConfig(warmup_steps=-1))
