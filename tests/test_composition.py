"""Any encoder with any decoder whose memory contract matches: mixed pairs train, decode,
export and serve; configs and custom layers round-trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.layers.attention import MemoryAttention
from s2s_zoo.layers.recurrent import InputFeedingDecoder, ReverseSource
from s2s_zoo.models.encoders.image import GridPositions
from s2s_zoo.models.encoders.speech import SubsampleFrames
from s2s_zoo.models.registry import build_from_json, build_model, split_overrides
from tests.test_catalog import media_examples

SMALL_TRANSFORMER = {"hidden_dim": 16, "intermediate_dim": 32, "num_heads": 2,
                     "decoder_layers": 1, "dropout": 0.0, "max_positions": 32}  # fmt: skip


def speech_with_transformer_decoder(vocab: int):
    return build_model(
        "speech_conv_rnn",
        {"feature_dim": 16, "conv_channels": 2, "encoder_units": 8, "embedding_dim": 8,
         "encoder_layers": 1},
        "transformer",
        {"vocab_size": vocab, **SMALL_TRANSFORMER},
    )  # fmt: skip


def image_with_gru_decoder(vocab: int):
    return build_model(
        "image_cnn",
        {"backbone": "cnn", "image_height": 32, "image_width": 64, "feature_dim": 16},
        "rnn",
        {"vocab_size": vocab, "cell": "gru", "decoder_units": 16, "embedding_dim": 8,
         "attention_units": 8},
    )  # fmt: skip


@pytest.mark.parametrize(
    "kind,builder",
    [("audio", speech_with_transformer_decoder), ("image", image_with_gru_decoder)],
)
def test_mixed_pairs_train_decode_export_and_serve(kind, builder, tmp_path):
    from s2s_zoo.data.media_pipeline import make_audio_dataset, make_image_dataset
    from s2s_zoo.data.media_preprocessors import AudioPreprocessor, ImagePreprocessor
    from s2s_zoo.data.tokenizer import train_sentencepiece
    from s2s_zoo.export.conformance import check_serving
    from s2s_zoo.export.saved_model import export_saved_model
    from s2s_zoo.features.audio import AudioFrontEnd
    from s2s_zoo.features.image import ImageFrontEnd
    from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
    from s2s_zoo.training.fit import TrainConfig, compile_model, fit

    keras.utils.set_random_seed(0)
    pairs = media_examples(kind, tmp_path)
    proto = train_sentencepiece([c for _, c in pairs], 20)
    if kind == "image":
        pre, make = ImagePreprocessor(proto, ImageFrontEnd(32, 64), 8), make_image_dataset
    else:
        pre, make = AudioPreprocessor(proto, AudioFrontEnd(num_mel_bins=16), 8), make_audio_dataset
    model = builder(pre.target_vocab_size)
    config = TrainConfig(epochs=5, batch_size=16, learning_rate=1e-2, patience=0)
    compile_model(model.training_model, config)
    history = fit(model.training_model, make(pairs, pre, 16), None, config, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    decoding = DecodingConfig(beam_size=3, num_hypotheses=2, max_length_ratio=0.0,
                              max_length_offset=6)  # fmt: skip
    inference = Seq2SeqInference(pre, model, decoding)
    samples = [open(p, "rb").read() for p, _ in pairs[:3]] + [b"garbage"]
    greedy = inference.greedy(samples)
    assert [e == b"" for e in greedy["errors"].numpy()] == [True, True, True, False]
    assert build_from_json(model.config_json()).config == model.config
    report = check_serving(export_saved_model(inference, tmp_path / kind), inference, samples)
    assert report.ok, report.mismatches


def test_flat_overrides_route_to_the_side_that_has_the_field():
    enc, dec = split_overrides(
        "rnn", "transformer", {"dropout": 0.2, "encoder_units": 8, "decoder.dropout": 0.0}
    )
    assert enc == {"dropout": 0.2, "encoder_units": 8} and dec == {"dropout": 0.0}
    with pytest.raises(ValueError, match="neither an encoder field"):
        split_overrides("rnn", "rnn", {"hidden_dim": 8})


def test_a_preprocessor_for_other_sources_is_refused():
    from s2s_zoo.data.media_preprocessors import ImagePreprocessor
    from s2s_zoo.data.tokenizer import train_sentencepiece
    from s2s_zoo.features.image import ImageFrontEnd
    from s2s_zoo.inference import DecodingConfig, Seq2SeqInference

    pre = ImagePreprocessor(train_sentencepiece(["a b c"], 10), ImageFrontEnd(32, 64))
    model = build_model("rnn", {"vocab_size": 10}, "rnn", {"vocab_size": pre.target_vocab_size})
    with pytest.raises(ValueError, match="reads 'token_ids'"):
        Seq2SeqInference(pre, model, DecodingConfig())


LAYERS = [
    (lambda: ReverseSource(), lambda: [tf.constant([[4, 5, 6, 0]])]),
    (lambda: GridPositions(), lambda: [tf.random.normal([2, 6, 4])]),
    (
        lambda: MemoryAttention("luong_general", 8, 4, 6, name="att"),
        lambda: [tf.random.normal([2, 3, 4]), tf.random.normal([2, 5, 6]),
                 tf.random.normal([2, 5, 4]), {"query_mask": None,
                                               "memory_mask": tf.ones([2, 5], tf.bool)}],
    ),
    (
        lambda: SubsampleFrames(3),
        lambda: [tf.random.normal([2, 12, 8]), tf.ones([2, 12], tf.bool)],
    ),
    (
        lambda: InputFeedingDecoder("lstm", 8, 2, 0.0, True, "bahdanau", 8, 6, name="dec"),
        lambda: [tf.random.normal([2, 3, 4]), tf.random.normal([2, 5, 6]), None,
                 tf.ones([2, 5], tf.bool), [tf.random.normal([2, 8]) for _ in range(4)]],
    ),
]  # fmt: skip


@pytest.mark.parametrize("make,inputs", LAYERS)
def test_custom_layers_round_trip_through_get_config(make, inputs):
    keras.utils.set_random_seed(0)
    layer, args = make(), inputs()
    kwargs = args.pop() if isinstance(args[-1], dict) else {}
    if isinstance(layer, MemoryAttention):
        args[2] = layer.keys(args[1])
    if isinstance(layer, InputFeedingDecoder):
        args[2] = layer.attention.keys(args[1])
    first = layer(*args, **kwargs)
    clone = type(layer).from_config(layer.get_config())
    attention = getattr(clone, "attention", clone)
    if isinstance(attention, MemoryAttention):
        attention.keys(args[1])  # builds the key projection
    clone(*args, **kwargs)  # build, then copy the weights (the keys were projected once, above)
    clone.set_weights(layer.get_weights())
    second = clone(*args, **kwargs)
    for a, b in zip(tf.nest.flatten(first), tf.nest.flatten(second), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
