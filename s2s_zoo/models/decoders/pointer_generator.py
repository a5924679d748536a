"""Pointer-generator decoder (See, Liu and Manning 2017, "Get To The Point").

One recurrent layer reads the target embeddings; additive attention over the encoder
memory (optionally with coverage) gives a context; the vocabulary distribution is
V'(V[s_t; c_t] + b) + b' (the paper's two linear layers); and the switch
p_gen = sigmoid(w_c.c_t + w_s.s_t + w_x.x_t + b) mixes generating from it with copying
the attended source token:

    P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{i: source_i = w} a_i

computed in log space by `CopyDistribution`. Source and target share one SentencePiece
vocabulary (the summarization task trains one model on documents and summaries), so a
source id is an output id and no extended vocabulary is needed; the source ids reach
the decoder through `EncoderOutput.source_ids`, which token encoders set.

`step` returns normalised log-probabilities as its "logits": the shared search applies
log_softmax, which leaves log-probabilities unchanged, and so does the training loss
(`SequenceLoss` takes logits too).

Coverage (section 2.3): the attention also sees c_t = sum_{t'<t} a_t', carried in the
step state (`state["coverage"]`, reordered by beam search like any state), and
`coverage_loss_weight` * sum_t sum_i min(a_t,i, c_t,i) (averaged over real target
tokens) is added to the training loss through `Layer.add_loss`, so `model.fit` with the
usual `SequenceLoss` optimises both (in training only: the validation loss stays the
sequence loss). The paper trains without the coverage loss and
adds it, with weight 1.0, for a short final phase: `coverage_loss_weight` is lambda and
`coverage_loss_from_step` the training step it starts at (0: from the start). The step
count is a layer weight, so it is saved with the model and a resumed or fine-tuned run
continues it.

With `copy_source=False` this is the paper's baseline (the same network without the
pointer), which makes the copy/no-copy comparison an exact ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from s2s_zoo.layers.attention import MemoryAttention
from s2s_zoo.layers.copy import CopyDistribution, GenerationProbability
from s2s_zoo.layers.coverage import CoverageAttention, coverage_loss
from s2s_zoo.layers.recurrent import CELLS, check_cell, states_per_layer
from s2s_zoo.models.base import (
    Decoder,
    Encoder,
    EncoderOutput,
    TensorDict,
    masked_mean,
    register_decoder,
)


@dataclass
class PointerGeneratorConfig:
    """A pointer-generator decoder (everything needed to rebuild it)."""

    vocab_size: int = 0
    cell: str = "lstm"
    embedding_dim: int = 128
    decoder_units: int = 256
    attention_units: int = 256
    dropout: float = 0.0
    copy_source: bool = True  # False: the same network without the pointer
    coverage: bool = False
    coverage_loss_weight: float = 1.0  # lambda; used only with coverage
    coverage_loss_from_step: int = 0  # the loss counts from this training step on
    share_embeddings: bool = True  # one embedding for source and target (joint vocabulary)

    def __post_init__(self) -> None:
        check_cell(self.cell)
        if self.coverage_loss_weight < 0:
            raise ValueError(f"coverage_loss_weight must be >= 0, got {self.coverage_loss_weight}")
        if self.coverage_loss_from_step < 0:
            raise ValueError(
                f"coverage_loss_from_step must be >= 0, got {self.coverage_loss_from_step}"
            )


class CoverageLossTerm(layers.Layer):
    """Adds `weight` * coverage loss to the model's losses; passes its first input through.

    The term is a training regulariser: it is added in training calls only, so the
    validation loss stays the sequence loss and is comparable before and after the
    coverage phase. With `from_step` > 0 it counts only once that many training calls are
    done (training batches: with gradient accumulation, micro-batches); the layer counts
    them in a non-trainable weight (one count per step under tf.distribute).

    >>> term = CoverageLossTerm(weight=1.0)
    >>> attention = tf.constant([[[1.0, 0.0], [1.0, 0.0]]])  # step 1 attends again
    >>> coverage = tf.constant([[[0.0, 0.0], [1.0, 0.0]]])  # what step 1 had seen
    >>> mask = tf.constant([[True, True]])
    >>> outputs = term(tf.zeros([1, 2, 3]), attention, coverage, mask, training=True)
    >>> [float(loss) for loss in term.losses]  # min(a, c) summed, over 2 target tokens
    [0.5]
    """

    def __init__(self, weight: float, from_step: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.weight = float(weight)
        self.from_step = int(from_step)
        self.steps = None
        if self.from_step:
            self.steps = self.add_weight(
                shape=(),
                dtype="int64",
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                name="training_steps",
            )

    def call(self, outputs, attention, coverage, target_mask, training=None):
        if not training:
            return outputs
        loss = self.weight * coverage_loss(attention, target_mask, coverage)
        if self.steps is not None:
            done = keras.ops.convert_to_tensor(self.steps)  # training calls before this one
            loss = keras.ops.where(done >= self.from_step, loss, keras.ops.zeros_like(loss))
            with tf.control_dependencies([loss]):
                self.steps.assign_add(1)
        self.add_loss(loss)
        return outputs

    def compute_output_spec(self, outputs, attention, coverage, target_mask, training=None):
        return keras.KerasTensor(outputs.shape, outputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight, "from_step": self.from_step}


@register_decoder("pointer_generator")
class PointerGeneratorDecoder(Decoder):
    """See the module docstring.

    >>> from s2s_zoo.models.encoders import RNNEncoder, RNNEncoderConfig
    >>> from s2s_zoo.models.seq2seq import Seq2SeqModel
    >>> enc = RNNEncoder(RNNEncoderConfig(vocab_size=40, encoder_units=8, embedding_dim=8))
    >>> dec = PointerGeneratorDecoder(
    ...     PointerGeneratorConfig(vocab_size=40, decoder_units=16, embedding_dim=8,
    ...                            attention_units=8, coverage=True), enc.memory_dim)
    >>> Seq2SeqModel(enc, dec).training_model.output.shape
    (None, None, 40)
    """

    config_class = PointerGeneratorConfig

    def __init__(self, config: PointerGeneratorConfig, memory_dim: int) -> None:
        super().__init__(config, memory_dim)
        c = config
        self.target_embedding = layers.Embedding(
            c.vocab_size, c.embedding_dim, name="target_embedding"
        )
        self.dropout = layers.Dropout(c.dropout, name="target_dropout")
        self.num_states = states_per_layer(c.cell)
        self.bridges = [
            layers.Dense(c.decoder_units, activation="tanh" if k == 0 else None, name=f"bridge_{k}")
            for k in range(self.num_states)
        ]
        self.rnn = CELLS[c.cell](
            c.decoder_units, return_sequences=True, return_state=True, name="decoder_rnn"
        )
        if c.coverage:
            self.attention = CoverageAttention(c.attention_units, name="coverage_attention")
        else:
            self.attention = MemoryAttention(
                "bahdanau", c.attention_units, c.decoder_units, memory_dim, name="attention"
            )
        self.hidden = layers.Dense(c.decoder_units, name="output_hidden")  # V, b
        self.output_projection = layers.Dense(
            c.vocab_size, dtype="float32", name="output_projection"
        )  # V', b'
        if c.copy_source:
            self.switch = GenerationProbability(name="generation_probability")
            self.copy = CopyDistribution(name="copy_distribution")
        if c.coverage and c.coverage_loss_weight > 0:
            # float32: under a mixed policy it would cast the float32 logits it passes
            # through to float16, and the loss term is better summed in float32
            self.coverage_term = CoverageLossTerm(
                c.coverage_loss_weight,
                c.coverage_loss_from_step,
                name="coverage_loss",
                dtype="float32",
            )

    @property
    def has_attention(self) -> bool:
        return True

    @classmethod
    def requires_joint_vocabulary(cls, config: PointerGeneratorConfig) -> bool:
        # copied source ids are output ids, and a shared embedding reads both sides
        return config.copy_source or config.share_embeddings

    def share_source_embedding(self, encoder: Encoder) -> None:
        """With share_embeddings, the encoder reads tokens through the decoder's embedding."""
        if not self.config.share_embeddings:
            return
        embedding = getattr(encoder, "token_embedding", None)
        source_vocab = getattr(encoder.config, "vocab_size", None)
        if embedding is None or source_vocab != self.config.vocab_size:
            raise ValueError(
                "share_embeddings needs a token encoder with one joint vocabulary for both "
                f"sides; got source vocabulary {source_vocab} and target "
                f"{self.config.vocab_size} (set share_embeddings to false otherwise)"
            )
        if embedding.output_dim != self.config.embedding_dim:
            raise ValueError(
                f"share_embeddings needs equal embedding widths; the encoder's is "
                f"{embedding.output_dim}, the decoder's embedding_dim {self.config.embedding_dim}"
            )
        encoder.token_embedding = self.target_embedding

    # -- graph pieces ---------------------------------------------------------------------

    def _initial_states(self, encoded: EncoderOutput) -> list:
        summary = encoded.summary or [masked_mean(encoded.memory, encoded.mask)]
        return [bridge(summary[min(k, len(summary) - 1)]) for k, bridge in enumerate(self.bridges)]

    def _source_ids(self, encoded: EncoderOutput):
        if encoded.source_ids is None:
            raise ValueError(
                "the pointer-generator copies source tokens, so it needs a token encoder that "
                "reports EncoderOutput.source_ids (e.g. 'rnn' or 'transformer'); set "
                "copy_source to false for other encoders"
            )
        return encoded.source_ids

    def _output(self, states, contexts, embedded, weights, source_ids):
        """Decoder states, contexts, inputs and attention -> float32 log-probs or logits."""
        hidden = self.hidden(keras.ops.concatenate([states, contexts], axis=-1))
        logits = self.output_projection(self.dropout(hidden))
        if not self.config.copy_source:
            return logits
        return self.copy(logits, weights, self.switch(contexts, states, embedded), source_ids)

    def teacher_forcing(self, target_ids, encoded: EncoderOutput):
        source_ids = self._source_ids(encoded) if self.config.copy_source else None
        target_mask = keras.ops.not_equal(target_ids, 0)
        embedded = self.dropout(self.target_embedding(target_ids))
        # no mask: the recurrence is causal and padding comes last, so real positions never
        # see it (the loss and the coverage loss mask padding by the target)
        states = self.rnn(embedded, initial_state=self._initial_states(encoded))[0]
        memory, mask = encoded.memory, encoded.mask
        coverages = None
        if self.config.coverage:
            contexts, weights, coverages = self.attention(states, memory, mask)
        else:
            keys = self.attention.keys(memory)
            # no query mask: padded target positions are masked by the loss, and a mask on
            # the contexts would only travel on into layers that do not take one
            contexts, weights = self.attention(
                states, memory, keys, query_mask=None, memory_mask=mask
            )
        outputs = self._output(states, contexts, embedded, weights, source_ids)
        if coverages is not None and self.config.coverage_loss_weight > 0:
            outputs = self.coverage_term(outputs, weights, coverages, target_mask)
        return outputs

    def encoder_tensors(self, encoded: EncoderOutput) -> list:
        keys = self.attention.keys(encoded.memory)
        extra = [self._source_ids(encoded)] if self.config.copy_source else []
        return [encoded.memory, keys, encoded.mask, *extra, *self._initial_states(encoded)]

    # -- the decoder-step interface -------------------------------------------------------

    def start(self, tensors, max_length=None) -> tuple[TensorDict, TensorDict]:
        # tf.identity drops the Keras masks eager tensors carry
        memory, keys, mask, *rest = [tf.identity(t) for t in tensors]
        out = {"memory": memory, "keys": keys, "mask": mask}
        if self.config.copy_source:
            out["source_ids"], *rest = rest
        state = {f"state_{i}": s for i, s in enumerate(rest)}
        state["attention"] = tf.zeros(tf.shape(mask), memory.dtype)  # the last step's weights
        if self.config.coverage:
            state["coverage"] = tf.zeros(tf.shape(mask), memory.dtype)
        return out, state

    def step(self, token_ids, state, memory) -> tuple[tf.Tensor, TensorDict]:
        embedded = self.target_embedding(token_ids)  # [B, E]
        states = [state[f"state_{i}"] for i in range(self.num_states)]
        output, new_states = self.rnn.cell(embedded, states, training=False)
        if not isinstance(new_states, list | tuple):
            new_states = [new_states]
        new_state = {f"state_{i}": s for i, s in enumerate(new_states)}
        if self.config.coverage:
            context, weights, coverage = self.attention.step(
                output, memory["memory"], memory["keys"], state["coverage"], memory["mask"]
            )
            new_state["coverage"] = tf.cast(coverage, state["coverage"].dtype)
        else:
            context, weights = self.attention(
                output[:, None],
                memory["memory"],
                memory["keys"],
                query_mask=None,
                memory_mask=memory["mask"],
            )
            context, weights = context[:, 0], weights[:, 0]
        new_state["attention"] = tf.cast(weights, state["attention"].dtype)
        source_ids = memory.get("source_ids")
        return self._output(output, context, embedded, weights, source_ids), new_state
