"""On a GPU, Keras 3 runs LSTM/GRU layers with the fused cuDNN kernels only under
conditions (tanh/sigmoid activations, no recurrent dropout, no unrolling, biases, GRU
reset_after, right-padded masks). Every catalog entry's recurrent layers meet them, or
the entry says in the catalog why not."""

from __future__ import annotations

import keras
import pytest

from s2s_zoo.models.registry import CATALOG, build_from_catalog, entry
from tests.conftest import tiny_overrides


def recurrent_layers(model: keras.Model):
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Bidirectional):
            yield layer.forward_layer
            yield layer.backward_layer
        elif isinstance(layer, keras.layers.RNN):
            yield layer


def cudnn_eligible(layer) -> bool:
    cell = layer.cell
    if not isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        return False
    ok = (
        cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and cell.recurrent_dropout == 0
        and not layer.unroll
        and cell.use_bias
    )
    if isinstance(layer, keras.layers.GRU):
        ok = ok and cell.reset_after
    return ok


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_recurrent_layers_can_use_cudnn_or_the_catalog_says_why(name):
    model = build_from_catalog(name, 40, 40, **tiny_overrides(name))
    layers = list(recurrent_layers(model.training_model))
    blocked = [layer.name for layer in layers if not cudnn_eligible(layer)]
    if entry(name).not_cudnn:
        assert blocked or "step by step" in entry(name).not_cudnn, name
    else:
        assert not blocked, f"{name}: {blocked} cannot use cuDNN"


def test_padding_is_always_on_the_right():
    """cuDNN needs right-padded masks: source reversal keeps padding last."""
    import tensorflow as tf

    from s2s_zoo.layers.recurrent import ReverseSource

    ids = tf.constant([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]])
    reversed_ids = ReverseSource()(ids).numpy().tolist()
    assert reversed_ids == [[7, 6, 5, 0, 0], [9, 8, 0, 0, 0]]
