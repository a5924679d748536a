"""Recurrent encoder-decoders: SimpleRNN/LSTM/GRU, stacked, bidirectional, with attention.

The decoder is written once as `_run_decoder` over a [batch, time] block of target
ids; the training graph calls it on the whole target (teacher forcing) and the
step graph on one position, so both share every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from s2s_zoo.layers.attention import ATTENTION_KINDS, MemoryAttention
from s2s_zoo.layers.recurrent import InputFeedingDecoder, ReverseSource
from s2s_zoo.models.base import Seq2SeqModel, TensorDict

CELLS = {"gru": layers.GRU, "lstm": layers.LSTM, "simple_rnn": layers.SimpleRNN}


@dataclass
class RNNConfig:
    """Architecture of a recurrent encoder-decoder (everything needed to rebuild it)."""

    source_vocab_size: int
    target_vocab_size: int
    cell: str = "gru"
    embedding_dim: int = 128
    encoder_units: int = 128  # per direction: a bidirectional memory is 256 wide
    decoder_units: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    bidirectional: bool = True
    attention: str = "bahdanau"
    attention_units: int = 128
    dropout: float = 0.0
    residual: bool = False
    input_feeding: bool = False  # Luong: feed the last attentional vector into the next step
    reverse_source: bool = False  # Sutskever: read the source backwards

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        if min(self.encoder_layers, self.decoder_layers) < 1:
            raise ValueError("encoder_layers and decoder_layers must be at least 1")
        if self.input_feeding and self.attention == "none":
            raise ValueError("input_feeding needs an attention mechanism")

    @property
    def states_per_layer(self) -> int:
        return 2 if self.cell == "lstm" else 1

    @property
    def memory_dim(self) -> int:
        return self.encoder_units * (2 if self.bidirectional else 1)


class RNNSeq2Seq(Seq2SeqModel):
    """A recurrent encoder-decoder; see the module docstring for how the views share layers."""

    family = "rnn"
    config_class = RNNConfig

    def __init__(self, config: RNNConfig) -> None:
        super().__init__(config)
        c = config
        self._build_source_layers()
        self.target_embedding = layers.Embedding(
            c.target_vocab_size, c.embedding_dim, mask_zero=True, name="target_embedding"
        )
        self.encoder_rnns = []
        for i in range(c.encoder_layers):
            rnn = CELLS[c.cell](
                c.encoder_units, return_sequences=True, return_state=True, name=f"encoder_{i}"
            )
            if c.bidirectional:
                rnn = layers.Bidirectional(rnn, name=f"encoder_bi_{i}")
            self.encoder_rnns.append(rnn)
        # The bridge maps the top encoder layer's final states to every decoder layer's
        # initial states; it absorbs bidirectional concatenation, width and depth mismatch.
        self.bridges = [
            [
                layers.Dense(
                    c.decoder_units, activation="tanh" if k == 0 else None, name=f"bridge_{i}_{k}"
                )
                for k in range(c.states_per_layer)
            ]
            for i in range(c.decoder_layers)
        ]
        self.dropout = layers.Dropout(c.dropout, name="dropout")
        self.attention = None
        if c.attention != "none":
            self.attention = MemoryAttention(
                c.attention, c.attention_units, c.decoder_units, c.memory_dim, name="attention"
            )
        if c.input_feeding:
            self.feeding_decoder = InputFeedingDecoder(
                c.cell,
                c.decoder_units,
                c.decoder_layers,
                c.dropout,
                c.residual,
                self.attention,
                name="decoder",
            )
        else:
            self.decoder_rnns = [
                CELLS[c.cell](
                    c.decoder_units,
                    return_sequences=True,
                    return_state=True,
                    name=f"decoder_{i}",
                )
                for i in range(c.decoder_layers)
            ]
            if self.attention is not None:
                self.attention_projection = layers.Dense(
                    c.decoder_units, activation="tanh", name="attention_projection"
                )
        self.output_projection = layers.Dense(
            c.target_vocab_size, dtype="float32", name="output_projection"
        )
        self._build_views()

    # -- the source side: overridden by image and speech encoders (models/media.py) -------

    def _build_source_layers(self) -> None:
        c = self.config
        self.source_embedding = layers.Embedding(
            c.source_vocab_size, c.embedding_dim, mask_zero=True, name="source_embedding"
        )
        self.reverse_source = ReverseSource(name="reverse_source") if c.reverse_source else None

    def _source_inputs(self) -> list:
        return [keras.Input((None,), dtype="int32", name="source_ids")]

    def _embed_source(self, source_inputs):
        """-> (vectors for the encoder RNNs, source mask, whether RNNs need the mask passed).

        Token embeddings carry their Keras mask, so text needs no explicit mask.
        """
        source_ids = source_inputs[0]
        source_mask = keras.ops.not_equal(source_ids, 0)
        if self.reverse_source is not None:  # padding stays at the end, so the mask holds
            source_ids = self.reverse_source(source_ids)
        return self.dropout(self.source_embedding(source_ids)), source_mask, False

    # -- graph pieces -------------------------------------------------------------------

    def _stack(self, x, rnns, initial_states=None, mask=None):
        """Run stacked RNN layers with dropout and optional residuals; return (seq, states)."""
        final_states = []
        for i, rnn in enumerate(rnns):
            kwargs = {} if initial_states is None else {"initial_state": initial_states[i]}
            if mask is not None:
                kwargs["mask"] = mask
            out = rnn(x, **kwargs)
            seq, states = out[0], list(out[1:])
            seq = self.dropout(seq)
            if self.config.residual and i > 0 and seq.shape[-1] == x.shape[-1]:
                seq = layers.Add()([seq, x])  # a Keras layer, so the padding mask carries on
            x = seq
            final_states.append(states)
        return x, final_states

    def _encode_graph(self, source_inputs):
        x, source_mask, pass_mask = self._embed_source(source_inputs)
        k = self.config.states_per_layer
        if self.encoder_rnns:
            mask = source_mask if pass_mask else None
            memory, states = self._stack(x, self.encoder_rnns, mask=mask)
            top = states[-1]
            if self.config.bidirectional:  # [fw_1..fw_k, bw_1..bw_k] -> per kind concat
                top = [keras.ops.concatenate([top[j], top[k + j]], axis=-1) for j in range(k)]
        else:  # no encoder RNN (image grids): the bridge reads the mean of the memory
            memory = x
            top = [_masked_mean(x, source_mask)] * k
        initial = [[bridge(top[k]) for k, bridge in enumerate(row)] for row in self.bridges]
        keys = self.attention.keys(memory) if self.attention else memory
        return memory, keys, source_mask, initial

    def _run_feeding_decoder(self, target_ids, states, memory, keys, source_mask):
        flat = [s for row in states for s in row]
        y = self.dropout(self.target_embedding(target_ids))
        return self.output_projection(self.feeding_decoder(y, memory, keys, source_mask, flat))

    def _run_decoder(self, target_ids, states, memory, keys, source_mask):
        target_mask = keras.ops.not_equal(target_ids, 0)
        y = self.dropout(self.target_embedding(target_ids))
        y, new_states = self._stack(y, self.decoder_rnns, states)
        weights = None
        if self.attention is not None:
            context, weights = self.attention(y, memory, keys, target_mask, source_mask)
            y = self.attention_projection(keras.ops.concatenate([y, context], axis=-1))
            y = self.dropout(y)
        return self.output_projection(y), new_states, weights

    def _build_views(self) -> None:
        c = self.config
        source_inputs = self._source_inputs()
        target_ids = keras.Input((None,), dtype="int32", name="target_ids")
        memory, keys, source_mask, initial = self._encode_graph(source_inputs)
        if c.input_feeding:
            logits = self._run_feeding_decoder(target_ids, initial, memory, keys, source_mask)
        else:
            logits, _, _ = self._run_decoder(target_ids, initial, memory, keys, source_mask)
        self.training_model = keras.Model(
            [*source_inputs, target_ids], logits, name=f"{self.family}_seq2seq"
        )

        flat_initial = [s for row in initial for s in row]
        self.encoder_model = keras.Model(
            source_inputs if len(source_inputs) > 1 else source_inputs[0],
            [memory, keys, source_mask, *flat_initial],
            name=f"{self.family}_encoder",
        )

        self._num_states = len(flat_initial)
        if c.input_feeding:
            return  # its step is InputFeedingDecoder.step, called directly
        token = keras.Input((1,), dtype="int32", name="token_ids")
        memory_in = keras.Input((None, c.memory_dim), name="memory")
        keys_in = keras.Input((None, keys.shape[-1]), name="keys")
        mask_in = keras.Input((None,), dtype="bool", name="source_mask")
        n = c.states_per_layer
        state_in = [
            keras.Input((c.decoder_units,), name=f"state_{i}") for i in range(len(flat_initial))
        ]
        nested = [state_in[i * n : (i + 1) * n] for i in range(c.decoder_layers)]
        step_logits, step_states, weights = self._run_decoder(
            token, nested, memory_in, keys_in, mask_in
        )
        outputs = [step_logits[:, 0, :], *[s for row in step_states for s in row]]
        if weights is not None:
            outputs.append(weights[:, 0, :])
        self.step_model = keras.Model(
            [token, memory_in, keys_in, mask_in, *state_in], outputs, name="rnn_step"
        )

    # -- the decoding interface ----------------------------------------------------------

    @property
    def has_attention(self) -> bool:
        return self.attention is not None

    def encode(
        self, source: tf.Tensor | tuple, max_length: tf.Tensor | int | None = None
    ) -> tuple[TensorDict, TensorDict]:
        source = list(source) if isinstance(source, tuple | list) else source
        outputs = self.encoder_model(source, training=False)
        # tf.identity drops the Keras mask eager tensors carry; the step graph takes the
        # source mask as an explicit input instead.
        memory, keys, mask, *states = [tf.identity(t) for t in outputs]
        state = {f"state_{i}": s for i, s in enumerate(states)}
        if self.attention is not None:  # attention weights of the last step, for inspection
            state["attention"] = tf.zeros_like(mask, dtype=tf.float32)
        if self.config.input_feeding:
            state["feed"] = tf.zeros([tf.shape(mask)[0], self.config.decoder_units], memory.dtype)
        return {"memory": memory, "keys": keys, "mask": mask}, state

    def step(
        self, token_ids: tf.Tensor, state: TensorDict, memory: TensorDict
    ) -> tuple[tf.Tensor, TensorDict]:
        states = [state[f"state_{i}"] for i in range(self._num_states)]
        if self.config.input_feeding:
            return self._feeding_step(token_ids, states, state["feed"], memory)
        out = self.step_model(
            [token_ids[:, None], memory["memory"], memory["keys"], memory["mask"], *states],
            training=False,
        )
        new_state = {f"state_{i}": s for i, s in enumerate(out[1 : 1 + self._num_states])}
        if self.attention is not None:
            new_state["attention"] = out[-1]
        return out[0], new_state

    def _feeding_step(self, token_ids, states, feed, memory):
        embedded = self.target_embedding(token_ids)
        attentional, new_states, weights = self.feeding_decoder.step(
            embedded,
            feed,
            states,
            memory["memory"],
            memory["keys"],
            memory["mask"],
            training=False,
        )
        new_state = {f"state_{i}": s for i, s in enumerate(new_states)}
        new_state["attention"] = weights
        new_state["feed"] = attentional
        return self.output_projection(attentional), new_state


def _masked_mean(x, mask):
    weights = keras.ops.cast(mask, x.dtype)[:, :, None]
    return keras.ops.sum(x * weights, axis=1) / keras.ops.maximum(
        keras.ops.sum(weights, axis=1), 1.0
    )
