"""OpenNMT-tf model file for benchmarks/peer_opennmt.py (run by `onmt-main --model`).

The size of our `lstm_luong` measurement: word embeddings 256, a unidirectional
2-layer LSTM 256 encoder, a 2-layer LSTM 256 decoder with Luong (general) attention
and input feeding (tfa's AttentionWrapper feeds the previous attentional vector into
the next step), the encoder's final states copied into the decoder, dropout 0.1.
"""

import opennmt
import tensorflow as tf
import tensorflow_addons as tfa


class LSTMLuong2x256(opennmt.models.SequenceToSequence):
    def __init__(self):
        super().__init__(
            source_inputter=opennmt.inputters.WordEmbedder(embedding_size=256),
            target_inputter=opennmt.inputters.WordEmbedder(embedding_size=256),
            encoder=opennmt.encoders.RNNEncoder(
                num_layers=2,
                num_units=256,
                bidirectional=False,
                dropout=0.1,
                residual_connections=False,
                cell_class=tf.keras.layers.LSTMCell,
            ),
            decoder=opennmt.decoders.AttentionalRNNDecoder(
                num_layers=2,
                num_units=256,
                bridge_class=opennmt.layers.CopyBridge,
                attention_mechanism_class=tfa.seq2seq.LuongAttention,
                cell_class=tf.keras.layers.LSTMCell,
                dropout=0.1,
                residual_connections=False,
            ),
        )


model = LSTMLuong2x256
