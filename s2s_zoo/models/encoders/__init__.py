"""Encoders, registered by name on import: source features -> memory + mask."""

from s2s_zoo.models.encoders.image import ImageEncoder, ImageEncoderConfig
from s2s_zoo.models.encoders.memory_network import (
    MemoryNetworkEncoder,
    MemoryNetworkEncoderConfig,
)
from s2s_zoo.models.encoders.rnn import RNNEncoder, RNNEncoderConfig
from s2s_zoo.models.encoders.speech import SpeechEncoder, SpeechEncoderConfig
from s2s_zoo.models.encoders.transformer import TransformerEncoder, TransformerEncoderConfig

__all__ = [
    "ImageEncoder",
    "ImageEncoderConfig",
    "MemoryNetworkEncoder",
    "MemoryNetworkEncoderConfig",
    "RNNEncoder",
    "RNNEncoderConfig",
    "SpeechEncoder",
    "SpeechEncoderConfig",
    "TransformerEncoder",
    "TransformerEncoderConfig",
]
