"""Tests for s2s_zoo.layers.memory: position encoding, masking, tying, learning, serving."""

from __future__ import annotations

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.layers import memory as memory_module
from s2s_zoo.layers.memory import (
    SPEAKER_BOT,
    SPEAKER_KB,
    SPEAKER_USER,
    MemoryEncoder,
    _bag_weights,
    dialogue_memory,
    position_encoding,
)


def _encoder(**kwargs) -> MemoryEncoder:
    keras.utils.set_random_seed(0)
    config = {"vocab_size": 20, "embedding_dim": 8, "hops": 3, "max_slots": 10}
    return MemoryEncoder(**{**config, **kwargs})


def _random_memory(rng, batch=3, slots=4, length=5, vocab=20):
    """Random ids, right-padded sentences, and a varying number of real slots per row."""
    ids = rng.integers(1, vocab, size=(batch, slots, length))
    lengths = rng.integers(1, length + 1, size=(batch, slots))
    ids = np.where(np.arange(length) < lengths[..., None], ids, 0)
    real = np.arange(slots)[None] < rng.integers(1, slots + 1, size=(batch, 1))
    ids = np.where(real[..., None], ids, 0)
    query = np.where(np.arange(length) < 3, rng.integers(1, vocab, size=(batch, length)), 0)
    speakers = np.where(real, rng.integers(1, 4, size=(batch, slots)), 0)
    return ids.astype(np.int32), query.astype(np.int32), speakers.astype(np.int32)


def _same(actual, expected):
    """Equal up to float32 rounding (a few ulp), far below any modelling effect."""
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-7)


# --- position encoding ---------------------------------------------------------------


