"""Raw strings in, strings and scores out: the functions that become serving signatures.

`Seq2SeqInference` joins the shared preprocessor, a model's encode/step views and
the searches. Its methods are `tf.function`s with fixed input signatures; the
exporter adds exactly these as SavedModel endpoints, so what tests call in
process is what TF Serving runs.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from s2s_zoo.data.preprocessor import TargetText
from s2s_zoo.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from s2s_zoo.decoding import beam_search, decode_steps, greedy_search, max_output_lengths
from s2s_zoo.models.seq2seq import Seq2SeqModel

MAX_REQUEST_BEAM_SIZE = 64


@dataclass
class DecodingConfig:
    """Decoding settings baked into the exported `serving_default` / `beam` signatures.

    Each item may generate at most
    `min(max_length_cap, ceil(max_length_ratio * memory_positions) + max_length_offset)`
    tokens (EOS included), where `memory_positions` is the number of real encoder
    memory positions of that item (the sum of the encoder's memory mask), whatever
    the modality:
    - text: source tokens, EOS included (after truncation to `max_source_length`);
    - image: feature-grid cells (fixed per model, e.g. 4 x 16 = 64);
    - audio: feature frames after the encoder's subsampling (4x for `speech_conv_rnn`:
      one position per 40 ms of audio with 10 ms frames).
    Models whose decoder has a position table (Transformer) clamp `max_length_cap`
    to its size when the inference object is built.
    """

    beam_size: int = 4
    length_penalty: float = 0.6
    num_hypotheses: int = 4
    max_length_ratio: float = 2.0
    max_length_offset: int = 10
    max_length_cap: int = 256
    # output controls of the shared search (0 = off; see s2s_zoo.decoding.search)
    min_length: int = 0  # no EOS before this many tokens
    no_repeat_ngram_size: int = 0  # never repeat an n-gram of this size
    coverage_penalty: float = 0.0  # GNMT coverage penalty beta, beam search only

    def __post_init__(self) -> None:
        if not 1 <= self.beam_size <= MAX_REQUEST_BEAM_SIZE:
            raise ValueError(f"beam_size must be in [1, {MAX_REQUEST_BEAM_SIZE}]")
        if not 1 <= self.num_hypotheses <= self.beam_size:
            raise ValueError("num_hypotheses must be in [1, beam_size]")
        if self.max_length_cap < 1:
            raise ValueError("max_length_cap must be at least 1")
        if self.min_length < 0:
            raise ValueError(f"min_length must be >= 0 (0 = off), got {self.min_length}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(
                f"no_repeat_ngram_size must be >= 0 (0 = off), got {self.no_repeat_ngram_size}"
            )
        if self.coverage_penalty < 0:
            raise ValueError(
                f"coverage_penalty must be >= 0 (0 = off), got {self.coverage_penalty}"
            )


class Seq2SeqInference(tf.Module):
    """Decoding endpoints over one preprocessor and one model.

    The inputs are string tensors named by the preprocessor's `input_specs()`:
    `inputs` (text), `images` (JPEG/PNG bytes), `audio` (WAV bytes), or several, e.g.
    `context` [batch, turns] and `kb` [batch, facts] for dialogue; every signature
    takes them in that order and hands them all to `preprocessor.encode_source_reporting`.
    Image and audio endpoints also return `errors`: "" for a good item, else why it
    could not be read; such items get an empty output and score 0 while the rest of
    the batch decodes normally.
    """

    def __init__(
        self, preprocessor: TargetText, model: Seq2SeqModel, decoding: DecodingConfig
    ) -> None:
        super().__init__(name="seq2seq_inference")
        if preprocessor.source_features != model.source_features:
            raise ValueError(
                f"the preprocessor makes {preprocessor.source_features!r} sources but the "
                f"model's encoder reads {model.source_features!r}"
            )
        _check_joint_vocabulary(preprocessor, model)
        _fit_lengths_to_positions(preprocessor, model)
        most = model.max_output_length
        if most is not None and decoding.max_length_cap > most:
            decoding = dataclasses.replace(decoding, max_length_cap=most)
        if decoding.coverage_penalty and not model.has_attention:
            raise ValueError(
                "coverage_penalty needs a model whose decoder attends over the source; "
                f"this {model.decoder.type_name!r} decoder leaves no attention weights"
            )
        self.preprocessor = preprocessor
        self.model = model
        self.decoding = decoding
        inputs = preprocessor.input_specs()
        self.greedy = tf.function(self._greedy, input_signature=inputs)
        self.beam = tf.function(self._beam, input_signature=inputs)
        if self.has_alignment:
            self.alignment = tf.function(self._alignment, input_signature=inputs)
        if preprocessor.exports_preprocess:
            self.preprocess = tf.function(preprocessor.preprocess_outputs, input_signature=inputs)
        self.nbest = tf.function(
            self._nbest,
            input_signature=[
                *inputs,
                tf.TensorSpec([], tf.int32, name="beam_size"),
                tf.TensorSpec([], tf.int32, name="num_hypotheses"),
                tf.TensorSpec([], tf.int32, name="max_length"),
            ],
        )

    @property
    def signatures(self) -> dict:
        """Exported signature name -> function; `alignment` only for attention models."""
        named = {
            "serving_default": self.beam,
            "beam": self.beam,
            "greedy": self.greedy,
            "nbest": self.nbest,
        }
        if self.has_alignment:
            named["alignment"] = self.alignment
        if self.preprocessor.exports_preprocess:
            named["preprocess"] = self.preprocess
        return named

    @property
    def input_name(self) -> str:
        """The one serving input of single-input models (see `input_names`)."""
        names = self.input_names
        if len(names) != 1:
            raise ValueError(f"this model takes several inputs: {names}")
        return names[0]

    @property
    def input_names(self) -> list[str]:
        """The serving inputs, in signature order (`preprocessor.input_specs()`)."""
        return [spec.name for spec in self.preprocessor.input_specs()]

    @property
    def has_alignment(self) -> bool:
        """Attention over source tokens a heatmap can label (text sources)."""
        return self.model.has_attention and self.preprocessor.supports_alignment

    def limits(self) -> dict[str, Any]:
        """The effective length limits of the exported signatures (for `s2s-zoo inspect`)."""
        d = self.decoding
        return {
            "max_source_tokens": getattr(self.preprocessor, "max_source_length", None),
            "max_output_tokens": d.max_length_cap,
            "output_budget": f"min({d.max_length_cap}, ceil({d.max_length_ratio} x encoder "
            f"memory positions) + {d.max_length_offset})",
        }

    def _limits(self, memory_lengths, errors, max_length=None) -> tf.Tensor:
        d = self.decoding
        limits = max_output_lengths(
            memory_lengths, d.max_length_ratio, d.max_length_offset, d.max_length_cap
        )
        if max_length is not None:  # a per-request cap, never above the exported cap
            limits = tf.where(max_length > 0, tf.minimum(limits, max_length), limits)
        if errors is not None:  # unreadable items: no decoding steps at all
            limits = tf.where(errors == "", limits, 0)
        return limits

    def output_limits(self, *inputs: tf.Tensor) -> tf.Tensor:
        """[batch] most tokens (EOS included) each input may decode to (see DecodingConfig)."""
        source, _, errors, _ = self.preprocessor.encode_source_reporting(*inputs)
        _, memory_lengths = self.model.run_encoder(source)
        return self._limits(memory_lengths, errors)

    def _encode(self, inputs: tuple[tf.Tensor, ...], max_length: tf.Tensor | None = None):
        source, _, errors, truncated = self.preprocessor.encode_source_reporting(*inputs)
        tensors, memory_lengths = self.model.run_encoder(source)
        limits = self._limits(memory_lengths, errors, max_length)
        memory, state = self.model.start(tensors, decode_steps(limits))
        return memory, state, limits, (errors, truncated)

    def _controls(self) -> dict:
        """The search's output controls from the decoding config (greedy and beam)."""
        d = self.decoding
        return {"min_length": d.min_length, "no_repeat_ngram_size": d.no_repeat_ngram_size}

    def _coverage(self, memory: dict) -> dict:
        """Beam search's coverage penalty and the (untiled) source mask it sums over."""
        if not self.decoding.coverage_penalty:
            return {}
        return {
            "coverage_penalty": self.decoding.coverage_penalty,
            "source_mask": memory.get("mask"),
        }

    def _with_reports(self, outputs: dict[str, tf.Tensor], reports) -> dict[str, tf.Tensor]:
        """Blank the outputs of unreadable items and report why (image/audio `errors`),
        and report how many source pieces each item lost to the length limit (text
        `source_truncated_tokens`: 0 when the whole source was read)."""
        errors, truncated = reports
        if truncated is not None:
            outputs["source_truncated_tokens"] = truncated
        if errors is None:
            return outputs
        bad = errors != ""
        for key, value in outputs.items():
            mask = tf.reshape(bad, [-1] + [1] * (len(value.shape) - 1))
            empty = (
                tf.zeros_like(value) if value.dtype != tf.string else tf.fill(tf.shape(value), "")
            )
            outputs[key] = tf.where(mask, empty, value)
        outputs["errors"] = errors
        return outputs

    def _strings(self, ids: tf.Tensor, content_lengths: tf.Tensor) -> tf.Tensor:
        return self.preprocessor.detokenize(ids, content_lengths)

    def _best_outputs(self, ids, scores, content_lengths) -> dict[str, tf.Tensor]:
        return {
            "outputs": self._strings(ids, content_lengths),
            "scores": scores,
            "lengths": content_lengths,
            "output_tokens": self.preprocessor.target_pieces(ids, content_lengths),
        }

    def _greedy(self, *inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        memory, state, limits, reports = self._encode(inputs)
        result = greedy_search(
            self.model.step, state, memory, limits, BOS_ID, EOS_ID, PAD_ID, **self._controls()
        )
        outputs = self._best_outputs(result.ids, result.scores, result.content_lengths)
        return self._with_reports(outputs, reports)

    def _run_beam(self, inputs, beam_size, num_hypotheses, max_length=None, record=()):
        memory, state, limits, reports = self._encode(inputs, max_length)
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
            record=record,
            **self._controls(),
            **self._coverage(memory),
        )
        if record:
            return result, reports
        outputs = self._best_outputs(
            result.ids[:, 0], result.scores[:, 0], result.content_lengths[:, 0]
        )
        outputs["nbest_outputs"] = self._strings(result.ids, result.content_lengths)
        outputs["nbest_scores"] = result.scores
        return self._with_reports(outputs, reports)

    def _alignment(self, *inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """Best beam hypothesis with its attention over source pieces, for heatmaps."""
        d = self.decoding
        result, reports = self._run_beam(inputs, d.beam_size, 1, record=("attention",))
        ids, lengths = result.ids[:, 0], result.content_lengths[:, 0]
        outputs = self._best_outputs(ids, result.scores[:, 0], lengths)
        source_ids = self.preprocessor.source_ids(*inputs)
        source_lengths = tf.reduce_sum(tf.cast(source_ids != PAD_ID, tf.int32), axis=1)
        attention = result.records["attention"][:, 0]  # [batch, target, memory]
        # columns in the order of `source_tokens` (e.g. un-reversed for reverse_source)
        outputs["attention"] = self.model.encoder.memory_to_source(attention, source_lengths)
        outputs["source_tokens"] = self.preprocessor.source_pieces(source_ids, source_lengths)
        return self._with_reports(outputs, reports)

    def _beam(self, *inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        d = self.decoding
        return self._run_beam(inputs, d.beam_size, d.num_hypotheses)

    def _nbest(self, *args: tf.Tensor) -> dict[str, tf.Tensor]:
        """(*inputs, beam_size, num_hypotheses, max_length): per-request beam search."""
        *inputs, beam_size, num_hypotheses, max_length = args
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
            tf.debugging.assert_greater_equal(
                max_length, 0, message="max_length must be >= 0 (0 means no cap)"
            ),
        ]
        with tf.control_dependencies(checks):
            beam_size, max_length = tf.identity(beam_size), tf.identity(max_length)
        return self._run_beam(inputs, beam_size, num_hypotheses, max_length)


def _check_joint_vocabulary(preprocessor: TargetText, model: Seq2SeqModel) -> None:
    """A model that shares token ids across sides (a shared embedding, or copying source
    tokens into its output) needs one tokenizer for both."""
    if not model.requires_joint_vocabulary:
        return
    source = getattr(preprocessor, "source_proto", None)
    if source is None or source != preprocessor.target_proto:
        raise ValueError(
            "this model shares token ids between source and target (a shared embedding, "
            "or copying source tokens into its output), so both sides must share one "
            "vocabulary (ONE joint SentencePiece model), but the preprocessor has "
            + ("no source vocabulary" if source is None else "two different ones")
            + "; train one on sources + targets (Task.make_joint_preprocessor)"
        )


def _fit_lengths_to_positions(preprocessor: TargetText, model: Seq2SeqModel) -> None:
    """Cut source/target lengths to the model's position tables (learned positions end
    there; sinusoidal ones were never trained further). Longer sources are truncated
    by the preprocessor, as any source over `max_source_length` is."""
    for side, attribute, limit in (
        ("source", "max_source_length", model.max_source_length),
        ("target", "max_target_length", model.max_output_length),
    ):
        value = getattr(preprocessor, attribute, None)
        if limit is not None and value is not None and value > limit:
            warnings.warn(
                f"{attribute} {value} exceeds the model's {limit} {side} positions: "
                f"{side}s are cut to {limit} tokens",
                stacklevel=3,
            )
            setattr(preprocessor, attribute, limit)
