"""Dialogue models: run features by hand, teacher forcing = decoding steps, the export's
context/kb signatures on the TF Serving path (empty conversation, no KB facts), padding
invariance, and copying an entity never seen in training (which no-copy models cannot)."""

from __future__ import annotations

import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.dialogue_pipeline import make_dialogue_dataset
from s2s_zoo.data.dialogue_preprocessor import DialoguePreprocessor, FlatDialoguePreprocessor
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.export.conformance import batch_inputs, check_serving
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.decoders.mem2seq import continuation_runs, update_runs
from s2s_zoo.models.registry import build_from_catalog
from s2s_zoo.training.fit import TrainConfig, compile_model, fit

TINY_MEMORY = {"embedding_dim": 8, "decoder_units": 16, "attention_units": 8, "hops": 1}
TINY_FLAT = {"embedding_dim": 8, "encoder_units": 8, "decoder_units": 16, "attention_units": 8}
MAX_TARGET = 24
# the output budget is the preprocessor's target length: a phone answer over a 5-letter name
# is 14-15 pieces ("here it is iefge_phone"), so a smaller cap would cut right answers
DECODING = DecodingConfig(
    beam_size=3,
    num_hypotheses=2,
    max_length_ratio=0.0,
    max_length_offset=MAX_TARGET,
    max_length_cap=MAX_TARGET,
)
NAMES = ["context", "kb"]


def _entity(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 5)))


def toy_example(rng: random.Random, name: str, others: list[str]):
    """Book a restaurant or ask its phone: the answer repeats the name from the turn or
    copies the phone entity from the KB facts (among distractors)."""
    kb = [f"{n} R_phone {n}_phone" for n in [name, *rng.sample(others, 2)]]
    rng.shuffle(kb)
    if rng.random() < 0.5:
        return ("book " + name,), tuple(kb), "ok booking " + name
    return ("phone of " + name,), tuple(kb), "here it is " + name + "_phone"


@pytest.fixture(scope="module")
def toy():
    return toy_data()


def toy_data():
    """Training examples and held-out ones whose entities never occur in training."""
    rng = random.Random(0)
    pool: set[str] = set()
    while len(pool) < 190:
        pool.add(_entity(rng))
    names = sorted(pool)
    train_names, test_names = names[:160], names[160:]
    train = [
        toy_example(rng, n, [m for m in train_names if m != n])
        for n in train_names
        for _ in range(2)
    ]
    test = [toy_example(rng, n, [m for m in test_names if m != n]) for n in test_names]
    proto = train_sentencepiece(sorted({t for c, k, r in train for t in (*c, *k, r)}), 100)
    return train, test, proto


def _inference(model_name: str, proto: bytes, seed: int = 0, **options) -> Seq2SeqInference:
    keras.utils.set_random_seed(seed)
    if model_name == "gru_bahdanau":
        pre = FlatDialoguePreprocessor(proto, max_source_length=48, max_target_length=MAX_TARGET)
        overrides = TINY_FLAT
    else:
        pre = DialoguePreprocessor(proto, max_turns=7, max_facts=8, max_target_length=MAX_TARGET)
        overrides = TINY_MEMORY
    model = build_from_catalog(
        model_name, pre.source_vocab_size, pre.target_vocab_size, **{**overrides, **options}
    )
    return Seq2SeqInference(pre, model, DECODING)


def _requests(examples):
    return [{"context": list(c), "kb": list(k)} for c, k, _ in examples]


def _decode(inference, requests, mode="greedy", pad_turns=0, pad_facts=0):
    batch = batch_inputs(requests, NAMES)
    context = np.array(batch["context"], dtype=object)
    kb = np.array(batch["kb"], dtype=object)
    context = np.pad(context, [(0, 0), (0, pad_turns)], constant_values="")
    kb = np.pad(kb, [(0, 0), (0, pad_facts)], constant_values="")
    out = getattr(inference, mode)(tf.constant(context.tolist()), tf.constant(kb.tolist()))
    return [o.decode() for o in out["outputs"].numpy()], out["scores"].numpy()


