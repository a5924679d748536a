"""Greedy and beam search against brute force, against each other, and across batches."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.decoding import beam_search, gnmt_length_penalty, greedy_search, max_output_lengths
from s2s_zoo.models import Seq2SeqModel, build_model

PAD, UNK, BOS, EOS = 0, 1, 2, 3
TARGET_VOCAB = 7  # 0 pad, 1 unk, 2 bos, 3 eos, 4, 5, 6: the search may emit 3, 4, 5, 6
NON_EOS = (4, 5, 6)
MAX_LEN = 4
SOURCES = [[4, 5, 6, 3], [7, 3, 0, 0], [8, 8, 5, 3]]  # the middle one is padded
FIELDS = ("ids", "scores", "log_probs", "lengths", "content_lengths")


def make_model(seed: int, scale: float = 6.0, eos_shift: float = -2.5) -> Seq2SeqModel:
    """A tiny random GRU+Bahdanau model with a sharpened output layer.

    Random weights give near-uniform next-token distributions; scaling the output
    kernel makes the search choices matter and lowering the EOS bias keeps long
    hypotheses competitive with short ones.
    """
    keras.utils.set_random_seed(seed)
    model = build_model(
        "rnn",
        {"vocab_size": 10, "embedding_dim": 8, "encoder_units": 16},
        "rnn",
        {"vocab_size": TARGET_VOCAB, "embedding_dim": 8, "decoder_units": 16,
         "attention_units": 16},
    )  # fmt: skip
    sharpen(model.decoder.output_projection, scale, eos_shift)
    return model


def sharpen(projection, scale: float, eos_shift: float) -> None:
    """Scale the output kernel (peakier choices) and shift the EOS bias (length balance)."""
    projection.kernel.assign(projection.kernel * scale)
    bias = projection.bias.numpy()
    bias[EOS] += eos_shift
    projection.bias.assign(bias)


@pytest.fixture(scope="module")
def model() -> Seq2SeqModel:
    return make_model(0)


def encode(model, sources):
    memory, state = model.encode(tf.constant(sources, tf.int32))
    return state, memory


def run_beam(model, sources, max_lengths, **kwargs) -> dict:
    state, memory = encode(model, sources)
    result = beam_search(
        model.step, state, memory, tf.constant(max_lengths, tf.int32), BOS, EOS, **kwargs
    )
    return {name: getattr(result, name).numpy() for name in FIELDS}


def run_greedy(model, sources, max_lengths) -> dict:
    state, memory = encode(model, sources)
    result = greedy_search(model.step, state, memory, tf.constant(max_lengths, tf.int32), BOS, EOS)
    return {name: getattr(result, name).numpy() for name in FIELDS}


def hypotheses(ids: np.ndarray, lengths: np.ndarray) -> list:
    """[..., T] ids and [...] lengths -> nested lists of token tuples (EOS kept)."""
    if ids.ndim == 1:
        return tuple(int(i) for i in ids[:lengths])
    return [hypotheses(i, n) for i, n in zip(ids, lengths, strict=True)]


def all_sequences(max_len: int) -> list[tuple[int, ...]]:
    """Every output the search can produce under `max_len`.

    Non-EOS tokens then EOS (at most max_len tokens in all), or max_len non-EOS
    tokens (stopped by the length limit).
    """
    seqs = [
        (*prefix, EOS) for n in range(max_len) for prefix in itertools.product(NON_EOS, repeat=n)
    ]
    return seqs + list(itertools.product(NON_EOS, repeat=max_len))


def sequence_log_probs(model, sources, seqs) -> np.ndarray:
    """[B, S]: sum of log_softmax(step logits) of each sequence given each source.

    Teacher-forces every sequence through `model.step` from BOS, in one batch of
    B * S rows; positions past a sequence's end are fed a filler token and ignored.
    """
    num_seqs, width = len(seqs), max(len(s) for s in seqs)
    targets = np.full([num_seqs, width], NON_EOS[0], np.int32)
    mask = np.zeros([num_seqs, width], np.float64)
    for i, seq in enumerate(seqs):
        targets[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1.0
    inputs = np.concatenate([np.full([num_seqs, 1], BOS, np.int32), targets[:, :-1]], axis=1)
    num_sources = len(sources)
    inputs, targets, mask = (np.tile(x, [num_sources, 1]) for x in (inputs, targets, mask))
    state, memory = encode(model, sources)
    state, memory = (
        tf.nest.map_structure(lambda x: tf.repeat(x, num_seqs, axis=0), tree)
        for tree in (state, memory)
    )
    rows = np.arange(num_sources * num_seqs)
    total = np.zeros(num_sources * num_seqs, np.float64)
    for t in range(width):
        logits, state = model.step(tf.constant(inputs[:, t]), state, memory)
        log_probs = tf.nn.log_softmax(logits).numpy().astype(np.float64)
        total += log_probs[rows, targets[:, t]] * mask[:, t]
    return total.reshape(num_sources, num_seqs)


def penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


# -- exactness ---------------------------------------------------------------------------


def make_transformer(seed: int, scale: float = 6.0, eos_shift: float = -2.5):
    """A tiny random Transformer (cached step), sharpened like `make_model`."""
    keras.utils.set_random_seed(seed)
    size = {"hidden_dim": 16, "intermediate_dim": 32, "num_heads": 2, "dropout": 0.0,
            "max_positions": 16}  # fmt: skip
    model = build_model(
        "transformer",
        {"vocab_size": 10, "encoder_layers": 1, **size},
        "transformer",
        {"vocab_size": TARGET_VOCAB, "decoder_layers": 2, "share_embeddings": "none", **size},
    )
    sharpen(model.decoder.output_projection, scale, eos_shift)
    return model


def test_wide_beam_is_exhaustive_nbest(model):
    assert_beam_is_exhaustive(model)


def test_wide_beam_is_exhaustive_nbest_for_a_transformer():
    # seed and EOS bias chosen so the 5 best mix lengths with no near-ties (checked inside)
    assert_beam_is_exhaustive(make_transformer(2, eos_shift=0.0))


def assert_beam_is_exhaustive(model) -> None:
    """Beam 64 >= every candidate, so its 5 best must be the brute-force 5 best."""
    seqs = all_sequences(MAX_LEN)
    assert len(seqs) == (1 + 3 + 9 + 27) + 81
    exhaustive = sequence_log_probs(model, SOURCES, seqs)
    result = run_beam(
        model,
        SOURCES,
        [MAX_LEN] * len(SOURCES),
        beam_size=64,
        num_hypotheses=5,
        length_penalty=0.0,
    )
    assert result["ids"].shape[:2] == (len(SOURCES), 5)
    found = hypotheses(result["ids"], result["lengths"])
    for b in range(len(SOURCES)):
        order = np.argsort(-exhaustive[b], kind="stable")
        top = order[:5]
        # No near-ties among the first six, so the expected order is well defined.
        assert np.all(-np.diff(exhaustive[b, order[:6]]) > 1e-3)
        expected = [seqs[i] for i in top]
        assert any(len(s) > 2 for s in expected), expected  # the test is about long ones too
        assert len({len(s) for s in expected}) > 1, expected
        assert found[b] == expected
        np.testing.assert_allclose(result["scores"][b], exhaustive[b, top], atol=1e-4)
        np.testing.assert_allclose(result["log_probs"][b], exhaustive[b, top], atol=1e-4)


def test_wide_beam_with_length_penalty_finds_the_best_normalised_score():
    model = make_model(0, eos_shift=-3.0)
    alpha = 1.0
    seqs = all_sequences(MAX_LEN)
    exhaustive = sequence_log_probs(model, SOURCES, seqs)
    normalised = exhaustive / np.array([penalty(len(s), alpha) for s in seqs])
    result = run_beam(
        model,
        SOURCES,
        [MAX_LEN] * len(SOURCES),
        beam_size=64,
        num_hypotheses=3,
        length_penalty=alpha,
    )
    found = hypotheses(result["ids"], result["lengths"])
    for b in range(len(SOURCES)):
        order = np.argsort(-normalised[b], kind="stable")
        assert normalised[b, order[0]] - normalised[b, order[1]] > 1e-3
        best = int(order[0])
        assert found[b][0] == seqs[best]
        np.testing.assert_allclose(result["scores"][b, 0], normalised[b, best], atol=1e-4)
        np.testing.assert_allclose(result["log_probs"][b, 0], exhaustive[b, best], atol=1e-4)
    # The penalty changes the winner here: without it the best output is shorter.
    unnormalised_best = [seqs[int(np.argmax(exhaustive[b]))] for b in range(len(SOURCES))]
    assert all(len(found[b][0]) > len(unnormalised_best[b]) for b in range(len(SOURCES))), (
        unnormalised_best
    )


def test_greedy_matches_stepwise_argmax(model):
    max_lengths = [4, 2, 6]
    result = run_greedy(model, SOURCES, max_lengths)
    state, memory = encode(model, SOURCES)
    for b, limit in enumerate(max_lengths):
        item_state = tf.nest.map_structure(lambda x, b=b: x[b : b + 1], state)
        item_memory = tf.nest.map_structure(lambda x, b=b: x[b : b + 1], memory)
        token, expected, total = BOS, [], 0.0
        while len(expected) < limit and (not expected or expected[-1] != EOS):
            logits, item_state = model.step(tf.constant([token]), item_state, item_memory)
            log_probs = tf.nn.log_softmax(logits)[0].numpy()
            log_probs[[PAD, UNK, BOS]] = -np.inf
            token = int(np.argmax(log_probs))
            expected.append(token)
            total += float(log_probs[token])
        assert hypotheses(result["ids"][b], result["lengths"][b]) == tuple(expected)
        np.testing.assert_allclose(result["scores"][b], total, atol=1e-5)
        np.testing.assert_allclose(result["log_probs"][b], total, atol=1e-5)


# -- beam 1 is greedy --------------------------------------------------------------------

BATCH = [[4, 5, 6, 7, 3], [7, 3, 0, 0, 0], [8, 8, 5, 3, 0], [9, 3, 0, 0, 0]]
BATCH_LIMITS = [6, 3, 5, 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_beam_size_one_is_greedy(seed):
    model = make_model(seed, eos_shift=-1.0)
    greedy = run_greedy(model, BATCH, BATCH_LIMITS)
    beam = run_beam(model, BATCH, BATCH_LIMITS, beam_size=1, num_hypotheses=1, length_penalty=0.0)
    assert beam["ids"].shape[1] == 1
    np.testing.assert_array_equal(beam["ids"][:, 0], greedy["ids"])
    np.testing.assert_array_equal(beam["lengths"][:, 0], greedy["lengths"])
    np.testing.assert_array_equal(beam["content_lengths"][:, 0], greedy["content_lengths"])
    np.testing.assert_allclose(beam["scores"][:, 0], greedy["scores"], atol=1e-5)
    np.testing.assert_allclose(beam["log_probs"][:, 0], greedy["log_probs"], atol=1e-5)

    penalised = run_beam(
        model, BATCH, BATCH_LIMITS, beam_size=1, num_hypotheses=1, length_penalty=0.6
    )
    np.testing.assert_array_equal(penalised["ids"][:, 0], greedy["ids"])
    np.testing.assert_array_equal(penalised["lengths"][:, 0], greedy["lengths"])
    np.testing.assert_allclose(penalised["log_probs"][:, 0], greedy["log_probs"], atol=1e-5)
    expected_scores = greedy["log_probs"] / penalty(greedy["lengths"], 0.6)
    np.testing.assert_allclose(penalised["scores"][:, 0], expected_scores, atol=1e-5)


def test_beam_search_can_beat_greedy(model):
    """A meaningful beam: on some item the wide beam finds a better sequence than greedy."""
    limits = [MAX_LEN] * len(SOURCES)
    greedy = run_greedy(model, SOURCES, limits)
    beam = run_beam(model, SOURCES, limits, beam_size=8, num_hypotheses=1, length_penalty=0.0)
    assert np.all(beam["scores"][:, 0] >= greedy["scores"] - 1e-5)
    assert np.any(beam["scores"][:, 0] > greedy["scores"] + 1e-3)


def reference_beam(step_fn, state, memory, limit, beam_size, num_hypotheses, alpha):
    """Textbook beam search for one item, one hypothesis at a time, without early stopping.

    Hypotheses are ranked by log_prob / gnmt_penalty(length); finished ones stay in
    the beam unchanged; the search runs until every beam is finished (EOS or the
    length limit). Returns the `num_hypotheses` best [(tokens, log_prob)], best first.
    """
    beams = [((), 0.0, False, state)]  # (tokens, log prob, finished, decoder state)
    while not all(finished for _, _, finished, _ in beams):
        candidates = []
        for tokens, log_prob, finished, beam_state in beams:
            if finished:
                candidates.append((tokens, log_prob, True, beam_state))
                continue
            last = tokens[-1] if tokens else BOS
            logits, new_state = step_fn(tf.constant([last]), beam_state, memory)
            log_probs = tf.nn.log_softmax(logits)[0].numpy().astype(np.float64)
            for token in range(len(log_probs)):
                if token in (PAD, UNK, BOS):
                    continue
                new = (*tokens, token)
                done = token == EOS or len(new) == limit
                candidates.append((new, log_prob + log_probs[token], done, new_state))
        candidates.sort(key=lambda c: -c[1] / penalty(len(c[0]), alpha))
        beams = candidates[:beam_size]
    return [(tokens, log_prob) for tokens, log_prob, _, _ in beams[:num_hypotheses]]


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_narrow_beam_matches_a_reference_beam_search(alpha):
    """A beam narrower than the search space prunes exactly like textbook beam search."""
    model = make_model(6, eos_shift=-1.5)
    limits = [5, 3, 4]
    result = run_beam(model, SOURCES, limits, beam_size=3, num_hypotheses=2, length_penalty=alpha)
    found = hypotheses(result["ids"], result["lengths"])
    for b, (source, limit) in enumerate(zip(SOURCES, limits, strict=True)):
        state, memory = encode(model, [source])
        expected = reference_beam(model.step, state, memory, limit, 3, 2, alpha)
        assert found[b] == [tokens for tokens, _ in expected]
        np.testing.assert_allclose(
            result["log_probs"][b], [log_prob for _, log_prob in expected], atol=1e-4
        )


def table_step(token_ids, state, memory):
    """A synthetic decoder: row r's logits at step t are memory["tables"][r, t]."""
    logits = tf.gather(memory["tables"], state["t"], batch_dims=1)
    return logits, {"t": state["t"] + 1}


