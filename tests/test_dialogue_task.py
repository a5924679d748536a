"""Dialogue task wiring: readers keep dialog ids and sub-tasks, metrics by hand, the
preprocessors' handling of padding, silence, truncation and empty requests."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.dialogue_preprocessor import (
    DialoguePreprocessor,
    FlatDialoguePreprocessor,
    conversation_turns,
    flatten_dialogue,
    kb_facts,
)
from s2s_zoo.data.tokenizer import EOS_ID, train_sentencepiece
from s2s_zoo.export.conformance import batch_inputs
from s2s_zoo.metrics.dialogue import entity_f1, fact_entities, per_dialog_accuracy
from s2s_zoo.tasks.base import get_task
from s2s_zoo.tasks.dialogue.task import DialogueSource, read_dialogue_examples

BABI = (
    "1 hi\thello what can i help you with today\n"
    "2 book resto_a\tgreat let me do the reservation\n"
    "3 resto_a R_phone resto_a_phone\n"
    "4 phone please\there it is resto_a_phone\n"
    "\n"
    "1 hi\thello what can i help you with today\n"
)


def _strings(tensor) -> list:
    return [[s.decode() for s in row] for row in tensor.numpy()]


def test_babi_reader_keeps_dialog_ids_sub_task_and_facts(tmp_path):
    path = tmp_path / "dialog-babi-task4-phone-address-tst.txt"
    path.write_text(BABI)
    examples = read_dialogue_examples(path)
    sources = [s for s, _ in examples]
    assert [s.dialog for s in sources] == [f"{path.name}#1"] * 3 + [f"{path.name}#2"]
    assert [s.turn for s in sources] == [0, 1, 2, 0]
    assert {s.task for s in sources} == {4}
    assert sources[2].context == (
        "hi",
        "hello what can i help you with today",
        "book resto_a",
        "great let me do the reservation",
        "phone please",
    )
    assert sources[2].kb == ("resto_a R_phone resto_a_phone",)
    assert sources[1].kb == ()
    assert examples[2][1] == "here it is resto_a_phone"
    # the first turns of both dialogs are the same text, but different sources
    assert sources[0] != sources[3] and sources[0].context == sources[3].context


def test_jsonl_reader_groups_consecutive_turns_into_dialogs(tmp_path):
    rows = [
        {"context": ["hi"], "kb": [], "response": "hello"},
        {"context": ["hi", "hello", "book x"], "kb": ["x R_phone x_phone"], "response": "ok"},
        {"context": ["hi"], "kb": [], "response": "hello"},  # a new dialog starts
        {"context": ["yo"], "kb": [], "response": "hello"},  # and another
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sources = [s for s, _ in read_dialogue_examples(path)]
    assert [s.dialog for s in sources] == [
        "mine.jsonl#1",
        "mine.jsonl#1",
        "mine.jsonl#2",
        "mine.jsonl#3",
    ]
    assert [s.turn for s in sources] == [0, 1, 0, 0]
    assert sources[0].task is None


def test_task_read_collects_entities_from_facts_and_sibling_kb_files(tmp_path):
    (tmp_path / "dialog-babi-kb-all.txt").write_text("1 resto_z R_cuisine korean\n")
    path = tmp_path / "dialog-babi-task4-phone-address-trn.txt"
    path.write_text(BABI)
    task = get_task("dialogue")
    args = argparse.Namespace(context_field="context", kb_field="kb", response_field="response")
    task.read(str(path), args)
    assert task.entities == {"resto_a", "resto_a_phone", "resto_z", "korean"}


def test_default_splits_are_the_generated_task_with_an_oov_test(tmp_path):
    task = get_task("dialogue", {"num_dev": 2, "num_test": 3})
    args = argparse.Namespace(
        data_dir=str(tmp_path),
        seed=0,
        tasks="5",
        num_dialogs=4,
        context_field="context",
        kb_field="kb",
        response_field="response",
    )
    splits = task.default_splits(args)
    assert sorted(splits) == ["test", "test-OOV", "train", "valid"]
    dialogs = {split: len({s.dialog for s, _ in ex}) for split, ex in splits.items()}
    assert dialogs == {"train": 4, "valid": 2, "test": 3, "test-OOV": 3}
    train_words = {w for s, r in splits["train"] for t in (*s.context, *s.kb, r) for w in t.split()}
    oov_names = {s.kb[0].split()[0] for s, _ in splits["test-OOV"] if s.kb}
    assert oov_names and not oov_names & train_words  # OOV restaurants never seen in training
    assert all(s.task == 5 for s, _ in splits["test"])


def test_metrics_by_hand():
    entities = {"resto_a", "resto_a_phone", "thai"}
    hyps = ["here it is resto_a_phone", "api_call thai", "ok", "resto_a resto_a"]
    refs = ["here it is resto_a_phone", "api_call french", "ok", "resto_a"]
    # tp: 1 + 0 + 0 + 1; fp: 0 + 1 (thai) + 0 + 1 (second resto_a); fn: 0 + 0 + 0 + 0
    assert entity_f1(hyps, refs, entities) == pytest.approx(2 * 2 / (2 * 2 + 2 + 0))
    assert entity_f1(["ok"], ["ok"], entities) == 1.0
    assert per_dialog_accuracy(hyps, refs, ["d1", "d1", "d2", "d3"]) == pytest.approx(1 / 3)
    assert fact_entities("7 resto_a R_address resto_a_address") == {"resto_a", "resto_a_address"}
    assert fact_entities("resto_a is great") == set()


def test_score_sources_reports_per_sub_task():
    task = get_task("dialogue")
    sources = [DialogueSource("a#1", 0, 1, ("hi",), ()), DialogueSource("b#1", 0, 2, ("hi",), ())]
    scores = task.score_sources(sources, ["x", "y"], [["x"], ["z"]])
    assert scores["per_response_accuracy"] == 0.5
    assert scores["task1_per_response_accuracy"] == 1.0
    assert scores["task2_per_dialog_accuracy"] == 0.0


def test_conversation_turns_silence_padding_and_truncation():
    context = tf.constant([["hi", "hello", "", "x", "y", ""], ["", "", "", "", "", ""]])
    assert _strings(conversation_turns(context, 63)) == [
        ["hi", "hello", "<SILENCE>", "x", "y", ""],
        ["", "", "", "", "", ""],
    ]
    # the last 3 turns (an odd count keeps a user turn first)
    assert _strings(conversation_turns(context, 3)) == [["<SILENCE>", "x", "y"], ["", "", ""]]
    assert _strings(conversation_turns(tf.zeros([2, 0], tf.string), 5)) == [[""], [""]]
    kb = tf.constant([["", "f1", "", "f2", "f3"]])
    assert _strings(kb_facts(kb, 2)) == [["f2", "f3"]]
    assert _strings(kb_facts(kb, 64)) == [["f1", "f2", "f3", "", ""]]


def test_flattened_conversation_order():
    flat = flatten_dialogue(
        tf.constant([["hi", "hello", "book it", ""]]), tf.constant([["f1", "", "f2"]])
    )
    assert flat.numpy()[0].decode() == "$u hi $s hello $kb f1 $kb f2 $u book it"


@pytest.fixture(scope="module")
def proto():
    texts = [
        "hi there",
        "hello what can i help you with today",
        "resto_a R_phone resto_a_phone",
        "here it is resto_a_phone",
        "$u $s $kb",
    ] * 3
    return train_sentencepiece(texts, 60)


def test_flat_preprocessor_truncates_from_the_left(proto):
    pre = FlatDialoguePreprocessor(proto, max_source_length=6)
    context, kb = tf.constant([["hi there", "hello", "here it is"]]), tf.constant([[""]])
    full = pre.source_tokenizer.tokenize(pre.source_texts(context, kb))[0].numpy().tolist()
    ids = pre.source_ids(context, kb).numpy()[0].tolist()
    assert ids == full[-5:] + [EOS_ID]
    *_, truncated = pre.encode_source_reporting(context, kb)
    assert truncated.numpy().tolist() == [len(full) - 5]  # the oldest pieces, reported
    # an empty request is just EOS
    assert pre.source_ids(tf.constant([[""]]), tf.constant([[""]])).numpy().tolist() == [[EOS_ID]]


def test_every_cut_piece_is_reported(proto):
    """Turns and facts over max_turns/max_facts and pieces over max_turn_length are all
    counted in the signatures' `source_truncated_tokens`; a request that fits counts 0."""
    context = tf.constant(
        [["hi there", "hello", "here it is"], ["hi there", "", ""], ["hello", "", "hi there"]]
    )
    kb = tf.constant([["resto_a R_phone resto_a_phone", "here it is"], ["", ""], ["", ""]])

    def n(text):
        return len(proto_pieces(proto, text))

    memory = DialoguePreprocessor(proto, max_turns=1, max_facts=1, max_turn_length=2)
    *_, cut = memory.encode_source_reporting(context, kb)
    lost = n("hi there") + n("hello") + max(n("here it is") - 2, 0)  # 2 old turns, 1 long
    lost += n("resto_a R_phone resto_a_phone") + max(n("here it is") - 2, 0)  # old fact, long
    # row 3: "hello" and an empty turn (served as <SILENCE>, never sent) are dropped
    last = max(n("hi there") - 2, 0)
    assert cut.numpy().tolist() == [lost, max(n("hi there") - 2, 0), n("hello") + last]
    whole = DialoguePreprocessor(proto).encode_source_reporting(context, kb)[3]
    assert whole.numpy().tolist() == [0, 0, 0]

    # flattened: turns/facts over the caps, then the oldest pieces over max_source_length
    flat = FlatDialoguePreprocessor(proto, max_source_length=6, max_turns=1, max_facts=1)
    everything = FlatDialoguePreprocessor(proto, max_source_length=1000)
    full = everything.source_tokenizer.tokenize(everything.source_texts(context, kb))
    capped = flat.source_tokenizer.tokenize(flat.source_texts(context, kb))
    read = tf.minimum(capped.row_lengths(), 5)  # 5 pieces + EOS
    *_, cut = flat.encode_source_reporting(context, kb)
    assert cut.numpy().tolist() == (full.row_lengths() - read).numpy().tolist()
    assert everything.encode_source_reporting(context, kb)[3].numpy().tolist() == [0, 0, 0]


