"""The one text preprocessor shared by the tf.data pipeline and the exported graph.

Everything here is TF ops (tf-text SentencePiece, ragged ops), so training and
serving tokenize identically and a SavedModel can take raw strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import tensorflow as tf

from s2s_zoo.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, make_tokenizer
from s2s_zoo.registry import registrar

PREPROCESSORS: dict[str, type[TargetText]] = {}
# class decorator: preprocessors are saved by this name and rebuilt from it
register_preprocessor = registrar(PREPROCESSORS, "type_name")


def load_preprocessor(directory: str | Path, config: dict[str, Any]) -> TargetText:
    """Rebuild a preprocessor saved by `TargetText.save` from its config and files."""
    name = config.get("type", "text")
    if name not in PREPROCESSORS:
        raise ValueError(f"unknown preprocessor type {name!r}; registered: {sorted(PREPROCESSORS)}")
    return PREPROCESSORS[name].load(Path(directory), config)


class TargetText(tf.Module):
    """The target side every task shares: text -> subword ids for teacher forcing, and
    decoded ids -> strings. Source-side preprocessors (text, image, audio) extend it.

    Subclasses set `source_features` (what the encoder reads: it must match the
    model's encoder), `input_name` (the serving signature's input) and implement
    `encode_source(inputs) -> (source, source_lengths, errors)` (and, where a source can
    be cut, `encode_source_reporting`, which the serving signatures call), where `errors` is
    None when every input is valid by construction (text), else a [batch] string
    tensor ("" for a good item). `source_lengths` count real source positions for
    the pipeline's use; decoding length limits scale with the *encoder's* memory
    positions instead (see `DecodingConfig`), the same unit for every modality.
    """

    type_name: ClassVar[str] = ""
    source_features: ClassVar[str] = ""
    input_name: ClassVar[str] = ""
    supports_alignment: ClassVar[bool] = False  # source tokens a heatmap can label
    exports_preprocess: ClassVar[bool] = False  # a `preprocess` signature shows the features

    def input_specs(self) -> list[tf.TensorSpec]:
        """The serving signatures' inputs, in call order."""
        return [tf.TensorSpec([None], tf.string, name=self.input_name)]

    def encode_source(self, inputs: tf.Tensor):
        raise NotImplementedError

    def encode_source_reporting(self, *inputs: tf.Tensor):
        """`encode_source` plus a [batch] int32 count of source pieces each item lost to
        the preprocessor's length limit, or None where nothing is ever cut (served as
        the `source_truncated_tokens` output, so a cut is never silent)."""
        return (*self.encode_source(*inputs), None)

    def preprocess_outputs(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """What the encoder sees, for the `preprocess` signature (`exports_preprocess`)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"type": self.type_name, "max_target_length": self.max_target_length}

    def save(self, directory: Path) -> None:
        """Write the vocabulary files this preprocessor is rebuilt from (config apart)."""
        (directory / "target.spm.model").write_bytes(self.target_proto)

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> TargetText:
        raise NotImplementedError

    def __init__(self, target_proto: bytes, max_target_length: int, name: str) -> None:
        super().__init__(name=name)
        if max_target_length < 2:
            raise ValueError("max_target_length must be at least 2")
        self.target_proto = target_proto
        self.max_target_length = max_target_length
        self.target_tokenizer = make_tokenizer(target_proto, name="target_sentencepiece")

    @property
    def target_vocab_size(self) -> int:
        return self.target_tokenizer.vocab_size

    def target_ragged(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Target subword ids, truncated to leave room for BOS/EOS."""
        ids = self.target_tokenizer.tokenize(tf.strings.strip(texts))
        return ids[:, : self.max_target_length - 1]

    def target_in_out_ragged(self, texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """[batch] strings -> ragged (BOS + ids, ids + EOS) for teacher forcing."""
        ids = self.target_ragged(texts)
        bos = tf.fill([ids.nrows(), 1], BOS_ID)
        eos = tf.fill([ids.nrows(), 1], EOS_ID)
        return tf.concat([bos, ids], axis=1), tf.concat([ids, eos], axis=1)

    def target_in_out(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """[batch] strings -> (BOS + ids, ids + EOS), each [batch, time] 0-padded."""
        target_in, target_out = self.target_in_out_ragged(texts)
        return target_in.to_tensor(PAD_ID), target_out.to_tensor(PAD_ID)

    def detokenize(self, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """[..., time] ids with content `lengths` (no EOS) -> [...] strings."""
        shape = tf.shape(lengths)
        flat_ids = tf.reshape(ids, [-1, tf.shape(ids)[-1]])
        ragged = tf.RaggedTensor.from_tensor(flat_ids, lengths=tf.reshape(lengths, [-1]))
        text = self.target_tokenizer.detokenize(ragged)
        return tf.reshape(text, shape)

    def target_pieces(self, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """[batch, time] ids -> [batch, time] subword strings, "" past each length."""
        return _pieces(self.target_tokenizer, ids, lengths)


@register_preprocessor("text")
class TextPreprocessor(TargetText):
    """Turns raw strings into id tensors for the model, and ids back into strings.

    Source ids are the subword ids plus EOS, truncated to `max_source_length`
    (EOS included) so any input, even a 20,000-word one, has a bounded cost; how many
    pieces each input lost is reported (`encode_source_reporting`, and the exports'
    `source_truncated_tokens` output). A model with a position table
    (Transformer) lowers `max_source_length` / `max_target_length` to its size when
    `Seq2SeqInference` is built (with a warning), so truncation is the only effect. Target
    ids give `target_in` (BOS + ids) and `target_out` (ids + EOS) for teacher forcing.
    """

    source_features = "token_ids"
    input_name = "inputs"
    supports_alignment = True

    def __init__(
        self,
        source_proto: bytes,
        target_proto: bytes,
        max_source_length: int = 256,
        max_target_length: int = 256,
    ) -> None:
        super().__init__(target_proto, max_target_length, name="text_preprocessor")
        if max_source_length < 2:
            raise ValueError("max_source_length and max_target_length must be at least 2")
        self.source_proto = source_proto
        self.max_source_length = max_source_length
        if source_proto == target_proto:  # one joint vocabulary: one tokenizer in the graph
            self.source_tokenizer = self.target_tokenizer
        else:
            self.source_tokenizer = make_tokenizer(source_proto, name="source_sentencepiece")

    @property
    def source_vocab_size(self) -> int:
        return self.source_tokenizer.vocab_size

    def source_texts(self, *inputs: tf.Tensor) -> tf.Tensor:
        """The serving inputs as one [batch] string tensor to tokenize."""
        (texts,) = inputs
        return tf.strings.strip(texts)

    def keep_pieces(self, ids: tf.RaggedTensor, keep: int) -> tf.RaggedTensor:
        """At most `keep` pieces of each row: the first ones."""
        return ids[:, :keep]

    def source_ragged_reporting(self, texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """[batch] strings -> (ragged int32 ids, EOS-terminated (never empty); [batch]
        pieces cut beyond `max_source_length`)."""
        ids = self.source_tokenizer.tokenize(texts)
        keep = self.max_source_length - 1  # one position is EOS
        dropped = tf.cast(tf.maximum(ids.row_lengths() - keep, 0), tf.int32)
        ids = self.keep_pieces(ids, keep)
        return tf.concat([ids, tf.fill([ids.nrows(), 1], EOS_ID)], axis=1), dropped

    def source_ragged(self, *inputs: tf.Tensor) -> tf.RaggedTensor:
        """The serving inputs ([batch] strings) -> ragged int32 ids, EOS-terminated (never
        empty)."""
        return self.source_ragged_reporting(self.source_texts(*inputs))[0]

    def encode_source_reporting(self, *inputs: tf.Tensor):
        """[batch] strings -> (source ids [batch, time] int32, EOS-terminated, 0-padded;
        their lengths; no errors: any string is valid; pieces cut per item).

        Always at least one time step: an empty batch gives [0, 1], because Keras RNN
        layers read step 0 of their input and fail on a [0, 0] tensor (any non-empty
        batch has EOS, so this only changes empty requests)."""
        ragged, dropped = self.source_ragged_reporting(self.source_texts(*inputs))
        ids = ragged.to_tensor(default_value=PAD_ID)
        missing = tf.maximum(1 - tf.shape(ids)[1], 0)
        source_ids = tf.pad(ids, [[0, 0], [0, missing]], constant_values=PAD_ID)
        lengths = tf.reduce_sum(tf.cast(source_ids != PAD_ID, tf.int32), axis=1)
        return source_ids, lengths, None, dropped

    def encode_source(self, *inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, None]:
        """`encode_source_reporting` without the truncation counts (this class's: a
        subclass's costlier count is for the signatures, not for training batches)."""
        return TextPreprocessor.encode_source_reporting(self, *inputs)[:3]

    def source_ids(self, *inputs: tf.Tensor) -> tf.Tensor:
        """The serving inputs -> [batch, time] int32 source ids (see `encode_source`)."""
        return self.encode_source(*inputs)[0]

    def source_pieces(self, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Like `target_pieces`, for source ids (EOS shows as "</s>")."""
        return _pieces(self.source_tokenizer, ids, lengths)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_source_length": self.max_source_length}

    def save(self, directory: Path) -> None:
        super().save(directory)
        (directory / "source.spm.model").write_bytes(self.source_proto)

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> TextPreprocessor:
        return cls(
            (directory / "source.spm.model").read_bytes(),
            (directory / "target.spm.model").read_bytes(),
            max_source_length=config["max_source_length"],
            max_target_length=config["max_target_length"],
        )


def _pieces(tokenizer, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    keep = tf.sequence_mask(lengths, tf.shape(ids)[1])
    return tf.where(keep, tokenizer.id_to_string(ids), tf.constant("", tf.string))
