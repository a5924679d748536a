"""Adding a task or a model family is one file: this test file registers a toy task
(string reversal) and a toy encoder family, and trains, exports and serves them
through the runner and `s2s-zoo train`, with no edit to the package."""

from __future__ import annotations

import random
from dataclasses import dataclass

import keras
import pytest
from keras import layers

from s2s_zoo import cli
from s2s_zoo.data.pipeline import make_dataset
from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.export.conformance import run_in_session
from s2s_zoo.models.base import Encoder, EncoderOutput, register_encoder
from s2s_zoo.models.registry import CATALOG, CatalogEntry
from s2s_zoo.tasks.base import Task, register_task
from s2s_zoo.training.runner import Recipe, run


@register_task("toy_reverse")
class ReverseTask(Task):
    """Letters -> the same letters reversed; the default corpus is random words."""

    default_model = "toy_conv_gru"
    default_options = {"vocab_size": 40}

    def read(self, path, args):
        return [tuple(line.split("\t")) for line in open(path).read().splitlines() if line]

    def default_splits(self, args):
        rng = random.Random(args.seed)
        words = [" ".join(rng.choice("abcdef") for _ in range(rng.randint(1, 5)))
                 for _ in range(400)]  # fmt: skip
        pairs = [(w, " ".join(reversed(w.split()))) for w in words]
        return {"train": pairs[:360], "valid": pairs[360:380], "test": pairs[380:]}

    def make_preprocessor(self, train, args):
        proto = train_sentencepiece([s for s, _ in train], args.vocab_size)
        return TextPreprocessor(proto, proto, 16, 16)

    def dataset(self, examples, preprocessor, args, training):
        return make_dataset(examples, preprocessor, args.batch_size, shuffle=training)


@dataclass
class ConvEncoderConfig:
    vocab_size: int = 0
    embedding_dim: int = 16
    width: int = 3


@register_encoder("toy_conv")
class ConvEncoder(Encoder):
    """Token embeddings and one 'same' convolution: a family in a dozen lines."""

    config_class = ConvEncoderConfig
    source_features = "token_ids"

    def __init__(self, config):
        super().__init__(config)
        self.embedding = layers.Embedding(config.vocab_size, config.embedding_dim)
        self.conv = layers.Conv1D(config.embedding_dim, config.width, padding="same")

    @property
    def memory_dim(self):
        return self.config.embedding_dim

    def inputs(self):
        return [keras.Input((None,), dtype="int32", name="source_ids")]

    def __call__(self, inputs):
        mask = keras.ops.not_equal(inputs[0], 0)
        memory = self.conv(self.embedding(inputs[0])) * keras.ops.cast(mask, "float32")[..., None]
        return EncoderOutput(memory, mask, None)


@pytest.fixture
def toy_entry(monkeypatch):
    monkeypatch.setitem(
        CATALOG,
        "toy_conv_gru",
        CatalogEntry(
            "toy_conv", "rnn",
            {"cell": "gru", "decoder_units": 32, "attention_units": 16, "embedding_dim": 16},
            {"epochs": 12, "batch_size": 32, "learning_rate": 1e-2, "patience": 0},
        ),
    )  # fmt: skip


def common(tmp_path):
    return ["--export-dir", str(tmp_path / "exported"), "--checkpoint-dir",
            str(tmp_path / "ckpt")]  # fmt: skip


def test_toy_task_and_family_through_the_runner(toy_entry, tmp_path):
    recipe = Recipe(name="toy", task="toy_reverse", model="toy_conv_gru")
    result = run(recipe, common(tmp_path))  # raises unless the Session check passed
    losses = result["history"]["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result["metrics"]["beam_exact_match"] > 0.5, result["metrics"]  # copying: ~25%
    served = run_in_session(
        result["export_path"], [{"signature": "greedy", "inputs": {"inputs": ["a b c", ""]}}]
    )["results"][0]
    assert len(served["outputs"]) == 2


def test_toy_task_and_family_through_the_cli(toy_entry, tmp_path):
    code = cli.main(["train", "--task", "toy_reverse", "--model", "toy_conv_gru",
                     "--name", "toy_cli", "--epochs", "2", *common(tmp_path)])  # fmt: skip
    assert code == 0
    assert (tmp_path / "exported" / "toy_cli" / "1" / "saved_model.pb").is_file()