def proto_pieces(proto, text):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=proto).encode(text)


def test_dialogue_preprocessor_slots_for_unusual_requests(proto):
    pre = DialoguePreprocessor(proto, max_turns=5, max_facts=4, max_turn_length=3)
    requests = [
        {"context": [], "kb": []},
        {"context": ["hi there"], "kb": []},
        {"context": ["hi there", "hello", "here it is"], "kb": ["resto_a R_phone resto_a_phone"]},
    ]
    batch = batch_inputs(requests, ["context", "kb"])
    (memory, speakers, query), lengths, errors = pre.encode_source(
        tf.constant(batch["context"]), tf.constant(batch["kb"])
    )
    assert errors is None
    assert memory.shape[0] == 3 and memory.shape[2] <= 3  # cut to max_turn_length
    assert not np.any(memory.numpy()[:2])  # no earlier turns, no facts: all padding
    assert not np.any(query.numpy()[0])  # empty conversation: no query either
    hi = pre.target_tokenizer.tokenize(tf.constant(["hi there"]))[0, :3].numpy().tolist()
    assert query.numpy()[1, : len(hi)].tolist() == hi
    assert speakers.numpy()[2].tolist()[:3] == [2, 1, 3]  # bot turn, user turn, fact
    assert lengths.numpy()[0] == 0


