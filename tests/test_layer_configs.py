"""Every custom Keras layer in the package round-trips through its config, and every
docstring example in the modules that define layers runs.

The layer list is discovered, not written by hand: a new layer without an entry in
`CASES` fails `test_every_layer_has_a_case`, so none can ship without this check.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import s2s_zoo


def _package_layers() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(s2s_zoo.__path__, "s2s_zoo."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, keras.layers.Layer)
                and value.__module__ == module.__name__
            ):
                found[name] = value
    return found


LAYERS = _package_layers()
rng = np.random.default_rng(0)


def _ids(shape, vocab=10, pad_tail=True):
    ids = rng.integers(1, vocab, size=shape).astype("int32")
    if pad_tail:
        ids[..., -1] = 0  # some padding, so masks matter
    return tf.constant(ids)


def _floats(*shape):
    return tf.constant(rng.normal(size=shape).astype("float32"))


def _mask(lengths, width):
    return tf.sequence_mask(lengths, width)


def _mem2seq_head_inputs():
    b, t, u, d, e, a, m, p = 2, 3, 8, 6, 5, 4, 3, 7
    return (
        _floats(b, t, u),  # h
        _floats(b, t, e),  # embedded
        tf.constant(rng.integers(0, 3, size=(b, t, p)).astype("int32")),  # runs
        _floats(b, m, d),  # slots
        _floats(b, m, a),  # slot keys
        _mask([3, 2], m),
        _floats(b, p, d),  # words
        _floats(b, p, a),  # word keys
        _ids((b, p), vocab=12),
        _mask([7, 4], p),
        None,  # targets (training only)
        _floats(b, d),  # the encoder summary (summary_features)
    )


# class name -> (constructor keywords, () -> positional call inputs)
CASES = {
    "MemoryAttention": (
        {"kind": "bahdanau", "units": 8, "query_dim": 4, "memory_dim": 6, "name": "att"},
        lambda: (_floats(2, 3, 4), _floats(2, 5, 6), None, _mask([3, 3], 3), _mask([5, 2], 5)),
    ),
    "CopyDistribution": (
        {"pad_id": 5, "p_gen_is_logit": False},
        lambda: (
            _floats(2, 3, 12),
            tf.nn.softmax(_floats(2, 3, 4)),
            _floats(2, 3, 1),
            _ids((2, 4)),
        ),
    ),
    "GenerationProbability": (
        {"returns": "probability"},
        lambda: (_floats(2, 8), _floats(2, 16), _floats(2, 4)),
    ),
    "CoverageAttention": (
        {"units": 8},
        lambda: (_floats(2, 4, 7), _floats(2, 5, 6), _mask([5, 3], 5)),
    ),
    "MemoryEncoder": (
        {
            "vocab_size": 10,
            "embedding_dim": 8,
            "hops": 2,
            "hop_update": "linear",
            "max_slots": 5,
            "num_speakers": 3,
            "use_position_encoding": False,
        },  # fmt: skip
        lambda: (_ids((2, 3, 4)), _ids((2, 4))),
    ),
    "ReverseSource": ({}, lambda: (_ids((2, 5)),)),
    "InputFeedingDecoder": (
        {
            "cell": "lstm",
            "units": 8,
            "num_layers": 2,
            "dropout": 0.1,
            "residual": True,
            "attention_kind": "luong_general",
            "attention_units": 8,
            "memory_dim": 6,
        },
        lambda: (
            _floats(2, 3, 4),
            _floats(2, 5, 6),
            None,  # keys: filled from the layer below
            _mask([5, 2], 5),
            [_floats(2, 8) for _ in range(4)],
        ),
    ),
    "RunFeatures": (
        {},
        lambda: (
            _ids((2, 4), vocab=12, pad_tail=False),
            _ids((2, 6), vocab=12),
            _mask([5, 3], 6),
            _mask([4, 2], 6),
        ),
    ),
    "Mem2SeqHead": (
        {
            "vocab_size": 12,
            "units": 8,
            "attention_units": 4,
            "max_run": 3,
            "memory_dim": 6,
            "embedding_dim": 5,
            "dropout": 0.2,
            "copy_supervision": 0.5,
            "summary_features": True,
        },
        _mem2seq_head_inputs,
    ),
    "CoverageLossTerm": (
        {"weight": 0.7, "from_step": 3},
        lambda: (
            _floats(2, 3, 9),
            tf.nn.softmax(_floats(2, 3, 4)),
            tf.nn.softmax(_floats(2, 3, 4)),
            _mask([3, 1], 3),
        ),
    ),
    "GridPositions": ({}, lambda: (_floats(2, 6, 4),)),
    "SlotWords": (
        {"vocab_size": 10, "dim": 6, "max_positions": 4, "said_ngrams": 3, "next_piece": True},
        lambda: (_ids((2, 3, 5)), _ids((2, 3), vocab=4), _ids((2, 5)), _floats(2, 3, 6)),
    ),
    "SubsampleFrames": ({"channels": 4}, lambda: (_floats(2, 9, 8), _mask([9, 5], 9))),
    "UnkMasking": ({"rate": 0.3, "unk_id": 2, "seed": 5}, lambda: (_ids((2, 5)),)),
}


def test_every_layer_has_a_case():
    assert sorted(LAYERS) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_holds_every_constructor_argument_at_its_non_default_value(name):
    """Every `__init__` argument is in the config, and each case sets every argument
    that has a default to another value, so a `get_config` that drops one fails."""
    init = LAYERS[name].__init__
    own = init is not keras.layers.Layer.__init__  # else: Keras' own arguments only
    parameters = {
        p.name: p
        for p in inspect.signature(init).parameters.values()
        if own and p.name not in ("self", "kwargs", "name") and p.kind is not p.VAR_KEYWORD
    }
    kwargs, _ = CASES[name]
    assert set(parameters) <= set(kwargs), (
        f"{name}: no case value for {set(parameters) - set(kwargs)}"
    )
    for key, parameter in parameters.items():
        if parameter.default is not parameter.empty:
            assert kwargs[key] != parameter.default, f"{name}.{key} is tested at its default"
    config = LAYERS[name](**kwargs).get_config()
    assert {key: config[key] for key in parameters} == {key: kwargs[key] for key in parameters}


def _call(layer, inputs):
    # attention layers take the memory's keys, which the layer itself computes
    if isinstance(layer, LAYERS["InputFeedingDecoder"]):
        inputs = (*inputs[:2], layer.attention.keys(inputs[1]), *inputs[3:])
    elif isinstance(layer, LAYERS["MemoryAttention"]):
        inputs = (*inputs[:2], layer.keys(inputs[1]), *inputs[3:])
    outputs = layer(*inputs)
    return [np.asarray(x) for x in tf.nest.flatten(outputs)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_round_trip_gives_identical_outputs(name):
    kwargs, make_inputs = CASES[name]
    inputs = make_inputs()
    layer = LAYERS[name](**kwargs)
    expected = _call(layer, inputs)
    config = layer.get_config()
    # the way Keras saves a layer inside a model: class name + config, and back
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer),
        custom_objects={name: LAYERS[name]},
    )
    assert type(clone) is type(layer) and clone.get_config() == config
    _call(clone, inputs)  # builds the clone's weights
    assert len(clone.weights) == len(layer.weights)
    clone.set_weights(layer.get_weights())
    got = _call(clone, inputs)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    # the keyword settings survive (not only the defaults)
    for key, value in kwargs.items():
        assert config[key] == value, key
    assert len(clone.losses) == len(layer.losses)


def _package_families() -> list[type]:
    """The package's encoder and decoder classes (not those a test file registers)."""
    from s2s_zoo.models.registry import DECODERS, ENCODERS

    families = [*ENCODERS.values(), *DECODERS.values()]
    return [cls for cls in families if cls.__module__.startswith("s2s_zoo.")]


def _modules_with_layers_or_models() -> list[str]:
    families = _package_families()
    return sorted(
        {cls.__module__ for cls in [*LAYERS.values(), *families]} | {"s2s_zoo.models.seq2seq"}
    )


@pytest.mark.parametrize("module_name", _modules_with_layers_or_models())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_docstring_has_an_example(name):
    assert ">>>" in (LAYERS[name].__doc__ or ""), f"{name} has no runnable example"


def test_every_encoder_and_decoder_family_has_an_example():
    from s2s_zoo.models.seq2seq import Seq2SeqModel

    for cls in [*_package_families(), Seq2SeqModel]:
        assert ">>>" in (cls.__doc__ or ""), f"{cls.__name__} has no runnable example"
