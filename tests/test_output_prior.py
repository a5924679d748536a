"""Issue 12: a 2x256 LSTM with Luong attention at a 16k vocabulary stayed at the unigram
loss and decoded nothing. With a zero output bias, Adam fits the token frequencies through
the decoder's last tanh vector (all output columns move at full rate), which saturates to
one +-1 pattern at every position and stops passing gradients. The runner now starts the
output bias at the target log-prior (`s2s_zoo.training.priors`); these tests pin that, on
real text (gettext catalogs) and a scaled-down 2-layer `lstm_luong`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.tasks.base import get_task
from s2s_zoo.tasks.translation.gettext_corpus import DEFAULT_LOCALE_DIR, build_corpus
from s2s_zoo.training.fit import TrainConfig, compile_model
from s2s_zoo.training.runner import Recipe, argument_parser, build_inference

SMALL_2X = {"embedding_dim": 32, "encoder_units": 64, "decoder_units": 64,
            "attention_units": 64, "encoder_layers": 2, "decoder_layers": 2,
            "bidirectional": False}  # fmt: skip


@pytest.fixture(scope="module")
def real_pairs():
    if not any((DEFAULT_LOCALE_DIR / "fr" / "LC_MESSAGES").glob("*.mo")):
        pytest.skip("no French gettext catalogs on this machine")
    splits, _ = build_corpus("fr")
    return splits["train"][:3000]


def fresh_inference(pairs, vocab_size: int = 2000):
    recipe = Recipe(name="prior_test", task="translation", model="lstm_luong",
                    model_overrides=SMALL_2X)  # fmt: skip
    task = get_task("translation")
    args = argument_parser(recipe, task).parse_args(["--vocab-size", str(vocab_size)])
    keras.utils.set_random_seed(0)
    return build_inference(recipe, task, args, pairs)


def unigram_entropy(inference, pairs) -> float:
    _, out = inference.preprocessor.target_in_out_ragged(tf.constant([t for _, t in pairs]))
    counts = np.bincount(out.flat_values.numpy())
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def test_fresh_model_starts_at_the_unigram_loss(real_pairs):
    inference = fresh_inference(real_pairs)
    vocab = inference.preprocessor.target_vocab_size
    assert vocab > 1000  # many rare output classes, as at 16k on the full corpus
    model = inference.model.training_model
    compile_model(model, TrainConfig())
    ds = make_dataset(real_pairs, inference.preprocessor, 64, shuffle=False).take(8)
    loss = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
    # a zero bias starts at ln(vocab), far above what the token frequencies alone give
    assert loss < unigram_entropy(inference, real_pairs) + 0.1 < np.log(vocab) - 1.0


def test_two_layer_luong_learns_past_the_unigram_loss(real_pairs):
    """120 updates at the catalog's learning rate: the decoder's attentional vector stays
    informative (not one saturated pattern) and the loss goes below the frequencies'."""
    inference = fresh_inference(real_pairs)
    model = inference.model.training_model
    compile_model(model, TrainConfig(learning_rate=3e-3))
    train = make_dataset(real_pairs, inference.preprocessor, 32, seed=0).repeat().take(120)
    model.fit(train, verbose=0)

    held = make_dataset(real_pairs[:256], inference.preprocessor, 64, shuffle=False)
    loss = model.evaluate(held, verbose=0, return_dict=True)["loss"]
    (source, target_in), target_out = next(iter(held))
    attentional = keras.Model(model.inputs, model.get_layer("decoder").output)
    vectors = attentional([source, target_in], training=False).numpy()[target_out.numpy() != 0]
    saturated = float(np.mean(np.abs(vectors) > 0.99))
    assert saturated < 0.25, saturated
    assert loss < unigram_entropy(inference, real_pairs) - 0.5, loss
