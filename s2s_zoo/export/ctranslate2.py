"""CTranslate2 export of the Transformer family, and decoding with the result.

`export_ctranslate2` fills `ctranslate2.specs.TransformerSpec` from our Keras weights
and saves a CTranslate2 model directory (`model.bin`, `config.json`, the vocabularies
as CTranslate2 writes them), plus what decoding needs from us: the SentencePiece
models (`source.spm.model`, `target.spm.model`) and `s2s_zoo.json` (the model,
preprocessor and decoding configs, so length limits and truncation match the
SavedModel's). `CTranslate2Inference` decodes with `ctranslate2.Translator`,
tokenizing with our own in-graph tokenizer (`TextPreprocessor`), so the source ids,
the escape of unknown characters, EOS and truncation are exactly the model's.

Why the math matches (each point is a place a converter can silently go wrong):
- positions: the table is computed by calling our keras-hub position layer on
  `max_positions` steps (keras-hub's sinusoid interleaves sin/cos, CTranslate2's
  built-in one concatenates them), or is the learned table itself;
- embeddings are scaled by sqrt(hidden_dim) on both sides (`scale_embeddings`);
- keras MultiHeadAttention kernels [d, heads, head_dim] flatten head-major, which is
  CTranslate2's head split; Q/K/V are fused as CTranslate2 expects ([out, in]);
- one layer norm epsilon (checked equal everywhere), pre-LN or post-LN per side,
  the final norms only with pre-LN (as our encoder/decoder apply them);
- the output projection is the tied embedding (no bias) or our Dense (with bias).

Decoding differs from our searches in two documented ways: CTranslate2 renormalises
the log-probabilities after banning pad/unk/bos (ours sets them to -1e9 without
renormalising), so scores differ slightly while the greedy tokens are the same; and
its beam search normalises scores by length**alpha, not by the GNMT penalty ours
uses, so beam outputs can differ from the SavedModel's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2s_zoo.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.seq2seq import Seq2SeqModel

if TYPE_CHECKING:
    import ctranslate2

META_FILE = "s2s_zoo.json"
SOURCE_SPM = "source.spm.model"
TARGET_SPM = "target.spm.model"
# the keras activation names CTranslate2 has an exact counterpart for
_ACTIVATIONS = {"relu": "RELU", "gelu": "GELU"}


def _ct2():
    """The optional `ctranslate2` package, or an error saying which extra installs it."""
    try:
        import ctranslate2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "CTranslate2 is not installed: pip install 's2s-zoo[ctranslate2]'"
        ) from error
    return ctranslate2


def check_convertible(model: Seq2SeqModel) -> None:
    """Refuse, naming the family, any model CTranslate2's Transformer spec cannot express."""
    encoder, decoder = model.encoder.type_name, model.decoder.type_name
    if (encoder, decoder) != ("transformer", "transformer"):
        raise ValueError(
            "CTranslate2 export supports the Transformer family only (encoder and decoder "
            f"'transformer'); this model is encoder {encoder!r} + decoder {decoder!r}"
        )
    if model.decoder.memory_projection is not None:
        raise ValueError(
            "CTranslate2 export needs the encoder and decoder to have the same hidden_dim "
            f"({model.encoder.config.hidden_dim} != {model.decoder.config.hidden_dim}): "
            "CTranslate2 has no projection between them"
        )
    if getattr(model.decoder.token_embedding, "logit_soft_cap", None) is not None:
        raise ValueError("CTranslate2 export does not support soft-capped logits")


def _numpy(variable) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _set_linear(spec, kernel, bias) -> None:
    """A Dense kernel [in, out] and bias [out] -> CTranslate2 linear weight [out, in]."""
    spec.weight = np.ascontiguousarray(_numpy(kernel).T)
    spec.bias = _numpy(bias)


def _set_fused(spec, denses) -> None:
    """Several EinsumDense/Dense projections of one input, stacked on the output axis."""
    weights, biases = [], []
    for dense in denses:
        kernel = _numpy(dense.kernel)
        weights.append(kernel.reshape(kernel.shape[0], -1).T)
        biases.append(_numpy(dense.bias).reshape(-1))
    spec.weight = np.ascontiguousarray(np.concatenate(weights, axis=0))
    spec.bias = np.concatenate(biases, axis=0)


def _set_norm(spec, layer, epsilons: set) -> None:
    spec.gamma = _numpy(layer.gamma)
    spec.beta = _numpy(layer.beta)
    epsilons.add(float(layer.epsilon))