def test_run_features_by_hand():
    # two slots: pieces [5, 6, 7] and [5, 6]
    word_ids = tf.constant([[5, 6, 7, 5, 6]])
    mask = tf.ones_like(word_ids, tf.bool)
    follows = tf.constant([[False, True, True, False, True]])
    runs = update_runs(tf.zeros_like(word_ids), tf.constant([5]), word_ids, mask, follows)
    assert runs.numpy().tolist() == [[1, 0, 0, 1, 0]]
    assert continuation_runs(runs, follows).numpy().tolist() == [[0, 1, 0, 0, 1]]
    runs = update_runs(runs, tf.constant([6]), word_ids, mask, follows)
    assert runs.numpy().tolist() == [[0, 2, 0, 0, 2]]
    assert continuation_runs(runs, follows).numpy().tolist() == [[0, 0, 2, 0, 0]]  # slot end
    runs = update_runs(runs, tf.constant([9]), word_ids, mask, follows)
    assert runs.numpy().tolist() == [[0, 0, 0, 0, 0]]


PLAIN_MEM2SEQ = {"summary_features": False, "said_ngrams": 0, "next_piece": False}


@pytest.mark.parametrize(
    ("model_name", "options"),
    [("mem2seq_dialog", {}), ("mem2seq_dialog", PLAIN_MEM2SEQ), ("memn2n_dialog", {})],
)
def test_teacher_forcing_equals_decoding_steps(toy, model_name, options):
    train, _, proto = toy
    inference = _inference(model_name, proto, **options)
    dataset = make_dialogue_dataset(train[:4], inference.preprocessor, 4, shuffle=False)
    (*source, target_in), _ = next(iter(dataset))
    forced = inference.model.training_model([*source, target_in]).numpy()
    memory, state = inference.model.encode(tuple(source), MAX_TARGET)
    for t in range(target_in.shape[1]):
        logits, state = inference.model.step(target_in[:, t], state, memory)
        np.testing.assert_allclose(
            tf.nn.log_softmax(logits).numpy(), tf.nn.log_softmax(forced[:, t]).numpy(), atol=1e-4
        )


@pytest.mark.parametrize(
    "model_name",
    [
        "mem2seq_dialog",
        pytest.param("memn2n_dialog", marks=pytest.mark.slow),
        pytest.param("gru_bahdanau", marks=pytest.mark.slow),
    ],
)
def test_export_serves_context_and_kb_on_the_session_path(toy, model_name, tmp_path):
    train, _, proto = toy
    inference = _inference(model_name, proto)
    path = export_saved_model(inference, tmp_path / model_name)
    loaded = tf.saved_model.load(str(path))
    specs = loaded.signatures["serving_default"].structured_input_signature[1]
    assert {k: (v.dtype, tuple(v.shape)) for k, v in specs.items()} == {
        "context": (tf.string, (None, None)),
        "kb": (tf.string, (None, None)),
    }
    samples = [
        *_requests(train[:2]),
        {"context": [], "kb": []},  # an empty conversation: all padding
        {"context": ["phone of abc"], "kb": []},  # no KB facts
    ]
    # and an empty request: a [0, 0] batch, as a gRPC client filtering its inputs sends
    report = check_serving(path, inference, batches=[samples, []])
    assert report.ok, report.mismatches
    assert "alignment" not in report.signatures
    assert len(report.signatures) >= 4