def table_inputs(tables):
    tables = tf.constant(np.log(np.stack(tables)), tf.float32)
    return {"t": tf.zeros([tables.shape[0]], tf.int32)}, {"tables": tables}


def test_length_penalty_ranks_finished_against_longer_hypotheses():
    """Pruning compares a finished short hypothesis with longer ones by normalised score.

    After two steps, [EOS] (log p -1.3, length 1) beats [4, 4] (-1.4) and [4, 5] (-1.45)
    on raw log-probability but loses to both once divided by the length-2 penalty
    (alpha 1: -1.2 and -1.24), so a beam of two drops it and [4, 4, 4] wins.
    """
    p = np.exp
    tables = [
        [
            [1e-9, 0.03, 1e-9, p(-1.3), p(-0.7), 0.2],  # step 0
            [1e-9, 0.01, 1e-9, 0.01, p(-0.7), p(-0.75)],  # step 1
            [1e-9, 0.2, 1e-9, 0.1, 0.4, 0.3],  # step 2
        ]
    ]
    tables = [[row / np.sum(row) for row in steps] for steps in tables]
    state, memory = table_inputs(tables)
    result = beam_search(
        table_step,
        state,
        memory,
        tf.constant([3]),
        BOS,
        EOS,
        beam_size=2,
        length_penalty=1.0,
        num_hypotheses=2,
    )
    found = hypotheses(result.ids.numpy(), result.lengths.numpy())
    expected = reference_beam(table_step, state, memory, 3, 2, 2, 1.0)
    assert found[0] == [tokens for tokens, _ in expected]
    assert found[0][0] == (4, 4, 4)
    assert (EOS,) not in found[0]
    np.testing.assert_allclose(result.log_probs.numpy()[0], [lp for _, lp in expected], atol=1e-5)


