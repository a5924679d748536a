"""Raw strings in, strings and scores out: the functions that become serving signatures.

`Seq2SeqInference` joins the shared preprocessor, a model's encode/step views and
the searches. Its methods are `tf.function`s with fixed input signatures; the
exporter adds exactly these as SavedModel endpoints, so what tests call in
process is what TF Serving runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from s2s_zoo.decoding import beam_search, greedy_search, max_output_lengths
from s2s_zoo.models.base import Seq2SeqModel

MAX_REQUEST_BEAM_SIZE = 64


@dataclass
class DecodingConfig:
    """Decoding settings baked into the exported `serving_default` / `beam` signatures."""

    beam_size: int = 4
    length_penalty: float = 0.6
    num_hypotheses: int = 4
    max_length_ratio: float = 2.0
    max_length_offset: int = 10
    max_length_cap: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.beam_size <= MAX_REQUEST_BEAM_SIZE:
            raise ValueError(f"beam_size must be in [1, {MAX_REQUEST_BEAM_SIZE}]")
        if not 1 <= self.num_hypotheses <= self.beam_size:
            raise ValueError("num_hypotheses must be in [1, beam_size]")
        if self.max_length_cap < 1:
            raise ValueError("max_length_cap must be at least 1")


TEXT_INPUT = tf.TensorSpec([None], tf.string, name="inputs")
INT_SCALAR = tf.TensorSpec([], tf.int32)


class Seq2SeqInference(tf.Module):
    """Decoding endpoints over one preprocessor and one model."""

    def __init__(
        self, preprocessor: TextPreprocessor, model: Seq2SeqModel, decoding: DecodingConfig
    ) -> None:
        super().__init__(name="seq2seq_inference")
        self.preprocessor = preprocessor
        self.model = model
        self.decoding = decoding
        self.greedy = tf.function(self._greedy, input_signature=[TEXT_INPUT])
        self.beam = tf.function(self._beam, input_signature=[TEXT_INPUT])
        self.nbest = tf.function(
            self._nbest,
            input_signature=[
                TEXT_INPUT,
                tf.TensorSpec([], tf.int32, name="beam_size"),
                tf.TensorSpec([], tf.int32, name="num_hypotheses"),
                tf.TensorSpec([], tf.int32, name="max_length"),
            ],
        )

    def _encode(self, texts: tf.Tensor, max_length: tf.Tensor | None = None):
        source_ids = self.preprocessor.source_ids(texts)
        source_lengths = tf.reduce_sum(tf.cast(source_ids != PAD_ID, tf.int32), axis=1)
        d = self.decoding
        limits = max_output_lengths(
            source_lengths, d.max_length_ratio, d.max_length_offset, d.max_length_cap
        )
        if max_length is not None:  # a per-request cap, never above the exported cap
            limits = tf.where(max_length > 0, tf.minimum(limits, max_length), limits)
        memory, state = self.model.encode(source_ids, tf.reduce_max(limits))
        return memory, state, limits

    def _strings(self, ids: tf.Tensor, content_lengths: tf.Tensor) -> tf.Tensor:
        return self.preprocessor.detokenize(ids, content_lengths)

    def _best_outputs(self, ids, scores, content_lengths) -> dict[str, tf.Tensor]:
        return {
            "outputs": self._strings(ids, content_lengths),
            "scores": scores,
            "lengths": content_lengths,
            "output_tokens": self.preprocessor.target_pieces(ids, content_lengths),
        }

    def _greedy(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        memory, state, limits = self._encode(inputs)
        result = greedy_search(self.model.step, state, memory, limits, BOS_ID, EOS_ID, PAD_ID)
        return self._best_outputs(result.ids, result.scores, result.content_lengths)

    def _run_beam(self, inputs, beam_size, num_hypotheses, max_length=None):
        memory, state, limits = self._encode(inputs, max_length)
        result = beam_search(
            self.model.step,
            state,
            memory,
            limits,
            BOS_ID,
            EOS_ID,
            beam_size=beam_size,
            length_penalty=self.decoding.length_penalty,
            num_hypotheses=num_hypotheses,
            pad_id=PAD_ID,
        )
        outputs = self._best_outputs(
            result.ids[:, 0], result.scores[:, 0], result.content_lengths[:, 0]
        )
        outputs["nbest_outputs"] = self._strings(result.ids, result.content_lengths)
        outputs["nbest_scores"] = result.scores
        return outputs

    def _beam(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        d = self.decoding
        return self._run_beam(inputs, d.beam_size, d.num_hypotheses)

    def _nbest(
        self,
        inputs: tf.Tensor,
        beam_size: tf.Tensor,
        num_hypotheses: tf.Tensor,
        max_length: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        checks = [
            tf.debugging.assert_greater_equal(beam_size, 1, message="beam_size must be at least 1"),
            tf.debugging.assert_less_equal(
                beam_size,
                MAX_REQUEST_BEAM_SIZE,
                message=f"beam_size must be at most {MAX_REQUEST_BEAM_SIZE}",
            ),
            tf.debugging.assert_greater_equal(
                num_hypotheses, 1, message="num_hypotheses must be at least 1"
            ),
            tf.debugging.assert_less_equal(
                num_hypotheses, beam_size, message="num_hypotheses must not exceed beam_size"
            ),
        ]
        with tf.control_dependencies(checks):
            beam_size = tf.identity(beam_size)
        return self._run_beam(inputs, beam_size, num_hypotheses, max_length)