def test_padding_a_batch_changes_no_output(toy):
    train, test, proto = toy
    inference = _inference("mem2seq_dialog", proto)
    requests = _requests(test[:3]) + [{"context": [], "kb": []}, {"context": ["hi"], "kb": []}]
    for mode in ("greedy", "beam"):
        alone = [_decode(inference, [r], mode) for r in requests]
        texts, scores = _decode(inference, requests, mode)
        padded_texts, padded_scores = _decode(inference, requests, mode, pad_turns=4, pad_facts=5)
        assert texts == padded_texts == [a[0][0] for a in alone]
        np.testing.assert_allclose(scores, padded_scores, atol=1e-4)
        np.testing.assert_allclose(scores, [a[1][0] for a in alone], atol=1e-4)


def _train(inference, examples, epochs: int) -> None:
    config = TrainConfig(epochs=epochs, batch_size=16, learning_rate=1e-2, patience=0)
    compile_model(inference.model.training_model, config)
    dataset = make_dialogue_dataset(examples, inference.preprocessor, 16, seed=0)
    fit(inference.model.training_model, dataset, None, config, verbose=0)


def tokenizer(proto: bytes):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_proto=proto)


def _accuracy(inference, examples) -> float:
    texts, _ = _decode(inference, _requests(examples))
    return float(np.mean([t == r for t, (_, _, r) in zip(texts, examples, strict=True)]))


@pytest.mark.slow
def test_copying_produces_entities_never_seen_in_training(toy):
    """mem2seq copies unseen KB entities (piece by piece); the no-copy model cannot."""
    train, test, proto = toy
    train_words = {w for c, k, r in train for t in (*c, *k, r) for w in t.split()}
    assert not {r.split()[-1] for _, _, r in test} & train_words  # truly unseen entities
    longest = max(len(tokenizer(proto).encode(r)) for _, _, r in train + test)
    assert longest + 1 < MAX_TARGET  # every answer and its EOS fit the output budget
    copying = _inference("mem2seq_dialog", proto)
    _train(copying, train, epochs=20)
    generating = _inference("memn2n_dialog", proto)
    _train(generating, train, epochs=20)
    assert _accuracy(copying, test) >= 0.75
    assert _accuracy(generating, test) <= 0.1


def test_slot_words_embed_each_piece_with_its_neighbours_by_hand():
    """A word's vector: its piece + the previous and next pieces of its slot (0 at the
    ends) + its position + its speaker + its slot's vector + how many of the pieces
    ending at it a bot turn holds (`said_ngrams`), computed here by hand."""
    from s2s_zoo.layers.memory import SPEAKER_BOT, SPEAKER_KB, SPEAKER_USER
    from s2s_zoo.models.encoders.memory_network import SlotWords

    keras.utils.set_random_seed(0)
    layer = SlotWords(vocab_size=10, dim=4, max_positions=8, said_ngrams=2, next_piece=True)
    memory = tf.constant([[[3, 4, 5], [6, 0, 0], [3, 4, 9]]])  # a bot turn, two facts
    speakers = tf.constant([[SPEAKER_BOT, SPEAKER_KB, SPEAKER_KB]])
    query = tf.constant([[7, 8, 0]])
    slots = tf.constant(np.arange(12, dtype=np.float32).reshape(1, 3, 4) / 10)
    ids, words, mask, follows = (t.numpy() for t in layer(memory, speakers, query, slots))
    assert ids.tolist() == [[7, 8, 3, 4, 5, 6, 3, 4, 9]] and mask.all()
    assert follows.tolist() == [[False, True, False, True, True, False, False, True, True]]
    E, Ep, En, P, S, N = (  # noqa: N806
        w.numpy()
        for w in (
            layer.word_embedding.embeddings,
            layer.previous_embedding.embeddings,
            layer.next_embedding.embeddings,
            layer.position_embedding.embeddings,
            layer.speaker_embedding.embeddings,
            layer.said_embedding.embeddings,
        )
    )
    W = layer.slot_projection.kernel.numpy()  # noqa: N806
    v = [np.zeros(4, np.float32), *slots[0].numpy()]  # the query has no slot vector
    bot, kb, user = SPEAKER_BOT, SPEAKER_KB, SPEAKER_USER
    expected = [  # (piece, previous, next, position, speaker, slot vector, said n-gram)
        (7, 0, 8, 0, user, v[0], 0),
        (8, 7, 0, 1, user, v[0], 0),
        (3, 0, 4, 0, bot, v[1], 1),
        (4, 3, 5, 1, bot, v[1], 2),
        (5, 4, 0, 2, bot, v[1], 2),  # "3 4 5" is said too, but the feature stops at 2
        (6, 0, 0, 0, kb, v[2], 0),
        (3, 0, 4, 0, kb, v[3], 1),  # "3" and "3 4" are in the bot turn, "4 9" is not
        (4, 3, 9, 1, kb, v[3], 2),
        (9, 4, 0, 2, kb, v[3], 0),
    ]
    for j, (piece, prev, nxt, pos, who, vector, said) in enumerate(expected):
        want = E[piece] + Ep[prev] + En[nxt] + P[pos] + S[who] + vector @ W + N[said]
        np.testing.assert_allclose(words[0, j], want, rtol=1e-5, atol=1e-6)


