"""Distribution strategies for training: one device, all local GPUs, or several workers.

`make_strategy` must run before TensorFlow executes any op when it builds a
`MultiWorkerMirroredStrategy` (collective ops are configured at start-up) or when
the caller has set logical devices. Keras 3.15 on TF 2.21 cannot `fit` under a
multi-worker strategy as shipped (keras-team/keras#20585, tensorflow/tensorflow#72388);
`prepare_for_strategy` installs two small, version-guarded fixes, described where
they are defined. Only the chief worker writes files: see `is_chief`.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Sequence

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(
    name: str = "default", devices: Sequence[str] | None = None
) -> tf.distribute.Strategy:
    """The strategy called `name`: default (one device), mirrored or multi_worker.

    mirrored: synchronous data parallelism over `devices`, or over all local GPUs
    (the CPU when there are none). multi_worker: `MultiWorkerMirroredStrategy` over
    the cluster in the TF_CONFIG environment variable; create it before any TF op.
    """
    if name == "default":
        if devices:
            raise ValueError("devices only apply to the mirrored strategy")
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(list(devices) if devices else None)
    if name == "multi_worker":
        if devices:
            raise ValueError("devices only apply to the mirrored strategy")
        _check_tf_config()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            raise RuntimeError(
                "multi_worker: MultiWorkerMirroredStrategy must be created before "
                f"TensorFlow runs any op (create it first thing in the process): {error}"
            ) from error
        install_multi_worker_fixes()
        return strategy
    raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError("multi_worker needs the TF_CONFIG environment variable (cluster + task)")
    try:
        config = json.loads(raw)
        config["cluster"]
        config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG: not a cluster/task JSON object ({error!r})") from None


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.extended._in_multi_worker_mode()
    )


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process should write checkpoints, logs and exports.

    True except on the non-chief workers of a multi-worker cluster (the chief is
    task "chief", or worker 0 when the cluster has no chief).
    """
    strategy = strategy or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by element, not by file, when a strategy distributes `dataset` to workers.

    Our pipelines start from in-memory tensors (no files to split), and DATA
    sharding after re-batching hands each worker its slice of every global batch,
    so the workers together see exactly the single-process batches.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# --- Keras fixes -------------------------------------------------------------------

_VERIFIED_KERAS = ((3, 5), (4, 0))  # [low, high): versions whose trainer these fixes fit


def _keras_version() -> tuple[int, int]:
    major, minor = keras.__version__.split(".")[:2]
    return int(major), int(minor)


def _trainer_module() -> types.ModuleType | None:
    if not _VERIFIED_KERAS[0] <= _keras_version() < _VERIFIED_KERAS[1]:
        return None
    try:
        from keras.src.backend.tensorflow import trainer
    except ImportError:
        return None
    if not hasattr(trainer, "reduce_per_replica") or not hasattr(
        trainer.TensorFlowTrainer, "_maybe_symbolic_build"
    ):
        return None
    return trainer


def install_multi_worker_fixes() -> bool:
    """Let Keras reduce scalar step outputs across workers (idempotent; True if active).

    Keras' `reduce_per_replica` reduces every step output of a multi-worker strategy
    with `strategy.reduce("MEAN", v, axis=0)`; the logs are scalars, so that fails
    with "Invalid reduction dimension 0". Scalars are reduced with `axis=None` (the
    mean over replicas); everything else goes to Keras unchanged. Other strategies
    are not affected.
    """
    trainer = _trainer_module()
    if trainer is None:
        return False
    original = trainer.reduce_per_replica
    if getattr(original, "_s2s_zoo_fix", False):
        return True

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not is_multi_worker(strategy):
            return original(values, strategy, reduction)

        def reduce(value):
            first = value.values[0] if isinstance(value, tf.distribute.DistributedValues) else value
            if isinstance(first, tf.Tensor | tf.Variable) and first.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    reduce_per_replica._s2s_zoo_fix = True
    trainer.reduce_per_replica = reduce_per_replica
    return True


def prepare_for_strategy(model: keras.Model) -> bool:
    """Build `model`'s loss/metric/optimizer state from the input spec, not a batch.

    Keras, when a model lives under a strategy, draws one batch from a fresh
    iterator of the training data to build state before the first epoch. Under a
    multi-worker strategy it then tries to average that per-replica batch and fails
    ("Attempt to convert a value (PerReplica...)"); under any strategy the extra
    iterator also advances a reshuffling dataset's seed, so the epochs see other
    orders than a single-device run. This model-only override builds from the
    dataset's element spec (shapes and dtypes are all the build needs) and reads
    no data. Returns True if installed (no-op for models without a strategy).
    """
    if getattr(model, "_distribute_strategy", None) is None:
        return False
    if _trainer_module() is None:
        return False
    if is_multi_worker(model._distribute_strategy):
        install_multi_worker_fixes()
    if getattr(model, "_s2s_zoo_spec_build", False):
        return True
    original = model._maybe_symbolic_build

    def maybe_symbolic_build(iterator=None, data_batch=None):
        adapter = getattr(iterator, "data_adapter", None)
        if adapter is None or not hasattr(adapter, "get_tf_dataset"):
            return original(iterator=iterator, data_batch=data_batch)
        spec = adapter.get_tf_dataset().element_spec
        symbolic = tf.nest.map_structure(
            lambda s: keras.KerasTensor(tuple(s.shape), s.dtype.name), spec
        )
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=symbolic)

    model._maybe_symbolic_build = maybe_symbolic_build
    model._s2s_zoo_spec_build = True
    return True