def test_position_encoding_matches_a_hand_computed_example():
    # J=3, d=4: l_kj = (1 - j/3) - (k/4)(1 - 2j/3)
    # j=1: 2/3 - k/12; j=2: 1/3 + k/12; j=3: k/4
    expected = np.array([[7, 6, 5, 4], [5, 6, 7, 8], [3, 6, 9, 12]], np.float32) / 12
    np.testing.assert_allclose(position_encoding(3, 4).numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(position_encoding(tf.constant(3), 4).numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(position_encoding(1, 2).numpy(), [[0.5, 1.0]], atol=1e-7)


def test_each_sentence_uses_its_own_length():
    present = tf.constant([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], tf.float32)
    weights = _bag_weights(present, 4, use_position=True).numpy()
    np.testing.assert_array_equal(weights[0, :3], position_encoding(3, 4).numpy())
    np.testing.assert_array_equal(weights[1, :2], position_encoding(2, 4).numpy())
    assert not weights[0, 3:].any() and not weights[1, 2:].any()


def test_docstring_examples_run():
    result = doctest.testmod(memory_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10 and result.failed == 0


# --- the encoder ---------------------------------------------------------------------


@pytest.mark.parametrize(("hop_update", "num_slots"), [("add", 4), ("linear", 4), ("add", 13)])
def test_padding_slots_and_tokens_change_no_output(hop_update, num_slots):
    rng = np.random.default_rng(0)
    ids, query, speakers = _random_memory(rng, slots=num_slots)
    encoder = _encoder(hop_update=hop_update)
    state, slots, mask, attention = (t.numpy() for t in encoder(ids, query, speakers))
    # eleven more padding slots, two more padding tokens per sentence and in the query
    padded = np.pad(ids, ((0, 0), (0, 11), (0, 2)))
    out = [
        t.numpy()
        for t in encoder(
            padded, np.pad(query, ((0, 0), (0, 2))), np.pad(speakers, ((0, 0), (0, 11)))
        )
    ]
    # slot vectors and the mask are bit-for-bit equal; state and attention pass through exp
    # and sums whose kernels round the last bit by tensor length, hence a few-ulp tolerance
    np.testing.assert_array_equal(out[1][:, :num_slots], slots)
    np.testing.assert_array_equal(out[2][:, :num_slots], mask)
    _same(out[0], state)
    _same(out[3][:, :num_slots], attention)
    assert (
        not out[1][:, num_slots:].any()
        and not out[2][:, num_slots:].any()
        and not out[3][:, num_slots:].any()
    )
    # padding slots already present inside the batch are exactly zero too
    assert not slots[~mask].any() and not attention[~mask].any()
    # one example alone gives the same result as inside the padded batch
    alone = encoder(ids[1:2, : mask[1].sum()], query[1:2], speakers[1:2, : mask[1].sum()])
    _same(alone[0].numpy()[0], state[1])
    _same(alone[3].numpy()[0], attention[1, : mask[1].sum()])


def test_attention_is_a_distribution_over_real_slots():
    rng = np.random.default_rng(1)
    ids, query, speakers = _random_memory(rng, batch=6, slots=7)
    _, _, mask, attention = _encoder(hops=2)(ids, query, speakers)
    mask, attention = mask.numpy(), attention.numpy()
    np.testing.assert_array_equal(mask, (ids != 0).any(-1))
    np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-6)
    assert (attention[mask] > 0).all() and (attention[~mask] == 0).all()


def test_empty_memory_reads_nothing():
    encoder = _encoder(hops=2)
    query = np.array([[4, 5, 0]], np.int32)
    state, _, mask, attention = encoder(np.zeros((1, 3, 3), np.int32), query)
    assert not mask.numpy().any() and not attention.numpy().any()
    words = encoder.word_tables[0].embeddings.numpy()
    expected = (position_encoding(2, 8).numpy() * words[[4, 5]]).sum(0)
    np.testing.assert_allclose(state.numpy()[0], expected, rtol=1e-6)


def test_one_hop_matches_a_numpy_reference_with_adjacent_tying():
    rng = np.random.default_rng(2)
    ids, query, speakers = _random_memory(rng, batch=2, slots=3, length=4)
    encoder = _encoder(hops=2, hop_update="linear")
    state, slots, _, attention = (t.numpy() for t in encoder(ids, query, speakers))
    words = [t.embeddings.numpy() for t in encoder.word_tables]
    times = [t.embeddings.numpy() for t in encoder.time_tables]
    speak = [t.embeddings.numpy() for t in encoder.speaker_tables]
    h = encoder.hop_projection.kernel.numpy()

    def bag(table, sentence):
        real = sentence[sentence != 0]
        if not len(real):
            return np.zeros(8, np.float32)
        return (position_encoding(len(real), 8).numpy() * table[real]).sum(0)

    for b in range(2):
        real = (ids[b] != 0).any(-1)

        def slot(k, b=b, real=real):
            return np.stack(
                [
                    (bag(words[k], ids[b, i]) + times[k][i] + speak[k][speakers[b, i]]) * real[i]
                    for i in range(3)
                ]
            )

        u = bag(words[0], query[b])
        for k in range(2):
            logits = slot(k) @ u
            p = np.where(real, np.exp(logits - logits[real].max()), 0)
            p /= p.sum()
            u = (u + p @ slot(k + 1)) @ h
        np.testing.assert_allclose(state[b], u, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(attention[b], p, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(slots[b], slot(2), rtol=1e-5, atol=1e-6)


def test_config_round_trip_rebuilds_the_same_layer():
    rng = np.random.default_rng(3)
    ids, query, speakers = _random_memory(rng)
    encoder = _encoder(hops=2, hop_update="linear", max_slots=5, num_speakers=4, name="mem")
    expected = encoder(ids, query, speakers)
    config = encoder.get_config()
    clone = MemoryEncoder.from_config(config)
    assert clone.get_config() == config
    assert config["hops"] == 2 and config["hop_update"] == "linear" and config["max_slots"] == 5
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(encoder))
    for other in (clone, revived):
        other(ids, query, speakers)
        other.set_weights(encoder.get_weights())
        for a, b in zip(other(ids, query, speakers), expected, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(encoder.get_weights()) == 3 * 3 + 1  # K+1 word, time, speaker tables + H
    with pytest.raises(ValueError, match="hop_update"):
        MemoryEncoder(10, 4, hop_update="gru")


def test_works_in_a_functional_model_saved_as_keras(tmp_path):
    keras.utils.set_random_seed(0)
    memory = keras.Input((None, None), dtype="int32")
    query = keras.Input((None,), dtype="int32")
    speakers = keras.Input((None,), dtype="int32")
    state, slots, mask, attention = MemoryEncoder(20, 8, hops=2)(memory, query, speakers)
    assert tuple(slots.shape) == (None, None, 8) and mask.dtype == "bool"
    model = keras.Model([memory, query, speakers], keras.layers.Dense(5)(state))
    ids, q, spk = _random_memory(np.random.default_rng(6))
    expected = model.predict([ids, q, spk], verbose=0)
    model.save(tmp_path / "m.keras")
    revived = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(revived.predict([ids, q, spk], verbose=0), expected)


# --- dialogue memory -----------------------------------------------------------------


def test_dialogue_memory_orders_turns_newest_first_then_facts():
    u1, b1, u2, b2, u3 = [1, 0], [2, 2], [3, 0], [4, 4], [5, 5]
    f1, f2, pad = [7, 8], [9, 0], [0, 0]
    context = tf.constant([[u1, b1, u2, b2, u3], [u1, b1, u2, pad, pad]])
    kb = tf.constant([[f1, pad, f2], [pad, pad, pad]])
    memory, speakers, query = (t.numpy().tolist() for t in dialogue_memory(context, kb))
    assert query == [u3, u2]
    assert memory == [[b2, u2, b1, u1, f1, f2, pad], [b1, u1, pad, pad, pad, pad, pad]]
    user, bot, kb_, none = SPEAKER_USER, SPEAKER_BOT, SPEAKER_KB, 0
    assert speakers == [[bot, user, bot, user, kb_, kb_, none], [bot, user] + [none] * 5]
    # a first turn has nothing to remember
    memory, speakers, query = dialogue_memory(tf.constant([[u1]]), tf.zeros([1, 0, 2], tf.int32))
    assert memory.shape == (1, 0, 2) and query.numpy().tolist() == [u1]


def test_dialogue_encoder_is_invariant_to_batch_padding():
    rng = np.random.default_rng(4)
    turns = rng.integers(1, 20, size=(2, 5, 3)).astype(np.int32)
    turns[1, 3:] = 0  # the second dialog has 3 turns
    facts = rng.integers(1, 20, size=(2, 2, 3)).astype(np.int32)
    facts[0, 1] = 0
    encoder = _encoder(hops=2)
    memory, speakers, query = dialogue_memory(turns, facts)
    base = encoder(memory, query, speakers)
    more_turns = np.pad(turns, ((0, 0), (0, 4), (0, 1)))
    more_facts = np.pad(facts, ((0, 0), (2, 3), (0, 2)))  # padding before and after
    memory, speakers, query = dialogue_memory(more_turns, more_facts)
    padded = encoder(memory, query, speakers)
    _same(padded[0].numpy(), base[0].numpy())
    n = base[3].shape[1]
    _same(padded[3].numpy()[:, :n], base[3].numpy())
    np.testing.assert_array_equal(padded[1].numpy()[:, :n], base[1].numpy())
    assert not padded[3].numpy()[:, n:].any()


def test_dialogue_encoder_runs_in_a_saved_model(tmp_path):
    encoder = _encoder(hops=2)

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None], tf.int32),
                tf.TensorSpec([None, None, None], tf.int32),
            ]
        )
        def encode(self, context, kb):
            memory, speakers, query = dialogue_memory(context, kb)
            state, _, _, attention = self.encoder(memory, query, speakers)
            return {"state": state, "attention": attention}

    rng = np.random.default_rng(5)
    context = rng.integers(1, 20, size=(2, 3, 4)).astype(np.int32)
    kb = rng.integers(1, 20, size=(2, 2, 4)).astype(np.int32)
    module = Serving()
    expected = module.encode(context, kb)
    tf.saved_model.save(module, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    got = loaded.encode(tf.constant(context), tf.constant(kb))
    np.testing.assert_allclose(got["state"].numpy(), expected["state"].numpy(), rtol=1e-6)


# --- learning ------------------------------------------------------------------------


def test_learns_to_read_the_slot_the_query_points_at():
    """Slots hold (key, value) pairs; the query names a key; the answer is its value.

    Only attention to the right slot can answer, so a big loss drop shows the hops,
    masking and gradients work together.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    keys, values, slots, batch = 8, 8, 5, 64

    def sample():
        key = np.stack([rng.permutation(keys)[:slots] + 1 for _ in range(batch)])
        value = rng.integers(keys + 1, keys + values + 1, size=(batch, slots))
        memory = np.stack([key, value], -1).astype(np.int32)
        real = rng.integers(2, slots + 1, size=batch)
        memory[np.arange(slots)[None] >= real[:, None]] = 0
        pick = rng.integers(0, real)
        query = np.stack([key[np.arange(batch), pick], np.zeros(batch, int)], -1)
        return memory, query.astype(np.int32), value[np.arange(batch), pick] - keys - 1

    vocab = keys + values + 1
    encoder = MemoryEncoder(vocab, 32, hops=1, max_slots=slots, num_speakers=0)
    head = keras.layers.Dense(values)
    optimizer = keras.optimizers.Adam(0.02)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(memory, query, target):
        with tf.GradientTape() as tape:
            loss = loss_fn(target, head(encoder(memory, query)[0]))
        variables = encoder.trainable_variables + head.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    losses = [float(step(*sample())) for _ in range(300)]
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert first > 1.8  # about log(8) at the start
    assert last < 0.25 * first, (first, last)
    memory, query, target = sample()
    predicted = np.argmax(head(encoder(memory, query)[0]).numpy(), -1)
    assert (predicted == target).mean() > 0.9
