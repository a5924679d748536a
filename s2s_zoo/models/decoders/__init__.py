"""Decoders, registered by name on import: the decoder-step interface over a memory."""

from s2s_zoo.models.decoders.mem2seq import Mem2SeqDecoder, Mem2SeqDecoderConfig
from s2s_zoo.models.decoders.pointer_generator import (
    PointerGeneratorConfig,
    PointerGeneratorDecoder,
)
from s2s_zoo.models.decoders.rnn import RNNDecoder, RNNDecoderConfig
from s2s_zoo.models.decoders.transformer import TransformerDecoder, TransformerDecoderConfig

__all__ = [
    "Mem2SeqDecoder",
    "Mem2SeqDecoderConfig",
    "PointerGeneratorConfig",
    "PointerGeneratorDecoder",
    "RNNDecoder",
    "RNNDecoderConfig",
    "TransformerDecoder",
    "TransformerDecoderConfig",
]
