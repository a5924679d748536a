"""The contracts that let any encoder meet any decoder, and one search serve them all.

- An **encoder** turns a task's source features (token ids, an image batch, log-mel
  frames and their mask, a conversation and its knowledge base, ...) into an
  `EncoderOutput`: a memory `[batch, time, memory_dim]`, its mask `[batch, time]`
  and optionally summary vectors (e.g. an RNN's final states) for decoders that
  start from the source.
- A **decoder** reads an `EncoderOutput`. It builds the teacher-forced logits for
  training, names the tensors it needs from the encoder at decoding time, and
  implements the decoder-step interface used by greedy and beam search:
  `start(encoder_tensors, max_length) -> (memory, state)` and
  `step(token_ids, state, memory) -> (logits, state)`. `memory` is what decoding
  reads but never changes (keys, caches of the source); `state` is the per-hypothesis
  cache that beam search reorders.

Encoders and decoders are registered by name (`register_encoder`, `register_decoder`),
each with a config dataclass that is saved next to the weights, so a new family is
one file that registers itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import tensorflow as tf

from s2s_zoo.registry import registrar

TensorDict = dict[str, tf.Tensor]


@dataclass
class EncoderOutput:
    """What every encoder hands to a decoder (symbolic Keras tensors)."""

    memory: Any  # [batch, time, memory_dim]
    mask: Any  # [batch, time] bool: False at padding positions
    summary: list | None = None  # vectors [batch, d] that sum up the source, or None
    # token encoders: the [batch, time] int ids at each memory position (0 = padding), for
    # decoders that copy source tokens (pointer-generator); None for images and audio
    source_ids: Any = None
    # named tensors for decoders that know this encoder (e.g. the source token ids and
    # per-token vectors a copying decoder points at); decoders that need none ignore them
    extras: dict[str, Any] | None = None


class Encoder:
    """Base class of encoders: a config, the Keras inputs it takes, and its graph.

    `source_features` names what the encoder reads; a task's preprocessor produces
    exactly one kind of source features, and the model builder checks they agree.
    """

    type_name: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    source_features: ClassVar[str] = ""

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def memory_dim(self) -> int:
        raise NotImplementedError

    def inputs(self) -> list:
        """The Keras inputs of the training graph's source side, in feeding order."""
        raise NotImplementedError

    def __call__(self, inputs: list) -> EncoderOutput:
        raise NotImplementedError

    @property
    def max_source_positions(self) -> int | None:
        """Longest source (in memory positions) the encoder supports; None: no limit."""
        return None

    def memory_to_source(self, weights: tf.Tensor, source_lengths: tf.Tensor) -> tf.Tensor:
        """Reorder the last axis of `weights` (e.g. attention [batch, target, memory])
        from memory positions to source positions, for `source_lengths` [batch] real
        positions each. The identity unless the encoder reorders its input."""
        return weights


class Decoder:
    """Base class of decoders: teacher forcing and the decoder-step interface."""

    type_name: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def __init__(self, config: Any, memory_dim: int) -> None:
        self.config = config
        self.memory_dim = memory_dim

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def has_attention(self) -> bool:
        """Whether `step` leaves the last step's attention weights in `state["attention"]`."""
        return False

    @classmethod
    def requires_joint_vocabulary(cls, config: Any) -> bool:
        """Whether a decoder with `config` shares token ids with the source side, so
        source and target must use one joint vocabulary (one tokenizer model)."""
        return False

    @property
    def max_target_positions(self) -> int | None:
        """Most output tokens (EOS included) `step` supports; None: no limit."""
        return None

    def output_bias(self):
        """The bias variable of the vocabulary logits, for `training.priors` to start at the
        target unigram distribution; None (the default): leave the decoder as built."""
        return None

    def share_source_embedding(self, encoder: Encoder) -> None:
        """Hook for decoders that tie their embedding with the encoder's; default: none."""

    def teacher_forcing(self, target_ids, encoded: EncoderOutput):
        """[batch, time] target input ids -> [batch, time, vocab] float32 logits."""
        raise NotImplementedError

    def encoder_tensors(self, encoded: EncoderOutput) -> list:
        """The tensors decoding needs from the encoder (outputs of the encoder model)."""
        raise NotImplementedError

    def start(
        self, tensors: list[tf.Tensor], max_length: tf.Tensor | int | None
    ) -> tuple[TensorDict, TensorDict]:
        """Encoder tensors -> (memory, initial state); `max_length` sizes fixed caches."""
        raise NotImplementedError

    def step(
        self, token_ids: tf.Tensor, state: TensorDict, memory: TensorDict
    ) -> tuple[tf.Tensor, TensorDict]:
        raise NotImplementedError


ENCODERS: dict[str, type[Encoder]] = {}
DECODERS: dict[str, type[Decoder]] = {}
# class decorators: make an encoder / a decoder buildable by name (catalog, configs, CLI)
register_encoder = registrar(ENCODERS, "type_name")
register_decoder = registrar(DECODERS, "type_name")


def config_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls.config_class)}


def make_config(cls: type, values: dict[str, Any], what: str) -> Any:
    """`cls.config_class(**values)`, refusing unknown keys with a message naming them."""
    unknown = sorted(set(values) - config_fields(cls))
    if unknown:
        raise ValueError(
            f"unknown config fields for {what} {cls.type_name!r}: {unknown}; "
            f"known: {sorted(config_fields(cls))}"
        )
    return cls.config_class(**values)


def masked_mean(x, mask):
    """Mean over time of `x` [B, T, D] where `mask` [B, T] is True."""
    weights = keras.ops.cast(mask, x.dtype)[:, :, None]
    return keras.ops.sum(x * weights, axis=1) / keras.ops.maximum(
        keras.ops.sum(weights, axis=1), 1.0
    )
