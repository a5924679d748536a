"""The contract every model family in the zoo keeps, so one search and one exporter serve all.

A family exposes three views that share weights:
- `training_model`: functional `[*source, target_ids] -> logits` (teacher forcing); the
  source is token ids for text, an image batch, or (features, frame_mask) for audio;
- `encode(source) -> (memory, state)`: memory is what the decoder reads but never
  changes (encoder outputs, attention keys, source mask); state is the decoder cache;
- `step(token_ids, state, memory) -> (logits, state)`: one decoding position.

Splitting memory from state lets beam search reorder only the cache each step.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import keras
import tensorflow as tf

TensorDict = dict[str, tf.Tensor]


class Seq2SeqModel:
    """Base class: a config dataclass plus the three weight-sharing views."""

    family: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def __init__(self, config: Any) -> None:
        self.config = config
        self.training_model: keras.Model

    def encode(
        self, source: tf.Tensor | tuple, max_length: tf.Tensor | int | None = None
    ) -> tuple[TensorDict, TensorDict]:
        """`max_length` bounds the decoding steps (sizes fixed caches, e.g. Transformer's)."""
        raise NotImplementedError

    def step(
        self, token_ids: tf.Tensor, state: TensorDict, memory: TensorDict
    ) -> tuple[tf.Tensor, TensorDict]:
        raise NotImplementedError

    @property
    def has_attention(self) -> bool:
        """Whether `step` leaves the last step's attention weights in `state["attention"]`."""
        return False

    @property
    def target_vocab_size(self) -> int:
        return self.config.target_vocab_size

    def count_params(self) -> int:
        return self.training_model.count_params()

    def config_json(self) -> str:
        """Family + config as JSON; `build_from_json` rebuilds the same architecture."""
        return json.dumps(
            {"family": self.family, "config": dataclasses.asdict(self.config)},
            indent=2,
            sort_keys=True,
        )