def test_said_ngrams_a_hash_collision_does_not_make_a_match():
    """(1, 5) and (2, 2146483631) share a bigram hash; "5" alone was never said, so the
    fact's "1 5" matches nothing although its bigram hash is in the bot's slot."""
    from s2s_zoo.layers.said_ngrams import _BASE, _PRIME, said_ngram_lengths

    other = (5 - _BASE) % _PRIME  # 2146483631
    assert (2 * _BASE + other) % _PRIME == (1 * _BASE + 5) % _PRIME
    ids = tf.constant([[2, other, 1, 5]], tf.int64)
    follows = tf.constant([[False, True, False, True]])
    spoken = tf.constant([[True, True, False, False]])
    said = said_ngram_lengths(ids, follows, spoken, max_ngram=3).numpy().tolist()
    assert said == [[1, 2, 0, 0]]


def test_bundle_refuses_weights_of_a_model_with_more_layers(toy, tmp_path):
    """A config with an optional layer off must not load weights saved with it on."""
    import json

    from s2s_zoo.bundle import load_bundle, save_bundle

    _, _, proto = toy
    save_bundle(_inference("mem2seq_dialog", proto), tmp_path)
    assert load_bundle(tmp_path).model is not None  # as saved: loads
    config = json.loads((tmp_path / "model.json").read_text())
    text = json.dumps(config).replace('"next_piece": true', '"next_piece": false')
    assert text != json.dumps(config)
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(ValueError, match="not this config's"):
        load_bundle(tmp_path)


def test_said_ngrams_find_what_the_bot_proposed_among_many_options():
    """On real-sized memories, the feature equals a brute-force search over the bot's
    slots: for every piece, the longest n-gram ending at it that a bot slot holds."""
    from s2s_zoo.layers.said_ngrams import said_ngram_lengths

    rng = np.random.default_rng(7)
    batch, count = 3, 300
    # a small alphabet (many repeats) spread over the id range: the hashes wrap around
    ids = rng.choice([1, 2, 99_991, 2**30 + 7, 2**31 - 2], size=(batch, count))
    starts = rng.random((batch, count)) < 0.15
    starts[:, 0] = True
    ids[1, 250:] = 0  # padding
    slot = np.cumsum(starts, axis=1)
    by_bot = (slot % 3 == 0) & (ids != 0)
    follows = ~starts & (ids != 0)
    got = said_ngram_lengths(tf.constant(ids), tf.constant(follows), tf.constant(by_bot), 6)
    for b in range(batch):
        spoken = set()
        for s_id in set(slot[b][by_bot[b]]):
            piece_run = [int(i) for i, s_ in zip(ids[b], slot[b], strict=True) if s_ == s_id]
            piece_run = [i for i in piece_run if i]
            for lo in range(len(piece_run)):
                for hi in range(lo + 1, len(piece_run) + 1):
                    spoken.add(tuple(piece_run[lo:hi]))
        for j in range(count):
            want = 0
            if ids[b, j]:
                start = j
                while start > 0 and follows[b, start]:
                    start -= 1
                for n in range(1, 7):
                    if j - n + 1 >= start and tuple(ids[b, j - n + 1 : j + 1]) in spoken:
                        want = n
            assert got[b, j] == want, (b, j)