# -- batch independence ------------------------------------------------------------------


def test_each_item_decodes_the_same_alone_and_in_a_batch():
    model = make_model(4, eos_shift=-1.0)
    items = [[5, 6, 3], [7, 3]]
    limits = [4, 2]
    batch = [
        [4, 4, 5, 6, 7, 8, 9, 3],
        [5, 6, 3, 0, 0, 0, 0, 0],
        [9, 8, 7, 6, 5, 3, 0, 0],
        [7, 3, 0, 0, 0, 0, 0, 0],
    ]
    batch_limits = [7, 4, 6, 2]
    positions = [1, 3]  # where the items sit in the batch

    greedy_batch = run_greedy(model, batch, batch_limits)
    beam_kwargs = {"beam_size": 3, "num_hypotheses": 3, "length_penalty": 0.6}
    beam_batch = run_beam(model, batch, batch_limits, **beam_kwargs)
    for item, limit, pos in zip(items, limits, positions, strict=True):
        alone = run_greedy(model, [item], [limit])
        assert hypotheses(alone["ids"], alone["lengths"]) == [
            hypotheses(greedy_batch["ids"][pos], greedy_batch["lengths"][pos])
        ]
        np.testing.assert_allclose(alone["scores"][0], greedy_batch["scores"][pos], atol=1e-5)

        alone = run_beam(model, [item], [limit], **beam_kwargs)
        assert hypotheses(alone["ids"][0], alone["lengths"][0]) == hypotheses(
            beam_batch["ids"][pos], beam_batch["lengths"][pos]
        )
        np.testing.assert_allclose(alone["scores"][0], beam_batch["scores"][pos], atol=1e-5)
        np.testing.assert_allclose(alone["log_probs"][0], beam_batch["log_probs"][pos], atol=1e-5)
        # The neighbours run longer, so the item's columns past its own end are padding.
        assert beam_batch["ids"].shape[-1] > alone["ids"].shape[-1] or limit == max(batch_limits)
        assert np.all(beam_batch["ids"][pos, :, alone["ids"].shape[-1] :] == PAD)


