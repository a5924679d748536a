"""The Transformer decoder's own cached step equals keras-hub's full (uncached) decoder call.

`TransformerDecoder.step` re-implements the keras-hub layers' cached call for speed (see
its docstring), so it is held here to the layers' teacher-forced output at every position:
pre- and post-LN, with and without (inactive) dropout, both position schemes, and a batch
whose sources have different lengths (padding masked in cross-attention).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.models.decoders import TransformerDecoder, TransformerDecoderConfig
from s2s_zoo.models.encoders import TransformerEncoder, TransformerEncoderConfig
from s2s_zoo.models.seq2seq import Seq2SeqModel

VOCAB = 40


def random_model(normalize_first: bool, dropout: float, positions: str) -> Seq2SeqModel:
    keras.utils.set_random_seed(3)
    sizes = dict(hidden_dim=16, intermediate_dim=24, num_heads=2, dropout=dropout)
    encoder = TransformerEncoder(
        TransformerEncoderConfig(vocab_size=VOCAB, encoder_layers=1, positions=positions, **sizes)
    )
    decoder = TransformerDecoder(
        TransformerDecoderConfig(
            vocab_size=VOCAB,
            decoder_layers=2,
            positions=positions,
            normalize_first=normalize_first,
            **sizes,
        ),
        encoder.memory_dim,
    )
    model = Seq2SeqModel(encoder, decoder)
    rng = np.random.default_rng(0)  # every weight random (biases, norms too): mistakes show
    for weight in model.training_model.weights:
        weight.assign(rng.normal(0.0, 0.4, weight.shape).astype("float32"))
    return model


@pytest.mark.parametrize("normalize_first", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_cached_step_equals_the_full_decoder_call(normalize_first, dropout, positions):
    model = random_model(normalize_first, dropout, positions)
    decoder = model.decoder
    source = tf.constant([[5, 6, 7, 8, 3], [9, 3, 0, 0, 0], [4, 4, 3, 0, 0]])
    prefix = tf.constant([[2, 11, 12, 13, 14, 15], [2, 21, 22, 23, 24, 25], [2, 7, 7, 7, 7, 7]])
    memory, state = model.encode(source, 6)
    for position in range(prefix.shape[1]):
        logits, state = model.step(prefix[:, position], state, memory)
        full = decoder._decode_full(prefix[:, : position + 1], memory["memory"], memory["mask"])
        np.testing.assert_allclose(logits.numpy(), full[:, -1].numpy(), atol=2e-5, rtol=1e-5)
    assert state["self_k_0"].shape[2] == prefix.shape[1]  # one cached position per step