def _set_layer(spec, layer, epsilons: set) -> None:
    """One keras-hub encoder or decoder layer: self-attention, cross-attention (decoder
    layers only), feed-forward."""
    _set_attention(
        spec.self_attention,
        layer._self_attention_layer,
        layer._self_attention_layer_norm,
        epsilons,
        self_attention=True,
    )
    cross = getattr(layer, "_cross_attention_layer", None)
    if cross is not None:
        _set_attention(
            spec.attention, cross, layer._cross_attention_layer_norm, epsilons,
            self_attention=False,
        )  # fmt: skip
    _set_ffn(spec.ffn, layer, epsilons)


def _set_attention(spec, layer, norm, epsilons: set, self_attention: bool) -> None:
    """keras MultiHeadAttention: query/key/value kernels [d, heads, head_dim] flatten
    head-major, exactly how CTranslate2 splits its projections into heads."""
    q, k, v = layer._query_dense, layer._key_dense, layer._value_dense
    if self_attention:
        _set_fused(spec.linear[0], [q, k, v])
    else:
        _set_fused(spec.linear[0], [q])
        _set_fused(spec.linear[1], [k, v])
    out = layer._output_dense  # kernel [heads, head_dim, d]: inputs are the heads, flattened
    kernel = _numpy(out.kernel)
    spec.linear[-1].weight = np.ascontiguousarray(kernel.reshape(-1, kernel.shape[-1]).T)
    spec.linear[-1].bias = _numpy(out.bias)
    _set_norm(spec.layer_norm, norm, epsilons)


def _set_ffn(spec, layer, epsilons: set) -> None:
    _set_linear(
        spec.linear_0,
        layer._feedforward_intermediate_dense.kernel,
        layer._feedforward_intermediate_dense.bias,
    )
    _set_linear(
        spec.linear_1, layer._feedforward_output_dense.kernel, layer._feedforward_output_dense.bias
    )
    _set_norm(spec.layer_norm, layer._feedforward_layer_norm, epsilons)


def position_table(layer, max_positions: int, hidden_dim: int) -> np.ndarray:
    """[max_positions, hidden_dim] what our position layer adds at steps 0.. (either scheme)."""
    zeros = np.zeros((1, max_positions, hidden_dim), np.float32)
    return np.ascontiguousarray(_numpy(layer(zeros, start_index=0))[0])


def _activation(layers_: list, common_spec) -> Any:
    """The one feed-forward activation of `layers_` as CTranslate2's enum (relu or gelu)."""
    names = {getattr(layer.activation, "__name__", repr(layer.activation)) for layer in layers_}
    if len(names) != 1 or next(iter(names)) not in _ACTIVATIONS:
        raise ValueError(f"CTranslate2 export supports relu or gelu activations, not {names}")
    return getattr(common_spec.Activation, _ACTIVATIONS[names.pop()])