def test_done_items_are_frozen_while_neighbours_continue():
    """Once an item's n best can no longer be beaten, its beams are only fed EOS.

    Item 0 (beam 3, n 1, alpha 1, max length 6): after step 0, [EOS] scores
    log .6 = -0.51; the best alive beam [4] has log-prob log .3 = -1.20 and can at
    best reach -1.20 / lp(6) = -0.66 < -0.51, so the item is done after one step.
    Item 1 never wants EOS, so the batch keeps decoding for it (eagerly, so the
    step function sees what every row is fed).
    """
    steps = 8
    first = [1e-6, 1e-6, 1e-6, 0.6, 0.3, 0.1]
    confident = [1e-6, 1e-6, 1e-6, 0.002, 0.99, 0.008]
    item = np.array([first] + [confident] * (steps - 1))
    neighbour = np.tile([1e-6, 0.1, 1e-6, 1e-4, 0.45, 0.45], [steps, 1])
    kwargs = {"beam_size": 3, "num_hypotheses": 1, "length_penalty": 1.0}

    def decode(tables, limits):
        fed = []

        def logging_step(token_ids, state, memory):
            fed.append(token_ids.numpy().reshape(len(tables), 3))
            return table_step(token_ids, state, memory)

        state, memory = table_inputs(tables)
        result = beam_search(logging_step, state, memory, tf.constant(limits), BOS, EOS, **kwargs)
        found = hypotheses(result.ids.numpy(), result.lengths.numpy())
        return found, result.scores.numpy(), np.stack(fed)

    alone, alone_scores, alone_fed = decode([item], [6])
    batched, batched_scores, batched_fed = decode([item, neighbour], [6, 6])
    assert alone[0] == [(EOS,)]
    np.testing.assert_allclose(alone_scores[0], [np.log(0.6)], atol=1e-5)
    assert len(alone_fed) == 1  # done after the first step
    assert len(batched[1][0]) == 6  # the neighbour did keep the loop running
    assert len(batched_fed) == 6
    assert np.all(batched_fed[1:, 0] == EOS)  # item 0 frozen: only EOS from step 1 on
    assert np.any(batched_fed[1:, 1] != EOS)
    assert batched[0] == alone[0]
    np.testing.assert_allclose(batched_scores[0], alone_scores[0], atol=1e-6)


