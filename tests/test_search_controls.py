"""Decoding controls (min_length, no_repeat_ngram_size, GNMT coverage penalty) against brute force,
and the `nbest` endpoint's argument checks.

Each control is checked the way `test_search.py` checks plain beam search: enumerate every
output of a tiny random model, apply the rule in plain Python, rank, and compare with a beam
wide enough to hold every prefix (and with step-by-step greedy decoding).
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.decoding import (
    beam_search,
    decode_steps,
    gnmt_coverage_penalty,
    greedy_search,
    repeated_ngram_bans,
)
from s2s_zoo.inference import Seq2SeqInference
from tests.test_search import (
    BOS,
    EOS,
    MAX_LEN,
    NON_EOS,
    PAD,
    SOURCES,
    UNK,
    all_sequences,
    encode,
    hypotheses,
    make_model,
    penalty,
)

BANNED = (PAD, UNK, BOS)


@pytest.fixture(scope="module")
def model():
    return make_model(0)


def teacher_force(model, source, seqs) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: summed log-probs [S] and attention summed over its steps [S, source_len]."""
    width = max(len(s) for s in seqs)
    targets = np.full([len(seqs), width], NON_EOS[0], np.int32)
    mask = np.zeros([len(seqs), width])
    for i, seq in enumerate(seqs):
        targets[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1.0
    inputs = np.concatenate([np.full([len(seqs), 1], BOS, np.int32), targets[:, :-1]], axis=1)
    state, memory = encode(model, [source])
    state, memory = (
        tf.nest.map_structure(lambda x: tf.repeat(x, len(seqs), axis=0), tree)
        for tree in (state, memory)
    )
    rows = np.arange(len(seqs))
    log_prob = np.zeros(len(seqs))
    coverage = np.zeros([len(seqs), len(source)])
    for t in range(width):
        logits, state = model.step(tf.constant(inputs[:, t]), state, memory)
        step = tf.nn.log_softmax(logits).numpy().astype(np.float64)
        log_prob += step[rows, targets[:, t]] * mask[:, t]
        coverage += state["attention"].numpy() * mask[:, t, None]
    return log_prob, coverage


def ranked(scores: np.ndarray, seqs: list, keep: list[bool]) -> list[tuple[float, tuple]]:
    """(score, sequence) of the kept sequences, best first."""
    kept = [(float(s), seq) for s, seq, k in zip(scores, seqs, keep, strict=True) if k]
    return sorted(kept, key=lambda x: -x[0])


def assert_nbest(found: list, found_scores: np.ndarray, expected: list, n: int) -> None:
    expected_scores = np.array([s for s, _ in expected[: n + 1]])
    assert np.all(-np.diff(expected_scores) > 1e-4), expected[: n + 1]  # well-defined order
    assert found == [seq for _, seq in expected[:n]]
    np.testing.assert_allclose(found_scores, expected_scores[:n], atol=1e-4)


def run_beam(model, sources, limits, **kwargs):
    state, memory = encode(model, sources)
    result = beam_search(
        model.step, state, memory, tf.constant(limits, tf.int32), BOS, EOS, **kwargs
    )
    return hypotheses(result.ids.numpy(), result.lengths.numpy()), result


def run_greedy(model, sources, limits, **kwargs):
    state, memory = encode(model, sources)
    result = greedy_search(
        model.step, state, memory, tf.constant(limits, tf.int32), BOS, EOS, **kwargs
    )
    return hypotheses(result.ids.numpy(), result.lengths.numpy()), result


def reference_greedy(model, source, limit, banned_fn) -> tuple[tuple, float]:
    """Step-by-step argmax over the tokens `banned_fn(prefix)` leaves, for one source."""
    state, memory = encode(model, [source])
    tokens, total = (), 0.0
    while len(tokens) < limit and (not tokens or tokens[-1] != EOS):
        last = tokens[-1] if tokens else BOS
        logits, state = model.step(tf.constant([last]), state, memory)
        log_probs = tf.nn.log_softmax(logits)[0].numpy().astype(np.float64)
        allowed = [v for v in range(len(log_probs)) if v not in BANNED + banned_fn(tokens)]
        token = max(allowed, key=lambda v: log_probs[v])
        tokens, total = (*tokens, token), total + log_probs[token]
    return tokens, total


# -- min_length ----------------------------------------------------------------------------


def too_short(seq: tuple, min_length: int, limit: int) -> bool:
    return seq[-1] == EOS and len(seq) - 1 < min(min_length, limit - 1)


@pytest.mark.parametrize("min_length", [2, 3])
def test_min_length_beam_is_exhaustive(model, min_length):
    alpha, n = 0.6, 3
    seqs = all_sequences(MAX_LEN)
    found, result = run_beam(
        model,
        SOURCES,
        [MAX_LEN] * len(SOURCES),
        beam_size=64,
        num_hypotheses=n,
        length_penalty=alpha,
        min_length=min_length,
    )
    changed = False
    for b, source in enumerate(SOURCES):
        log_prob, _ = teacher_force(model, source, seqs)
        scores = log_prob / np.array([penalty(len(s), alpha) for s in seqs])
        expected = ranked(scores, seqs, [not too_short(s, min_length, MAX_LEN) for s in seqs])
        assert_nbest(found[b], result.scores.numpy()[b], expected, n)
        assert all(len(s) - (s[-1] == EOS) >= min_length for s in found[b])
        unconstrained = ranked(scores, seqs, [True] * len(seqs))[0][1]
        changed |= too_short(unconstrained, min_length, MAX_LEN)
    assert changed  # the rule decides at least one item's winner


def test_min_length_is_capped_by_each_items_max_length():
    """min_length 9 with limits 1..4: EOS becomes allowed at the last step of each item."""
    model = make_model(0, eos_shift=1.0)  # EOS-happy: unconstrained, (EOS,) wins
    limits = [4, 1, 3]
    found, result = run_beam(
        model, SOURCES, limits, beam_size=64, num_hypotheses=2, length_penalty=0.0, min_length=9
    )
    for b, (source, limit) in enumerate(zip(SOURCES, limits, strict=True)):
        seqs = all_sequences(limit)
        log_prob, _ = teacher_force(model, source, seqs)
        expected = ranked(log_prob, seqs, [not too_short(s, 9, limit) for s in seqs])
        assert_nbest(found[b], result.scores.numpy()[b], expected, 2)
        assert all(len(s) == limit for s in found[b])
    assert any(s[-1] == EOS for item in found for s in item)  # EOS at the last step happens


def test_min_length_greedy_matches_a_stepwise_reference():
    model = make_model(0, eos_shift=1.0)  # EOS-happy: unconstrained greedy stops at once
    limits, min_length = [5, 2, 6], 4
    found, result = run_greedy(model, SOURCES, limits, min_length=min_length)
    unconstrained, _ = run_greedy(model, SOURCES, limits)
    assert unconstrained == [(EOS,)] * 3
    for b, (source, limit) in enumerate(zip(SOURCES, limits, strict=True)):
        cap = min(min_length, limit - 1)
        tokens, total = reference_greedy(
            model, source, limit, lambda prefix, cap=cap: (EOS,) if len(prefix) < cap else ()
        )
        assert found[b] == tokens
        np.testing.assert_allclose(result.log_probs.numpy()[b], total, atol=1e-5)


# -- no_repeat_ngram_size ---------------------------------------------------------------


def repeats(seq: tuple, n: int) -> bool:
    grams = [seq[i : i + n] for i in range(len(seq) - n + 1)]
    return len(set(grams)) < len(grams)


def reference_bans(prefix: tuple, n: int) -> tuple[int, ...]:
    """Tokens completing an n-gram that already occurs in `prefix` (plain Python)."""
    if len(prefix) < n:
        return ()
    tail = prefix[len(prefix) - n + 1 :] if n > 1 else ()
    return tuple(
        prefix[i + n - 1] for i in range(len(prefix) - n + 1) if prefix[i : i + n - 1] == tail
    )


@pytest.mark.parametrize("ngram", [1, 2, 3])
def test_repeated_ngram_bans_match_a_python_reference(ngram):
    rng = np.random.default_rng(ngram)
    rows, width, vocab = 40, 9, 5
    ids = rng.integers(0, 3, size=[rows, width]).astype(np.int32)  # few ids: many repeats
    for t in range(width + 1):
        got = repeated_ngram_bans(tf.constant(ids), tf.constant(t), ngram, tf.constant(vocab))
        assert got.shape == (rows, vocab)
        for r in range(rows):
            expected = set(reference_bans(tuple(ids[r, :t]), ngram))
            assert set(np.flatnonzero(got.numpy()[r])) == expected, (r, t, ids[r, :t])


@pytest.mark.parametrize("ngram", [1, 2])
def test_no_repeat_ngram_beam_is_exhaustive(ngram):
    model = make_model(0, eos_shift=-4.0)  # unconstrained winners repeat tokens: (6, 5, 5, 5)
    alpha, n = 1.0, 3
    seqs = all_sequences(MAX_LEN)
    found, result = run_beam(
        model,
        SOURCES,
        [MAX_LEN] * len(SOURCES),
        beam_size=64,
        num_hypotheses=n,
        length_penalty=alpha,
        no_repeat_ngram_size=ngram,
    )
    changed = False
    for b, source in enumerate(SOURCES):
        log_prob, _ = teacher_force(model, source, seqs)
        scores = log_prob / np.array([penalty(len(s), alpha) for s in seqs])
        expected = ranked(scores, seqs, [not repeats(s, ngram) for s in seqs])
        assert_nbest(found[b], result.scores.numpy()[b], expected, n)
        changed |= repeats(ranked(scores, seqs, [True] * len(seqs))[0][1], ngram)
    assert changed


@pytest.mark.parametrize("ngram", [1, 2])
def test_no_repeat_ngram_greedy_matches_a_stepwise_reference(model, ngram):
    limits = [6, 3, 5]
    found, result = run_greedy(model, SOURCES, limits, no_repeat_ngram_size=ngram)
    unconstrained, _ = run_greedy(model, SOURCES, limits)
    assert any(repeats(s, ngram) for s in unconstrained)
    for b, (source, limit) in enumerate(zip(SOURCES, limits, strict=True)):
        tokens, total = reference_greedy(
            model, source, limit, lambda prefix: reference_bans(prefix, ngram)
        )
        assert found[b] == tokens
        np.testing.assert_allclose(result.log_probs.numpy()[b], total, atol=1e-5)


def test_a_hypothesis_with_no_allowed_token_ends():
    """Unigram blocking over 3 content tokens with EOS banned by min_length: after 3 tokens
    nothing is allowed, so the hypothesis ends with EOS instead of emitting a banned id."""
    probs = np.array([1e-9, 0.3, 1e-9, 0.05, 0.3, 0.2, 0.15])  # UNK banned; 4 > 5 > 6 > EOS

    def step(token_ids, state, memory):
        row = tf.constant(np.log(probs), tf.float32)[None, :]
        return tf.tile(row, [tf.size(token_ids), 1]), state

    limits = tf.constant([8])
    greedy = greedy_search(step, {}, {}, limits, BOS, EOS, min_length=7, no_repeat_ngram_size=1)
    assert hypotheses(greedy.ids.numpy(), greedy.lengths.numpy()) == [(4, 5, 6, EOS)]
    np.testing.assert_allclose(greedy.log_probs.numpy(), [np.log(probs[[4, 5, 6, 3]]).sum()], 1e-5)
    beam = beam_search(
        step,
        {},
        {},
        limits,
        BOS,
        EOS,
        beam_size=6,
        num_hypotheses=6,
        min_length=7,
        no_repeat_ngram_size=1,
    )
    # Every order of 4, 5, 6 has the same log-prob; all six end with EOS.
    found = hypotheses(beam.ids.numpy(), beam.lengths.numpy())[0]
    assert sorted(found) == [(*p, EOS) for p in itertools.permutations((4, 5, 6))]
    np.testing.assert_allclose(beam.log_probs.numpy()[0], greedy.log_probs.numpy()[0], 1e-5)


def test_invalid_control_values_are_refused(model):
    state, memory = encode(model, SOURCES[:1])
    for bad in (-1, 2.0, tf.constant(2)):
        with pytest.raises(ValueError, match="no_repeat_ngram_size"):
            greedy_search(
                model.step, state, memory, tf.constant([3]), BOS, EOS, no_repeat_ngram_size=bad
            )
    for search in (greedy_search, beam_search):
        with pytest.raises(ValueError, match="min_length must be >= 0"):
            search(model.step, state, memory, tf.constant([3]), BOS, EOS, min_length=-1)


# -- coverage penalty --------------------------------------------------------------------


def coverage_scores(coverage: np.ndarray, beta: float, source: list[int]) -> np.ndarray:
    """GNMT: beta * sum over real source positions of log(min(coverage, 1)), in NumPy."""
    real = np.array(source) != PAD
    logs = np.log(np.clip(np.minimum(coverage, 1.0), 1e-10, None))
    return beta * (logs * real).sum(axis=-1)


@pytest.mark.parametrize("with_mask", [True, False])
def test_coverage_penalty_beam_is_exhaustive(model, with_mask):
    alpha, beta, n = 0.6, 0.2, 3
    seqs = all_sequences(MAX_LEN)
    source_mask = tf.constant(SOURCES) != PAD if with_mask else None
    found, result = run_beam(
        model,
        SOURCES,
        [MAX_LEN] * len(SOURCES),
        beam_size=64,
        num_hypotheses=n,
        length_penalty=alpha,
        coverage_penalty=beta,
        source_mask=source_mask,
    )
    changed = False
    for b, source in enumerate(SOURCES):
        log_prob, coverage = teacher_force(model, source, seqs)
        normalised = log_prob / np.array([penalty(len(s), alpha) for s in seqs])
        scores = normalised + coverage_scores(coverage, beta, source)
        expected = ranked(scores, seqs, [True] * len(seqs))
        assert_nbest(found[b], result.scores.numpy()[b], expected, n)
        changed |= ranked(normalised, seqs, [True] * len(seqs))[0][1] != expected[0][1]
    assert changed  # the penalty decides at least one item's winner


def test_coverage_penalty_formula():
    coverage = tf.constant([[0.5, 1.7, 0.0, 0.25]])
    mask = tf.constant([[True, True, False, True]])
    expected = 0.3 * (np.log(0.5) + np.log(1.0) + np.log(0.25))
    np.testing.assert_allclose(gnmt_coverage_penalty(coverage, 0.3, mask).numpy(), [expected])
    # Without a mask, never-attended positions count as padding.
    np.testing.assert_allclose(gnmt_coverage_penalty(coverage, 0.3).numpy(), [expected])
    # A real position never attended is floored, not -inf.
    floored = gnmt_coverage_penalty(coverage, 1.0, tf.ones_like(mask)).numpy()
    assert np.isfinite(floored).all() and floored[0] < -20


def test_coverage_penalty_needs_attention():
    def step(token_ids, state, memory):
        return tf.zeros([tf.size(token_ids), 6]), state

    with pytest.raises(ValueError, match="attention"):
        beam_search(
            step, {"h": tf.zeros([1, 2])}, {}, tf.constant([3]), BOS, EOS, coverage_penalty=0.2
        )


# -- graph mode, XLA, defaults ------------------------------------------------------------


def attending_step(token_ids, state, memory):
    """Toy decoder with attention: logits and attention rows chosen by the previous token."""
    logits = tf.gather(memory["logits"], token_ids, batch_dims=1)
    attention = tf.gather(memory["attention"], token_ids, batch_dims=1)
    return logits, {"attention": attention}


def toy_inputs(batch: int, vocab: int = 7, source_len: int = 3):
    rng = np.random.default_rng(7)
    logits = tf.constant(2.5 * rng.normal(size=[batch, vocab, vocab]), tf.float32)
    attention = tf.nn.softmax(tf.constant(3.0 * rng.normal(size=[batch, vocab, source_len])))
    memory = {"logits": logits, "attention": tf.cast(attention, tf.float32)}
    return {"attention": tf.zeros([batch, source_len])}, memory


def controlled(limits, state, memory):
    kwargs = {"min_length": 2, "no_repeat_ngram_size": 2}
    greedy = greedy_search(attending_step, state, memory, limits, BOS, EOS, **kwargs)
    beam = beam_search(
        attending_step,
        state,
        memory,
        limits,
        BOS,
        EOS,
        beam_size=3,
        num_hypotheses=2,
        length_penalty=0.6,
        coverage_penalty=0.4,
        **kwargs,
    )
    return greedy, beam


def assert_same(got, expected) -> None:
    for name in ("ids", "lengths", "content_lengths"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    for name in ("scores", "log_probs"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), atol=1e-5)


def test_controls_in_a_graph_with_dynamic_shapes_and_under_xla():
    limits = tf.constant([9, 4, 7, 9])
    state, memory = toy_inputs(4)
    eager = controlled(limits, state, memory)
    assert any(len(s) > 3 for s in hypotheses(eager[0].ids.numpy(), eager[0].lengths.numpy()))
    spec = {
        "attention": tf.TensorSpec([None, None], tf.float32),
    }
    memory_spec = {
        "logits": tf.TensorSpec([None, None, None], tf.float32),
        "attention": tf.TensorSpec([None, None, None], tf.float32),
    }
    graph = tf.function(
        controlled, input_signature=[tf.TensorSpec([None], tf.int32), spec, memory_spec]
    )
    xla = tf.function(controlled, jit_compile=True)
    for run in (graph, xla):
        for got, expected in zip(run(limits, state, memory), eager, strict=True):
            assert_same(got, expected)


def test_controls_default_off(model):
    limits = [4, 3, 4]
    kwargs = {"beam_size": 3, "num_hypotheses": 2, "length_penalty": 0.6}
    _, plain = run_beam(model, SOURCES, limits, **kwargs)
    _, off = run_beam(
        model,
        SOURCES,
        limits,
        min_length=0,
        no_repeat_ngram_size=0,
        coverage_penalty=0.0,
        **kwargs,
    )
    assert_same(off, plain)


def test_decode_steps():
    assert decode_steps(tf.constant([3, 9, 1])).numpy() == 9
    assert decode_steps(tf.zeros([0], tf.int32)).numpy() == 0
    assert decode_steps(tf.constant([0, 0])).numpy() == 0


# -- nbest request arguments --------------------------------------------------------------


def nbest_checks():
    """`Seq2SeqInference._nbest` as a serving-style tf.function over a stand-in `_run_beam`
    (its argument checks need no model)."""
    fake = SimpleNamespace(
        _run_beam=lambda inputs, beam_size, num_hypotheses, max_length: {
            "beam_size": beam_size + 0,
            "max_length": max_length + 0,
        }
    )
    return tf.function(
        lambda inputs, b, n, m: Seq2SeqInference._nbest(fake, inputs, b, n, m),
        input_signature=[tf.TensorSpec([None], tf.string)] + [tf.TensorSpec([], tf.int32)] * 3,
    )


@pytest.mark.parametrize(
    ("beam_size", "num_hypotheses", "max_length", "message"),
    [
        (0, 1, 10, "beam_size must be at least 1"),
        (65, 1, 10, "beam_size must be at most 64"),
        (4, 0, 10, "num_hypotheses must be at least 1"),
        (2, 3, 10, "num_hypotheses must not exceed beam_size"),
        (4, 2, -1, "max_length must be >= 0"),
    ],
)
def test_nbest_refuses_bad_arguments(beam_size, num_hypotheses, max_length, message):
    nbest = nbest_checks()
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        nbest(tf.constant(["x"]), beam_size, num_hypotheses, max_length)


def test_nbest_accepts_good_arguments():
    nbest = nbest_checks()
    for max_length in (0, 1, 30):
        out = nbest(tf.constant(["x"]), 4, 4, max_length)
        assert int(out["beam_size"]) == 4 and int(out["max_length"]) == max_length