def test_unk_masking_hides_pieces_from_the_embedding_only_in_training():
    from s2s_zoo.models.encoders.memory_network import (
        MemoryNetworkEncoder,
        MemoryNetworkEncoderConfig,
        UnkMasking,
    )

    rng = np.random.default_rng(0)
    ids = rng.integers(2, 50, (64, 40))
    ids[:, 30:] = 0  # padding
    layer = UnkMasking(0.2, seed=3)
    assert (layer(tf.constant(ids)).numpy() == ids).all()  # inference: the identity
    masked = layer(tf.constant(ids), training=True).numpy()
    changed = masked != ids
    assert (masked[changed] == 1).all() and not changed[:, 30:].any()  # UNK, never padding
    assert 0.17 < changed[:, :30].mean() < 0.23  # about the rate of real pieces

    keras.utils.set_random_seed(0)
    config = MemoryNetworkEncoderConfig(vocab_size=50, embedding_dim=8, unk_rate=0.5)
    encoder = MemoryNetworkEncoder(config)
    memory = tf.constant(rng.integers(2, 50, (2, 3, 6)))
    speakers = tf.constant([[1, 2, 3], [1, 2, 3]])
    query = tf.constant(rng.integers(2, 50, (2, 6)))
    plain = encoder.words(memory, speakers, query, tf.zeros([2, 3, 8]))
    seen_memory = encoder.unk_masking(memory, training=True)
    seen_query = encoder.unk_masking(query, training=True)
    hidden = encoder.words(memory, speakers, query, tf.zeros([2, 3, 8]), seen_memory, seen_query)
    np.testing.assert_array_equal(plain[0], hidden[0])  # the ids a decoder copies stay
    np.testing.assert_array_equal(plain[2], hidden[2])
    assert not np.allclose(plain[1], hidden[1])  # what the pointer sees does not


def test_unk_masking_is_on_in_fit_and_off_in_the_served_encoder(toy):
    train, _, proto = toy
    pre = DialoguePreprocessor(proto, max_turns=7, max_facts=8, max_target_length=MAX_TARGET)
    dataset = make_dialogue_dataset(train[:8], pre, 8, shuffle=False)
    (*source, target_in), _ = next(iter(dataset))
    inputs = [*source, target_in]
    keras.utils.set_random_seed(0)
    plain = build_from_catalog("mem2seq_dialog", pre.source_vocab_size, pre.target_vocab_size,
                               **{**TINY_MEMORY, "unk_rate": 0.0})  # fmt: skip
    np.testing.assert_allclose(  # without masking (and no dropout) training mode is the same
        plain.training_model(inputs, training=True).numpy(),
        plain.training_model(inputs).numpy(),
        atol=1e-6,
    )
    model = build_from_catalog("mem2seq_dialog", pre.source_vocab_size, pre.target_vocab_size,
                               **{**TINY_MEMORY, "unk_rate": 0.5})  # fmt: skip
    served = model.training_model(inputs).numpy()
    np.testing.assert_allclose(model.training_model(inputs).numpy(), served)  # deterministic
    trained = model.training_model(inputs, training=True).numpy()
    assert np.abs(trained - served).max() > 1e-3  # masked pieces change what fit sees
    memory, state = model.encode(tuple(source), MAX_TARGET)
    logits, _ = model.step(target_in[:, 0], state, memory)
    np.testing.assert_allclose(
        tf.nn.log_softmax(logits).numpy(), tf.nn.log_softmax(served[:, 0]).numpy(), atol=1e-4
    )  # decoding sees the unmasked memory