def test_entity_substitution_is_consistent_seeded_and_training_only():
    from s2s_zoo.tasks.dialogue.entity_substitution import substitute_entities, value_words

    facts = ["resto_rome_cheap_thai_2stars R_cuisine thai",
             "resto_rome_cheap_thai_2stars R_location rome",
             "resto_rome_cheap_thai_2stars R_price cheap",
             "resto_rome_cheap_thai_2stars R_phone resto_rome_cheap_thai_2stars_phone",
             "resto_rome_cheap_thai_2stars R_number four"]  # fmt: skip
    values = value_words(facts)
    assert values == {"rome", "cheap", "thai"}
    example = (["thai food in rome please", "ok"], facts,
               "here it is resto_rome_cheap_thai_2stars_phone")  # fmt: skip
    plain = (["hello"], [], "hello what can i help you with today")
    out = substitute_entities([example, plain] * 50, values, rate=0.5, seed=3)
    assert out == substitute_entities([example, plain] * 50, values, rate=0.5, seed=3)
    changed = [o for o in out[::2] if o != example]
    assert 10 < len(changed) < 40 and all(o == plain for o in out[1::2])
    for context, kb, response in changed:
        cuisine, city = context[0].split()[0], context[0].split()[3]
        assert {cuisine, city}.isdisjoint(values) and cuisine != city
        name = kb[0].split()[0]
        assert name.startswith(f"resto_{city}_") and name.endswith(f"_{cuisine}_2stars")
        assert kb[4].endswith("R_number four")  # not a value word: kept
        assert response == f"here it is {name}_phone" and context[1] == "ok"
    assert len({o[0][0] for o in changed}) == len(changed)  # invented anew for each example
    with pytest.raises(ValueError, match="rate"):
        substitute_entities([example], values, rate=1.5)
    # punctuation and tabs around a value, and no invented word that the data already has
    odd = (["thai food in rome, please\tnow", "two for you"], [], "api_call thai rome two")
    many = substitute_entities([odd] * 300, values, rate=1.0, seed=0)
    words = {"thai", "food", "in", "rome", "please", "now", "two", "for", "you", "api", "call"}
    for context, _, response in many:
        cuisine, city = response.split()[1:3]
        assert context[0] == f"{cuisine} food in {city}, please\tnow"
        assert not {cuisine, city} & words