# -- the stopping rule does not depend on num_hypotheses -------------------------------

# A Markov toy decoder over 0 pad, 1 unk, 2 bos, 3 eos, 4, 5: row = previous token.
# From BOS, EOS is the single most likely token (p .52), but 4 (p .40) is followed by
# 4 with p .995, so after length normalisation a long chain of 4s beats [EOS].
CHAIN = np.array(
    [
        [1, 1, 1, 1, 1, 1],  # after pad (never fed)
        [1, 1, 1, 1, 1, 1],  # after unk (never fed)
        [1e-9, 1e-9, 1e-9, 0.52, 0.40, 0.08],  # after bos
        [1, 1, 1, 1, 1, 1],  # after eos (fed to finished beams; ignored)
        [1e-9, 1e-9, 1e-9, 0.004, 0.995, 0.001],  # after 4
        [1e-9, 1e-9, 1e-9, 0.5, 0.3, 0.2],  # after 5
    ]
)
CHAIN_LIMIT = 12


def chain_step(token_ids, state, memory):
    table = tf.constant(np.log(CHAIN / CHAIN.sum(axis=1, keepdims=True)), tf.float32)
    return tf.gather(table, token_ids), state


def chain_beam(beam_size: int, num_hypotheses: int, alpha: float, limit: int = CHAIN_LIMIT):
    result = beam_search(
        chain_step,
        {},
        {},
        tf.constant([limit]),
        BOS,
        EOS,
        beam_size=beam_size,
        num_hypotheses=num_hypotheses,
        length_penalty=alpha,
    )
    found = hypotheses(result.ids.numpy(), result.lengths.numpy())[0]
    return found, result.scores.numpy()[0]


def chain_exhaustive(limit: int, alpha: float) -> list[tuple[float, tuple[int, ...]]]:
    """Every output of the chain decoder under `limit`, (normalised score, tokens), best first."""
    probs = CHAIN / CHAIN.sum(axis=1, keepdims=True)
    scored = []
    for n in range(limit + 1):
        for prefix in itertools.product((4, 5), repeat=n):
            for seq in [(*prefix, EOS)] if n < limit else [prefix]:
                previous = (BOS, *seq[:-1])
                log_prob = sum(np.log(probs[a, b]) for a, b in zip(previous, seq, strict=True))
                scored.append((log_prob / penalty(len(seq), alpha), seq))
    return sorted(scored, key=lambda x: -x[0])