def vocabulary(proto: bytes) -> list[str]:
    """A SentencePiece model's pieces in id order: CTranslate2's token <-> id mapping."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=proto)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def transformer_spec(inference: Seq2SeqInference) -> ctranslate2.specs.TransformerSpec:
    """Our Transformer weights as a validated `ctranslate2.specs.TransformerSpec`."""
    _ct2()
    from ctranslate2.specs import common_spec, transformer_spec

    model = inference.model
    check_convertible(model)
    pre = inference.preprocessor
    if not hasattr(pre, "source_proto"):
        raise ValueError("CTranslate2 export needs a text preprocessor (source tokens)")
    encoder, decoder = model.encoder, model.decoder
    ec, dc = encoder.config, decoder.config
    epsilons: set[float] = set()

    enc_spec = transformer_spec.TransformerEncoderSpec(
        ec.encoder_layers,
        ec.num_heads,
        pre_norm=ec.normalize_first,
        activation=_activation(encoder.layers, common_spec),
    )
    dec_spec = transformer_spec.TransformerDecoderSpec(
        dc.decoder_layers,
        dc.num_heads,
        pre_norm=dc.normalize_first,
        activation=_activation(decoder.layers, common_spec),
    )

    enc_spec.embeddings[0].weight = _numpy(encoder.token_embedding.embeddings)
    enc_spec.scale_embeddings = True  # x sqrt(hidden_dim), as `embed_tokens`
    enc_spec.position_encodings.encodings = position_table(
        encoder.positions, ec.max_positions, ec.hidden_dim
    )
    for spec, layer in zip(enc_spec.layer, encoder.layers, strict=True):
        _set_layer(spec, layer, epsilons)
    if ec.normalize_first:
        _set_norm(enc_spec.layer_norm, encoder.norm, epsilons)

    target_embedding = _numpy(decoder.token_embedding.embeddings)
    dec_spec.embeddings.weight = target_embedding
    dec_spec.scale_embeddings = True
    dec_spec.position_encodings.encodings = position_table(
        decoder.positions, dc.max_positions, dc.hidden_dim
    )
    for spec, layer in zip(dec_spec.layer, decoder.layers, strict=True):
        _set_layer(spec, layer, epsilons)
    if dc.normalize_first:
        _set_norm(dec_spec.layer_norm, decoder.norm, epsilons)
    if decoder.output_projection is None:  # tied: logits = x @ embeddings^T, no bias
        dec_spec.projection.weight = target_embedding
    else:
        _set_linear(
            dec_spec.projection, decoder.output_projection.kernel, decoder.output_projection.bias
        )

    if len(epsilons) != 1:
        raise ValueError(f"CTranslate2 has one layer norm epsilon; this model uses {epsilons}")
    spec = transformer_spec.TransformerSpec(enc_spec, dec_spec)
    source_vocab, target_vocab = vocabulary(pre.source_proto), vocabulary(pre.target_proto)
    spec.register_source_vocabulary(source_vocab)
    spec.register_target_vocabulary(target_vocab)
    config = spec.config
    config.layer_norm_epsilon = epsilons.pop()
    config.unk_token, config.bos_token = target_vocab[UNK_ID], target_vocab[BOS_ID]
    config.eos_token, config.decoder_start_token = target_vocab[EOS_ID], target_vocab[BOS_ID]
    config.add_source_bos = config.add_source_eos = False  # the preprocessor adds EOS
    spec.validate()
    return spec


def export_ctranslate2(
    inference: Seq2SeqInference,
    out: str | Path,
    quantization: str | None = None,
    force: bool = False,
) -> Path:
    """Write `inference` as a CTranslate2 model directory `out` (never half-written: built
    beside it, then renamed into place). `quantization` (e.g. "int8") is CTranslate2's
    weight type at save time; `force` replaces an existing `out`."""
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass force=True (--force) to replace it")
    spec = transformer_spec(inference)
    spec.optimize(quantization=quantization)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex}"
    try:
        tmp.mkdir()
        spec.save(str(tmp))
        pre = inference.preprocessor
        (tmp / SOURCE_SPM).write_bytes(pre.source_proto)
        (tmp / TARGET_SPM).write_bytes(pre.target_proto)
        meta = {
            "model": json.loads(inference.model.config_json()),
            "preprocessor": pre.get_config(),
            "decoding": dataclasses.asdict(inference.decoding),
            "quantization": quantization,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


@dataclass
class Decoded:
    """Decoding results, best first: `texts`/`scores` [batch][hypotheses], `ids` the token
    ids without EOS, `truncated` source pieces cut per item (0: the whole source read)."""

    texts: list[list[str]]
    scores: list[list[float]]
    ids: list[list[list[int]]]
    truncated: list[int]


class CTranslate2Inference:
    """A CTranslate2 model directory written by `export_ctranslate2`, decoded with our
    tokenizer, length limits and banned tokens (see the module docstring)."""

    def __init__(
        self,
        model_dir: str | Path,
        compute_type: str = "default",
        device: str = "cpu",
        intra_threads: int = 1,
    ) -> None:
        """`intra_threads` defaults to 1: with more, CTranslate2's OpenMP threads fight
        TensorFlow's (our tokenizer runs in the same process); on a shared 2-core CPU one
        tiny-model call took 5.8 s with the default (0: automatic) and 2 ms with 1."""
        from s2s_zoo.data.preprocessor import load_preprocessor

        ct2 = _ct2()
        self.model_dir = Path(model_dir)
        meta_path = self.model_dir / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{self.model_dir} is not a CTranslate2 model written by `s2s-zoo export "
                f"--format ctranslate2` (no {META_FILE})"
            )
        meta = json.loads(meta_path.read_text())
        self.preprocessor = load_preprocessor(self.model_dir, meta["preprocessor"])
        self.decoding = DecodingConfig(**meta["decoding"])
        self.source_vocab = vocabulary(self.preprocessor.source_proto)
        self.target_vocab = vocabulary(self.preprocessor.target_proto)
        self.target_ids = {piece: i for i, piece in enumerate(self.target_vocab)}
        self.translator = ct2.Translator(
            str(self.model_dir),
            device=device,
            compute_type=compute_type,
            intra_threads=intra_threads,
        )
        # our tokenizer's TF ops, traced once: eager ops would cost more than decoding
        import tensorflow as tf

        pre = self.preprocessor
        self._tokenize = tf.function(
            lambda texts: pre.source_ragged_reporting(pre.source_texts(texts)),
            input_signature=[tf.TensorSpec([None], tf.string)],
        )
        self._detokenize = tf.function(
            pre.detokenize,
            input_signature=[
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None], tf.int32),
            ],
        )

    def source_tokens(self, texts: list[str]) -> tuple[list[list[str]], list[int]]:
        """Our preprocessor's source pieces (EOS included, cut to `max_source_length`) and
        how many pieces each text lost to that cut."""
        import tensorflow as tf

        ragged, dropped = self._tokenize(tf.constant(texts, tf.string))
        tokens = [[self.source_vocab[i] for i in row] for row in ragged.to_list()]
        return tokens, [int(n) for n in dropped.numpy()]

    def output_limits(self, tokens: list[list[str]], max_length: int = 0) -> list[int]:
        """Most tokens (EOS included) each item may decode to: `DecodingConfig`'s budget
        over memory positions (the source tokens, EOS included), in float32 as the graph."""
        d = self.decoding
        ratio = np.float32(d.max_length_ratio)
        limits = []
        for row in tokens:
            budget = int(np.ceil(ratio * np.float32(len(row)))) + d.max_length_offset
            limit = min(max(budget, 1), d.max_length_cap)
            limits.append(min(limit, max_length) if max_length > 0 else limit)
        return limits

    def _options(self) -> dict[str, Any]:
        d = self.decoding
        return {
            "disable_unk": True,  # our searches never generate pad, unk or bos
            "suppress_sequences": [[self.target_vocab[PAD_ID]], [self.target_vocab[BOS_ID]]],
            "max_input_length": 0,  # the preprocessor already cut the source
            "no_repeat_ngram_size": d.no_repeat_ngram_size,
            "return_scores": True,
        }

    def _decoded(self, texts_ids: list[list[list[int]]], scores, truncated) -> Decoded:
        flat = [ids for row in texts_ids for ids in row]
        width = max((len(ids) for ids in flat), default=0)
        padded = np.full((len(flat), width), PAD_ID, np.int32)
        for i, ids in enumerate(flat):
            padded[i, : len(ids)] = ids
        lengths = np.array([len(ids) for ids in flat], np.int32)
        strings = self._detokenize(padded, lengths).numpy()
        out, k = [], 0
        for row in texts_ids:
            out.append([s.decode("utf-8") for s in strings[k : k + len(row)]])
            k += len(row)
        return Decoded(out, scores, texts_ids, truncated)

    def _ids(self, hypothesis: list[str]) -> list[int]:
        return [self.target_ids[t] for t in hypothesis]

    def greedy(self, texts: list[str], max_length: int = 0) -> Decoded:
        """Greedy search: token for token what our `greedy` signature returns (an input
        with no text at all excepted: CTranslate2 skips it and returns "")."""
        return self._search(texts, 1, 1, 0.0, 0.0, max_length)

    def beam(
        self,
        texts: list[str],
        beam_size: int | None = None,
        num_hypotheses: int | None = None,
        max_length: int = 0,
    ) -> Decoded:
        """CTranslate2's beam search, scores normalised by length**length_penalty (not the
        GNMT penalty of ours); `max_length` > 0 caps each item's budget further."""
        d = self.decoding
        beam_size = beam_size or d.beam_size
        num_hypotheses = num_hypotheses or min(d.num_hypotheses, beam_size)
        if not 1 <= num_hypotheses <= beam_size:
            raise ValueError("num_hypotheses must be in [1, beam_size]")
        return self._search(
            texts, beam_size, num_hypotheses, d.length_penalty, d.coverage_penalty, max_length
        )

    def _search(self, texts, beam_size, num_hypotheses, length_penalty, coverage_penalty,
                max_length) -> Decoded:  # fmt: skip
        """One `translate_batch` per distinct output budget, so every item decodes within
        its own limit (CTranslate2 takes one maximum length per call)."""
        tokens, truncated = self.source_tokens(texts)
        limits = self.output_limits(tokens, max_length)
        ids: list = [None] * len(texts)
        scores: list = [None] * len(texts)
        for limit in sorted(set(limits)):
            rows = [i for i, n in enumerate(limits) if n == limit]
            results = self.translator.translate_batch(
                [tokens[i] for i in rows],
                beam_size=beam_size,
                num_hypotheses=num_hypotheses,
                length_penalty=length_penalty,
                coverage_penalty=coverage_penalty,
                max_decoding_length=limit,
                # as ours: EOS banned for the first min_length tokens, at most limit - 1
                min_decoding_length=min(self.decoding.min_length, limit - 1),
                **self._options(),
            )
            for i, result in zip(rows, results, strict=True):
                hypotheses = result.hypotheses or [[]]
                ids[i] = [self._ids(h)[:limit] for h in hypotheses]
                scores[i] = [float(s) for s in (result.scores or [0.0])]
        return self._decoded(ids, scores, truncated)

    def score(self, texts: list[str], targets: list[list[int]]) -> list[list[float]]:
        """Per-token log-probabilities of target ids (EOS appended) given each source:
        CTranslate2's `score_batch`, for comparing its math with ours."""
        tokens, _ = self.source_tokens(texts)
        target_tokens = [[self.target_vocab[i] for i in ids] for ids in targets]
        results = self.translator.score_batch(tokens, target_tokens, max_input_length=0)
        return [list(map(float, r.log_probs)) for r in results]