def test_invented_words_are_made_of_the_data_words_letter_pairs():
    """Invented values look like the data's words (so they split into the pieces real
    unseen values split into): every letter pair, word start and word end of an invented
    word occurs in the words it learned from, and it is none of them."""
    import random

    from s2s_zoo.tasks.dialogue.entity_substitution import WordShapes

    words = ["lima", "oslo", "cairo", "rome", "paris", "madrid", "seoul", "hanoi"]
    pairs = {p for w in words for p in zip(f"^{w}", f"{w}$", strict=True)}
    taken = set(words)
    invented = [
        WordShapes(words, any_letter=0.0).invent(random.Random(i), taken) for i in range(200)
    ]
    assert len(set(invented)) == 200 and not set(invented) & set(words)
    for word in invented:
        assert 3 <= len(word) <= 10
        assert set(zip(f"^{word}", f"{word}$", strict=True)) <= pairs, word
    # by default some letters come from the whole alphabet: letters the words never have
    rng, taken = random.Random(0), set(words)
    shapes = WordShapes(words)
    drawn = [shapes.invent(rng, taken) for _ in range(300)]
    known = set("".join(words))
    inside = [w for w in drawn if any(c not in known for c in w[:-1])]
    assert len(inside) > 10  # unseen letters inside words, not only as their last letter
    # nothing to learn from, or only words too short: uniform letters, new, of the length
    blank = WordShapes([]).invent(random.Random(0), {"abc"}, min_length=3, max_length=3)
    assert len(blank) == 3 and blank.isalpha() and blank != "abc"
    short = WordShapes(["a", "b"], any_letter=0.0).invent(random.Random(0), set(), attempts=50)
    assert 3 <= len(short) <= 10 and short.isalpha()


def test_entity_substitution_flag_reaches_training_batches_only(monkeypatch):
    import argparse

    from s2s_zoo.tasks.base import get_task
    from s2s_zoo.tasks.dialogue import task as task_module

    task = get_task("dialogue", {"entity_substitution": 1.0})
    parser = argparse.ArgumentParser()
    task.add_arguments(parser)
    assert parser.parse_args(["--entity-substitution", "0"]).entity_substitution == 0.0
    args = parser.parse_args([])
    assert args.entity_substitution == 1.0
    args.batch_size, args.seed = 2, 0
    calls = []

    def record(triples, values, rate, seed):
        calls.append(rate)
        return triples

    monkeypatch.setattr(task_module, "substitute_entities", record)
    monkeypatch.setattr(task_module, "make_dialogue_dataset", lambda *a, **k: None)
    source = task_module.DialogueSource("d1", 0, None, ("hi",), ())
    task.dataset([(source, "hello")], None, args, training=False)
    assert calls == []
    task.dataset([(source, "hello")], None, args, training=True)
    assert calls == [1.0]