def test_one_best_does_not_depend_on_num_hypotheses():
    """Stopping as soon as [EOS] is the best finished hypothesis would return it for n=1.

    Hand check: [EOS] scores log .52 = -0.654; the alive [4] (log .40 = -0.916) can
    still reach -0.916 / lp(12) = -0.49, and [4] * 12 does reach about -0.52.
    """
    alpha = 0.6
    exhaustive = chain_exhaustive(CHAIN_LIMIT, alpha)
    best_score, best = exhaustive[0]
    assert best == (4,) * CHAIN_LIMIT
    assert best_score > np.log(0.52) + 0.1
    lists = {n: chain_beam(4, n, alpha) for n in (1, 2, 3, 4)}
    reference = reference_beam(chain_step, {}, {}, CHAIN_LIMIT, 4, 4, alpha)
    assert lists[4][0] == [tokens for tokens, _ in reference]
    for n, (found, scores) in lists.items():
        assert len(found) == n
        assert found[0] == best, n
        np.testing.assert_allclose(scores[0], best_score, atol=1e-5)
        # ... and every shorter n-best list is a prefix of the longer ones
        assert found == lists[4][0][:n]
        np.testing.assert_allclose(scores, lists[4][1][:n], atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_wide_beam_is_exhaustive_on_the_chain_decoder(alpha):
    """A beam of 256 holds every output (2^7 without EOS + 2^7 - 1 with), so it is exact."""
    limit = 7
    exhaustive = chain_exhaustive(limit, alpha)
    assert len(exhaustive) == 2**limit + 2**limit - 1
    scores = np.array([score for score, _ in exhaustive])
    assert np.all(-np.diff(scores[:6]) > 1e-4)  # no near-ties: a well-defined order
    for n in (1, 5):
        found, found_scores = chain_beam(256, n, alpha, limit)
        assert found == [seq for _, seq in exhaustive[:n]]
        np.testing.assert_allclose(found_scores, scores[:n], atol=1e-5)


# -- per-hypothesis invariants -----------------------------------------------------------


def check_invariants(ids, lengths, content_lengths, limits) -> tuple[int, int]:
    """Check one search result's hypotheses; return (#ending with EOS, #stopped at limit)."""
    ended, stopped = 0, 0
    for index in np.ndindex(*lengths.shape):
        limit = limits[index[0]]
        n = int(lengths[index])
        row = ids[index]
        assert 1 <= n <= limit
        assert np.all(row[n:] == PAD)
        content = row[:n]
        assert not np.isin(content, [PAD, UNK, BOS]).any()
        assert not np.any(content[:-1] == EOS)  # EOS only as the last token
        if content[-1] == EOS:
            assert content_lengths[index] == n - 1
            ended += 1
        else:
            assert content_lengths[index] == n
            assert n == limit  # without EOS a hypothesis only stops at its limit
            stopped += 1
    return ended, stopped


def test_hypotheses_respect_their_own_max_length():
    model = make_model(5, eos_shift=-1.0)
    limits = [1, 6, 3, 2]
    sources = [[4, 5, 3, 0], [6, 7, 8, 3], [9, 3, 0, 0], [5, 5, 3, 0]]

    greedy = run_greedy(model, sources, limits)
    assert greedy["ids"].shape[-1] <= max(limits)
    check_invariants(greedy["ids"], greedy["lengths"], greedy["content_lengths"], limits)

    beam = run_beam(model, sources, limits, beam_size=4, num_hypotheses=3, length_penalty=0.6)
    assert beam["ids"].shape[:2] == (len(sources), 3)
    assert beam["ids"].shape[-1] <= max(limits)
    ended, stopped = check_invariants(beam["ids"], beam["lengths"], beam["content_lengths"], limits)
    assert ended > 0 and stopped > 0  # both ways of ending are exercised
    assert np.all(np.diff(beam["scores"], axis=1) <= 0)  # n-best sorted, best first
    np.testing.assert_allclose(
        beam["scores"], beam["log_probs"] / penalty(beam["lengths"], 0.6), rtol=1e-5
    )
    # n-best lists hold distinct hypotheses.
    for b, item in enumerate(hypotheses(beam["ids"], beam["lengths"])):
        assert len(set(item)) == len(item), (b, item)


# -- banned ids, empty batches, XLA -----------------------------------------------------

UNK_FIRST = np.array([1e-9, 0.5, 1e-9, 0.12, 0.3, 0.08])  # UNK is every step's argmax


def unk_step(token_ids, state, memory):
    logits = tf.tile(tf.constant(np.log(UNK_FIRST), tf.float32)[None, :], [tf.size(token_ids), 1])
    return logits, state


def test_unk_is_never_generated():
    limits = tf.constant([5, 3])
    greedy = greedy_search(unk_step, {}, {}, limits, BOS, EOS)
    # With UNK banned, 4 is the argmax (log .3) at every step, up to the length limit.
    assert hypotheses(greedy.ids.numpy(), greedy.lengths.numpy()) == [(4,) * 5, (4,) * 3]
    np.testing.assert_allclose(greedy.log_probs.numpy(), [5 * np.log(0.3), 3 * np.log(0.3)], 1e-5)
    beam = beam_search(unk_step, {}, {}, limits, BOS, EOS, beam_size=4, num_hypotheses=4)
    found = hypotheses(beam.ids.numpy(), beam.lengths.numpy())
    assert all(UNK not in seq for item in found for seq in item)
    # log-probs (no length penalty): -2.12, -1.20 - 2.12, 3 * -1.20, 2 * -1.20 - 2.12
    assert found[1] == [(EOS,), (4, EOS), (4, 4, 4), (4, 4, EOS)]


def empty_outputs(limits, num_hypotheses):
    greedy = greedy_search(chain_step, {"t": tf.zeros_like(limits)}, {}, limits, BOS, EOS)
    beam = beam_search(
        chain_step,
        {"t": tf.zeros_like(limits)},
        {},
        limits,
        BOS,
        EOS,
        beam_size=3,
        num_hypotheses=num_hypotheses,
        length_penalty=0.6,
    )
    return greedy, beam


def check_empty(greedy, beam, num_hypotheses) -> None:
    assert greedy.ids.shape == (0, 0)
    for name in ("scores", "log_probs", "lengths", "content_lengths"):
        assert getattr(greedy, name).shape == (0,)
        assert getattr(beam, name).shape == (0, num_hypotheses)
    assert beam.ids.shape == (0, num_hypotheses, 0)


def test_an_empty_batch_gives_empty_outputs():
    check_empty(*empty_outputs(tf.zeros([0], tf.int32), 2), 2)

    decode = tf.function(
        lambda limits: empty_outputs(limits, 2), input_signature=[tf.TensorSpec([None], tf.int32)]
    )
    check_empty(*decode(tf.zeros([0], tf.int32)), 2)
    # The same graph still decodes a real batch.
    greedy, beam = decode(tf.constant([CHAIN_LIMIT]))
    assert hypotheses(greedy.ids.numpy(), greedy.lengths.numpy()) == [(EOS,)]
    assert hypotheses(beam.ids.numpy(), beam.lengths.numpy())[0][0] == (4,) * CHAIN_LIMIT


def test_search_compiles_under_xla():
    limits = tf.constant([CHAIN_LIMIT, 3, 7])

    def decode(limits):
        state = {"t": tf.zeros_like(limits)}
        greedy = greedy_search(chain_step, state, {}, limits, BOS, EOS)
        beam = beam_search(
            chain_step,
            state,
            {},
            limits,
            BOS,
            EOS,
            beam_size=4,
            length_penalty=0.6,
            num_hypotheses=3,
        )
        return greedy, beam

    compiled = tf.function(decode, jit_compile=True)
    for got, expected in zip(compiled(limits), decode(limits), strict=True):
        for name in ("ids", "lengths", "content_lengths"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
        for name in ("scores", "log_probs"):
            np.testing.assert_allclose(getattr(got, name), getattr(expected, name), atol=1e-5)
    assert compiled.experimental_get_compiler_ir(limits)(stage="hlo")  # really went through XLA


# -- helpers -----------------------------------------------------------------------------


def test_max_output_lengths_arithmetic():
    sources = tf.constant([0, 1, 3, 10, 100], tf.int32)
    budget = max_output_lengths(sources, ratio=1.5, offset=2, cap=20)
    assert budget.dtype == tf.int32
    # ceil(1.5 * n) + 2, capped at 20
    assert budget.numpy().tolist() == [2, 4, 7, 17, 20]
    assert max_output_lengths(sources, 1.0, 0, 256).numpy().tolist() == [1, 1, 3, 10, 100]
    # Never below 1, even with a negative offset.
    assert max_output_lengths(sources, 0.5, -3, 256).numpy().tolist() == [1, 1, 1, 2, 47]
    assert max_output_lengths(sources, 2.0, 10, 1).numpy().tolist() == [1] * 5


def test_gnmt_length_penalty():
    lengths = tf.constant([0, 1, 4, 10], tf.int32)
    np.testing.assert_array_equal(gnmt_length_penalty(lengths, 0.0).numpy(), [1.0] * 4)
    for alpha in (0.6, 1.0, 2.0):
        expected = [((5.0 + n) / 6.0) ** alpha for n in (0, 1, 4, 10)]
        np.testing.assert_allclose(gnmt_length_penalty(lengths, alpha).numpy(), expected, 1e-6)
    assert gnmt_length_penalty(tf.constant(1), 0.6).numpy() == pytest.approx(1.0)
    np.testing.assert_allclose(
        gnmt_length_penalty(lengths, tf.constant(0.6)).numpy(),
        [((5.0 + n) / 6.0) ** 0.6 for n in (0, 1, 4, 10)],
        rtol=1e-6,
    )


# -- graph mode ----------------------------------------------------------------------------


def test_search_in_tf_function_matches_eager(model):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def decode(source_ids, limits, beam_size, num_hypotheses):
        memory, state = model.encode(source_ids)
        greedy = greedy_search(model.step, state, memory, limits, BOS, EOS)
        beam = beam_search(
            model.step,
            state,
            memory,
            limits,
            BOS,
            EOS,
            beam_size=beam_size,
            length_penalty=0.6,
            num_hypotheses=num_hypotheses,
        )
        return greedy, beam

    limits = [4, 3, 2]
    for beam_size, num_hypotheses in ((3, 2), (1, 1)):
        greedy, beam = decode(
            tf.constant(SOURCES, tf.int32),
            tf.constant(limits, tf.int32),
            tf.constant(beam_size),
            tf.constant(num_hypotheses),
        )
        eager_greedy = run_greedy(model, SOURCES, limits)
        eager_beam = run_beam(
            model,
            SOURCES,
            limits,
            beam_size=beam_size,
            num_hypotheses=num_hypotheses,
            length_penalty=0.6,
        )
        for graph, eager in ((greedy, eager_greedy), (beam, eager_beam)):
            for name in ("ids", "lengths", "content_lengths"):
                np.testing.assert_array_equal(getattr(graph, name).numpy(), eager[name])
            for name in ("scores", "log_probs"):
                np.testing.assert_allclose(getattr(graph, name).numpy(), eager[name], atol=1e-5)
        assert beam.ids.shape[1] == num_hypotheses


@pytest.mark.parametrize("vocab", [1000, 1024, 16000, 16001])
@pytest.mark.parametrize("k", [1, 4, 7, 15])
def test_row_top_k_equals_top_k(vocab, k):
    """The chunked top-k (large vocabularies) returns exactly tf.math.top_k's answer."""
    from s2s_zoo.decoding.search import _row_top_k

    logits = tf.random.stateless_normal([6, vocab], seed=[vocab, k]) * 3.0
    # the best logits bunched in one chunk, and one at the very end (the tail)
    logits = tf.tensor_scatter_nd_update(
        logits, [[0, 5], [0, 6], [0, 7], [1, vocab - 1]], [50.0, 49.0, 48.0, 60.0]
    )
    values, ids, row_max = _row_top_k(logits, tf.constant(k))
    expected_values, expected_ids = tf.math.top_k(logits, k=k)
    np.testing.assert_array_equal(ids.numpy(), expected_ids.numpy())
    np.testing.assert_array_equal(values.numpy(), expected_values.numpy())
    np.testing.assert_array_equal(row_max.numpy()[:, 0], tf.reduce_max(logits, -1).numpy())


def markov_step(vocab: int):
    """A step whose logits depend on the last token (a random bigram table), for searches
    over vocabularies large enough for the chunked top-k."""
    table = tf.random.stateless_normal([vocab, vocab], seed=[vocab, 1]) * 4.0

    def step(tokens, state, memory):
        return tf.gather(table, tokens), {"t": state["t"] + 1}

    return step


@pytest.mark.parametrize("vocab,beam_size", [(1100, 6), (1100, 13), (4100, 4)])
def test_large_vocabulary_search_under_xla_equals_the_direct_top_k(vocab, beam_size, monkeypatch):
    """Chunked top-k (vocab >= 1024) in graph mode and under XLA gives what plain top_k gives,
    also where the beam needs more chunks than exist (vocab 1100: 8 chunks)."""
    import s2s_zoo.decoding.search as search

    step = markov_step(vocab)
    limits = tf.constant([6, 3, 5])

    def decode(limits):
        state = {"t": tf.zeros_like(limits)}
        greedy = greedy_search(step, state, {}, limits, BOS, EOS)
        beam = beam_search(
            step, state, {}, limits, BOS, EOS, beam_size=beam_size, length_penalty=0.6,
            num_hypotheses=3,
        )  # fmt: skip
        return greedy, beam

    graph = tf.function(decode)(limits)
    compiled = tf.function(decode, jit_compile=True)(limits)
    monkeypatch.setattr(search, "TOP_K_CHUNK", 10**6)  # every row goes to top_k directly
    direct = tf.function(decode)(limits)
    for got in (graph, compiled):
        for result, expected in zip(got, direct, strict=True):
            np.testing.assert_array_equal(result.ids, expected.ids)
            np.testing.assert_array_equal(result.lengths, expected.lengths)
            np.testing.assert_allclose(result.scores, expected.scores, atol=1e-5)
    assert len(set(map(tuple, direct[0].ids.numpy().tolist()))) > 1  # not a degenerate search
