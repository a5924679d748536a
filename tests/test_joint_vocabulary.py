"""share_embeddings="all" means one id space for both sides: the task trains ONE joint
SentencePiece model, and a model cannot be joined to two different vocabularies."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import UNK_ID, train_sentencepiece
from s2s_zoo.export.conformance import check_serving
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_catalog, requires_joint_vocabulary
from s2s_zoo.tasks.base import get_task
from s2s_zoo.tasks.translation.numbers import number_pair
from s2s_zoo.training.runner import Recipe, argument_parser, build_inference
from tests.conftest import tiny_overrides

PAIRS = [number_pair(n) for n in range(0, 2000, 3)]
SHARED = {**tiny_overrides("transformer_tiny"), "share_embeddings": "all"}


def shared_model(vocab_size: int):
    keras.utils.set_random_seed(0)
    return build_from_catalog("transformer_tiny", vocab_size, vocab_size, **SHARED)


def test_the_catalog_says_which_models_need_one_vocabulary():
    assert requires_joint_vocabulary("transformer_tiny", share_embeddings="all")
    assert not requires_joint_vocabulary("transformer_tiny")  # decoder_output by default
    assert not requires_joint_vocabulary("gru_bahdanau")
    assert shared_model(40).requires_joint_vocabulary
    # the summarization decoder shares its embedding and copies source ids by default
    assert requires_joint_vocabulary("pointer_generator")
    assert requires_joint_vocabulary("seq2seq_attention_summ")  # no copying, shared embedding
    assert not requires_joint_vocabulary("seq2seq_attention_summ", share_embeddings=False)


def test_two_vocabularies_of_the_same_size_are_refused():
    english = train_sentencepiece([s for s, _ in PAIRS], 60)
    french = train_sentencepiece([t for _, t in PAIRS], 60)
    pre = TextPreprocessor(english, french, 32, 32)
    assert pre.source_vocab_size == pre.target_vocab_size == 60  # sizes alone cannot tell
    model = shared_model(60)
    with pytest.raises(ValueError, match="ONE joint SentencePiece model"):
        Seq2SeqInference(pre, model, DecodingConfig())
    joint = TextPreprocessor(english, english, 32, 32)
    Seq2SeqInference(joint, model, DecodingConfig())  # one proto for both sides: accepted
    assert joint.source_tokenizer is joint.target_tokenizer


def runner_inference(model_overrides: dict, vocab: int = 120) -> Seq2SeqInference:
    recipe = Recipe(name="joint", task="translation", model="transformer_tiny",
                    model_overrides=model_overrides)  # fmt: skip
    task = get_task("translation", {"vocab_size": vocab, "max_source_length": 32,
                                    "max_target_length": 32})  # fmt: skip
    args = argument_parser(recipe, task).parse_args([])
    return build_inference(recipe, task, args, PAIRS)


def test_the_runner_trains_one_joint_vocabulary_for_a_sharing_model():
    inference = runner_inference(SHARED)
    pre = inference.preprocessor
    assert pre.source_proto == pre.target_proto
    pieces = pre.source_tokenizer.tokenize(["forty-two", "quarante-deux", "cent soixante"])
    assert UNK_ID not in pieces.flat_values.numpy()  # both languages' words are covered
    embedding = inference.model.encoder.token_embedding
    assert embedding is inference.model.decoder.token_embedding
    assert embedding.input_dim == pre.source_vocab_size == pre.target_vocab_size
    # without sharing, each side keeps its own vocabulary
    separate = runner_inference(tiny_overrides("transformer_tiny")).preprocessor
    assert separate.source_proto != separate.target_proto


@pytest.mark.slow  # an export and a child process: ~1-2 min on a busy CPU
def test_a_joint_vocabulary_model_exports_and_serves(tmp_path):
    inference = runner_inference(SHARED)
    path = export_saved_model(inference, tmp_path / "joint")  # one tokenizer in the graph
    report = check_serving(path, inference, texts=["forty-two", "", "seven hundred"])
    assert report.ok, report.mismatches


def test_tasks_without_text_sources_refuse_a_joint_vocabulary():
    import argparse

    task = get_task("captioning")
    with pytest.raises(ValueError, match="joint vocabulary"):
        task.make_joint_preprocessor([("x.png", "a caption")], argparse.Namespace(vocab_size=8))


def test_a_joint_preprocessor_saves_and_loads_as_one_vocabulary(tmp_path):
    from s2s_zoo.data.preprocessor import load_preprocessor

    joint = train_sentencepiece([text for pair in PAIRS for text in pair], 120)
    pre = TextPreprocessor(joint, joint, 32, 32)
    pre.save(tmp_path)
    loaded = load_preprocessor(tmp_path, pre.get_config())
    assert loaded.source_proto == loaded.target_proto == joint
    texts = tf.constant(["forty-two", "quarante-deux"])
    assert loaded.source_ids(texts).numpy().tolist() == pre.source_ids(texts).numpy().tolist()
