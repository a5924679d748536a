"""An encoder-decoder model: any registered encoder joined to any registered decoder.

`Seq2SeqModel` builds three views that share weights:
- `training_model`: functional `[*source inputs, target_ids] -> logits` (teacher forcing);
- `encoder_model`: source inputs -> the tensors the decoder needs at decoding time,
  then the number of real memory positions per item (the sum of the memory mask);
- `run_encoder(source) -> (tensors, memory_lengths)`, `start(tensors, max_length)`
  and `step(token_ids, state, memory)`, the decoder-step interface that greedy and
  beam search run on (`encode` = `run_encoder` + `start`).

Memory positions are what decoding length limits scale with, for every modality:
text tokens (EOS included), image grid cells, audio frames after subsampling.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from s2s_zoo.models.base import Decoder, Encoder, TensorDict


@dataclass
class ModelConfig:
    """Which encoder and decoder, and their configs: enough to rebuild the architecture."""

    encoder_type: str
    encoder: Any
    decoder_type: str
    decoder: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": {"type": self.encoder_type, "config": dataclasses.asdict(self.encoder)},
            "decoder": {"type": self.decoder_type, "config": dataclasses.asdict(self.decoder)},
        }


class Seq2SeqModel:
    """Joins an encoder and a decoder whose memory contract matches.

    >>> from s2s_zoo.models.registry import build_model
    >>> model = build_model("rnn", {"vocab_size": 40}, "transformer",
    ...                     {"vocab_size": 30, "hidden_dim": 16, "intermediate_dim": 32,
    ...                      "num_heads": 2, "decoder_layers": 1})
    >>> model.training_model.output.shape
    (None, None, 30)
    """

    def __init__(self, encoder: Encoder, decoder: Decoder, name: str = "seq2seq") -> None:
        self.encoder, self.decoder = encoder, decoder
        decoder.share_source_embedding(encoder)
        source_inputs = encoder.inputs()
        target_ids = keras.Input((None,), dtype="int32", name="target_ids")
        encoded = encoder(source_inputs)
        logits = decoder.teacher_forcing(target_ids, encoded)
        self.training_model = keras.Model([*source_inputs, target_ids], logits, name=name)
        memory_lengths = keras.ops.sum(keras.ops.cast(encoded.mask, "int32"), axis=1)
        self.encoder_model = keras.Model(
            source_inputs if len(source_inputs) > 1 else source_inputs[0],
            [*decoder.encoder_tensors(encoded), memory_lengths],
            name=f"{name}_encoder",
        )
        self.num_source_inputs = len(source_inputs)

    @property
    def config(self) -> ModelConfig:
        return ModelConfig(
            self.encoder.type_name, self.encoder.config, self.decoder.type_name, self.decoder.config
        )

    @property
    def source_features(self) -> str:
        return self.encoder.source_features

    @property
    def has_attention(self) -> bool:
        """Whether `step` leaves the last step's attention weights in `state["attention"]`."""
        return self.decoder.has_attention

    @property
    def target_vocab_size(self) -> int:
        return self.decoder.vocab_size

    @property
    def requires_joint_vocabulary(self) -> bool:
        """Source and target ids index one shared embedding: one vocabulary for both."""
        return self.decoder.requires_joint_vocabulary(self.decoder.config)

    @property
    def max_output_length(self) -> int | None:
        """Most output tokens (EOS included) the decoder supports; None: no limit."""
        return self.decoder.max_target_positions

    @property
    def max_source_length(self) -> int | None:
        """Longest source (memory positions) the encoder supports; None: no limit."""
        return self.encoder.max_source_positions

    def count_params(self) -> int:
        return self.training_model.count_params()

    def config_json(self) -> str:
        """Encoder + decoder types and configs as JSON; `build_from_json` rebuilds them."""
        return json.dumps(self.config.to_dict(), indent=2, sort_keys=True)

    def run_encoder(self, source: tf.Tensor | tuple | list) -> tuple[list, tf.Tensor]:
        """Source features -> (the decoder's encoder tensors, real memory positions [batch])."""
        source = list(source) if isinstance(source, tuple | list) else source
        batch = tf.shape(source[0] if isinstance(source, list) else source)[0]
        # An empty request runs the encoder on one zero row, then keeps none of it: some
        # CPU kernels reject a zero-sized batch (oneDNN's fused Conv2D+ReLU in the speech
        # encoder fails "input depth must be evenly divisible by filter depth").
        missing = 1 - tf.minimum(batch, 1)  # 1 for an empty batch, else 0

        def one_row_at_least(x):
            return tf.concat([x, tf.zeros(tf.concat([[missing], tf.shape(x)[1:]], 0), x.dtype)], 0)

        padded = tf.nest.map_structure(one_row_at_least, source)
        *tensors, memory_lengths = self.encoder_model(padded, training=False)
        tensors = [t[:batch] for t in tensors]
        return tensors, tf.cast(memory_lengths[:batch], tf.int32)

    def start(
        self, tensors: list, max_length: tf.Tensor | int | None = None
    ) -> tuple[TensorDict, TensorDict]:
        """Encoder tensors -> (memory, initial decoder state); `max_length`: the most steps
        the search will take, for decoders that preallocate by it (none of the built-in ones)."""
        return self.decoder.start(tensors, max_length)

    def encode(
        self, source: tf.Tensor | tuple | list, max_length: tf.Tensor | int | None = None
    ) -> tuple[TensorDict, TensorDict]:
        """Source features -> (memory, initial decoder state); `max_length` as in `start`."""
        tensors, _ = self.run_encoder(source)
        return self.start(tensors, max_length)

    def step(
        self, token_ids: tf.Tensor, state: TensorDict, memory: TensorDict
    ) -> tuple[tf.Tensor, TensorDict]:
        return self.decoder.step(token_ids, state, memory)
