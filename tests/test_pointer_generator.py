"""The pointer-generator decoder: it copies tokens it was never trained to generate, its
coverage loss is part of the training loss, its step matches teacher forcing, and it
exports and serves on the Session path."""

from __future__ import annotations

import random

import keras
import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from s2s_zoo.bundle import load_bundle
from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.export.conformance import check_serving, run_in_session
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.layers.coverage import coverage_loss
from s2s_zoo.models.registry import build_from_catalog
from s2s_zoo.training.fit import TrainConfig, compile_model, fit
from s2s_zoo.training.losses import SequenceLoss

TINY = {"embedding_dim": 16, "encoder_units": 16, "decoder_units": 32, "attention_units": 16}
FILLERS = ["red", "green", "blue", "big", "small", "old", "new", "the", "a", "some"]
CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"


def made_up_names(count: int, seed: int) -> list[str]:
    """Distinct pronounceable 6-letter words, none of them a filler."""
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(3)))
    return sorted(names)


def name_examples(names: list[str], count: int, seed: int) -> list[tuple[str, str]]:
    """'<fillers> name X <fillers>' -> 'X': the target is a token of the source."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        before = rng.sample(FILLERS, rng.randint(0, 3))
        after = rng.sample(FILLERS, rng.randint(0, 2))
        name = rng.choice(names)
        examples.append((" ".join([*before, "name", name, *after]), name))
    return examples


@pytest.fixture(scope="module")
def copy_task():
    return make_copy_task()


def make_copy_task():
    """Training names and held-out names: all single pieces of the joint vocabulary."""
    candidates = made_up_names(120, seed=1)
    # the tokenizer sees every name (one shared vocabulary); the model trains on some of them
    texts = [s for s, _ in name_examples(candidates, 2000, seed=2)]
    proto = train_sentencepiece(texts, 400)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    names = [n for n in candidates if len(sp.encode(n)) == 1]  # copying a name is one step
    assert len(names) >= 60, len(names)
    train_names, test_names = names[: 2 * len(names) // 3], names[2 * len(names) // 3 :]
    train = name_examples(train_names, 1200, seed=3)
    test = name_examples(test_names, 60, seed=4)
    trained_target_ids = {i for _, t in train for i in sp.encode(t)}
    assert not trained_target_ids & {sp.encode(n)[0] for n in test_names}
    pre = TextPreprocessor(proto, proto, max_source_length=16, max_target_length=6)
    return train, test, pre


def train_tiny(
    name: str, pre, examples, epochs: int, seed: int = 0, learning_rate: float = 3e-3, **overrides
):
    keras.utils.set_random_seed(seed)
    vocab = pre.target_vocab_size
    model = build_from_catalog(name, vocab, vocab, **{**TINY, **overrides})
    # 1e-2 can saturate the copier's additive attention: it then splits it between the name
    # and the source EOS for good (a plateau at loss ln(2) / 2); the no-copy model needs it
    config = TrainConfig(epochs=epochs, batch_size=32, learning_rate=learning_rate, patience=0)
    compile_model(model.training_model, config)
    fit(model.training_model, make_dataset(examples, pre, 32, seed=seed), None, config, verbose=0)
    decoding = DecodingConfig(beam_size=3, num_hypotheses=2, max_length_ratio=0.0,
                              max_length_offset=4)  # fmt: skip
    return Seq2SeqInference(pre, model, decoding)


def exact(inference, examples, mode: str = "greedy") -> float:
    out = getattr(inference, mode)(tf.constant([s for s, _ in examples]))["outputs"].numpy()
    return float(np.mean([o.decode() == t for o, (_, t) in zip(out, examples, strict=True)]))


@pytest.fixture(scope="module")
def trained_copier(copy_task):
    train, _, pre = copy_task
    return train_tiny("pointer_generator", pre, train, epochs=6)


@pytest.mark.slow
def test_pointer_copies_names_it_never_generated_where_no_copy_cannot(copy_task, trained_copier):
    train, test, pre = copy_task
    assert exact(trained_copier, train[:60]) >= 0.9
    for mode in ("greedy", "beam"):
        assert exact(trained_copier, test, mode) >= 0.9, mode  # copies unseen names
    baseline = train_tiny("seq2seq_attention_summ", pre, train, epochs=6, learning_rate=1e-2)
    assert exact(baseline, train[:60]) >= 0.7  # it learned the task for names it has seen
    for mode in ("greedy", "beam"):
        assert exact(baseline, test, mode) == 0.0, mode  # but cannot produce unseen ones


def test_coverage_loss_is_part_of_the_training_loss(copy_task):
    """A training call adds w times the coverage loss, recomputed here from the decoding
    steps (the step path's attention); evaluate() reports the sequence loss alone."""
    train, _, pre = copy_task
    vocab = pre.target_vocab_size
    examples = train[:16]
    weight = 0.7
    keras.utils.set_random_seed(4)
    with_loss = build_from_catalog("pointer_generator_coverage", vocab, vocab, **TINY,
                                   coverage_loss_weight=weight)  # fmt: skip
    without = build_from_catalog("pointer_generator_coverage", vocab, vocab, **TINY,
                                 coverage_loss_weight=0.0)  # fmt: skip
    config = TrainConfig(epochs=1, batch_size=16, learning_rate=1e-2, patience=0)
    for model in (with_loss, without):
        compile_model(model.training_model, config)
    # one fit epoch: the extra loss trains through model.fit with the usual SequenceLoss
    ds = make_dataset(examples, pre, 16, shuffle=False)
    fit(with_loss.training_model, ds, None, config, verbose=0)
    without.training_model.set_weights(with_loss.training_model.get_weights())

    (source, target_in), target_out = next(iter(ds))
    batch = tf.data.Dataset.from_tensors(((source, target_in), target_out))
    validation = with_loss.training_model.evaluate(batch, verbose=0, return_dict=True)["loss"]
    plain = without.training_model.evaluate(batch, verbose=0, return_dict=True)["loss"]
    logits = without.training_model([source, target_in])
    np.testing.assert_allclose(plain, float(tf.reduce_sum(SequenceLoss()(target_out, logits))),
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(validation, plain, rtol=1e-5)  # no coverage term there
    with_loss.training_model([source, target_in], training=True)  # no dropout in TINY
    added = sum(float(loss) for loss in with_loss.training_model.losses)

    # the coverage loss from the step-by-step decoder (coverage carried in the state)
    memory, state = with_loss.encode(source)
    weights, coverages = [], []
    for t in range(target_in.shape[1]):
        coverages.append(state["coverage"])
        _, state = with_loss.step(target_in[:, t], state, memory)
        weights.append(state["attention"])
    attention, coverage = tf.stack(weights, 1), tf.stack(coverages, 1)
    np.testing.assert_allclose(coverage[:, 1:], tf.cumsum(attention, 1)[:, :-1], atol=1e-5)
    expected = float(coverage_loss(attention, target_in != 0, coverage))
    assert expected > 0.01
    np.testing.assert_allclose(added, weight * expected, rtol=1e-3, atol=1e-5)


def test_coverage_loss_counts_from_its_step(copy_task):
    """coverage_loss_from_step=3 (See et al.'s final phase): training calls 0, 1 and 2 add
    no coverage term, calls 3 on add it; fit counts one call per training batch, and the
    count is a model weight (saved and restored with it)."""
    train, _, pre = copy_task
    vocab = pre.target_vocab_size
    keras.utils.set_random_seed(4)
    model = build_from_catalog("pointer_generator_coverage", vocab, vocab, **TINY,
                               coverage_loss_weight=0.7, coverage_loss_from_step=3)  # fmt: skip
    (source, target_in), _ = next(iter(make_dataset(train[:8], pre, 8, shuffle=False)))
    term = model.decoder.coverage_term
    added = []
    for _ in range(5):
        model.training_model([source, target_in], training=True)
        added.append(sum(float(loss) for loss in model.training_model.losses))
    assert [a > 1e-4 for a in added] == [False, False, False, True, True]
    model.training_model([source, target_in])  # inference: neither counted nor added
    assert int(term.steps.numpy()) == 5 and not model.training_model.losses
    config = TrainConfig(epochs=1, batch_size=8, learning_rate=1e-2, patience=0)
    compile_model(model.training_model, config)
    fit(model.training_model, make_dataset(train[:64], pre, 8).take(2), None, config, verbose=0)
    assert int(term.steps.numpy()) == 5 + 2  # one per training batch
    assert any(w is term.steps for w in model.training_model.weights)


@pytest.mark.parametrize("name", ["pointer_generator", "pointer_generator_coverage"])
def test_steps_reproduce_teacher_forcing(copy_task, name):
    """Decoding step by step gives the teacher-forced log-probs at every position."""
    train, _, pre = copy_task
    vocab = pre.target_vocab_size
    keras.utils.set_random_seed(6)
    model = build_from_catalog(name, vocab, vocab, **TINY)
    source = pre.source_ids([s for s, _ in train[:3]])
    target_in, _ = pre.target_in_out([t + " " + t for _, t in train[:3]])
    forced = model.training_model([source, target_in]).numpy()
    np.testing.assert_allclose(np.exp(forced).sum(-1), 1.0, atol=1e-4)  # a distribution
    memory, state = model.encode(source)
    for t in range(target_in.shape[1]):
        log_probs, state = model.step(target_in[:, t], state, memory)
        np.testing.assert_allclose(log_probs.numpy(), forced[:, t], atol=1e-4)


def test_copy_model_refuses_two_vocabularies(copy_task, tiny_preprocessor):
    _, pre = tiny_preprocessor  # separate source and target SentencePiece models
    vocab = max(pre.source_vocab_size, pre.target_vocab_size)
    model = build_from_catalog("pointer_generator", vocab, vocab, **TINY)
    with pytest.raises(ValueError, match="share one vocabulary"):
        Seq2SeqInference(pre, model, DecodingConfig())
    with pytest.raises(ValueError, match="joint vocabulary"):
        build_from_catalog("pointer_generator", vocab + 1, vocab, **TINY)


@pytest.mark.slow
def test_export_serves_the_copying_model(copy_task, trained_copier, tmp_path):
    _, test, _ = copy_task
    path = export_saved_model(trained_copier, tmp_path / "pg", task="summarization")
    texts = [s for s, _ in test[:5]] + ["", "name"]
    report = check_serving(path, trained_copier, texts=texts)
    assert report.ok, report.mismatches
    assert "alignment" in report.signatures
    served = run_in_session(path, [{"signature": "beam", "inputs": {"inputs": texts[:5]}}])
    assert served["results"][0]["outputs"] == [t for _, t in test[:5]]  # unseen names, copied
    rebuilt = load_bundle(path)
    assert rebuilt.model.config == trained_copier.model.config
    assert exact(rebuilt, test[:20]) == exact(trained_copier, test[:20])
