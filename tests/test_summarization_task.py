"""The summarization task: readers, default corpus, one joint vocabulary, truncation counts,
ROUGE scores, lead baselines and output statistics; the recipe end to end (slow)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import sentencepiece as spm

from s2s_zoo.data.readers import DataFormatError, write_pairs
from s2s_zoo.metrics import rouge
from s2s_zoo.tasks.base import get_task
from s2s_zoo.tasks.summarization.debian_index import FETCH_COMMAND
from s2s_zoo.tasks.summarization.task import SummarizationTask, count_truncated

DOCS = [
    ("Zorp is a proxy firewall. It filters many protocols and keeps logs of every session.",
     "proxy firewall"),
    ("Quux renders vector maps. Tiles come from a local database of roads and rivers.",
     "vector map renderer"),
    ("Blip plays audio files. It supports many formats and a queue of songs.",
     "audio player"),
    ("Frob is a tiny editor for text files with syntax highlighting for many languages.",
     "small text editor"),
]  # fmt: skip


def parse(task: SummarizationTask, *argv: str, **extra) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    task.add_arguments(parser)
    args = parser.parse_args(list(argv))
    for key, value in {"vocab_size": 60, "batch_size": 2, "seed": 0, **extra}.items():
        setattr(args, key, value)
    return args


def test_registered_and_reads_tsv_and_jsonl_with_field_names(tmp_path):
    task = get_task("summarization")
    assert isinstance(task, SummarizationTask)
    write_pairs(tmp_path / "a.tsv", DOCS)
    write_pairs(tmp_path / "b.jsonl", DOCS, source_field="article", target_field="headline")
    assert task.read(str(tmp_path / "a.tsv"), parse(task)) == DOCS
    args = parse(task, "--source-field", "article", "--target-field", "headline")
    assert task.read(str(tmp_path / "b.jsonl"), args) == DOCS
    # the default JSONL fields are document / summary
    write_pairs(tmp_path / "c.jsonl", DOCS, source_field="document", target_field="summary")
    assert task.read(str(tmp_path / "c.jsonl"), parse(task)) == DOCS
    with pytest.raises(DataFormatError, match=r"b\.jsonl:1: missing field 'document'"):
        task.read(str(tmp_path / "b.jsonl"), parse(task))


def test_missing_index_error_names_the_fetch_command(tmp_path):
    task = get_task("summarization")
    args = parse(task, "--lists-dir", str(tmp_path / "lists"), data_dir=str(tmp_path / "data"))
    with pytest.raises(SystemExit) as error:
        task.default_splits(args)
    assert FETCH_COMMAND in str(error.value)
    assert "--train" in str(error.value)


def test_default_corpus_is_built_once_and_read_back(tmp_path):
    lz4 = pytest.importorskip("lz4.frame")
    lists = tmp_path / "lists"
    lists.mkdir()
    stanzas = []
    for i in range(300):  # enough package families for non-empty 2% valid/test splits
        word = f"pkg{i:03d}"
        body = f" {word.capitalize()} does thing number {i} " + "with many words " * 5
        stanzas.append(f"Package: {word}\nDescription-en: tool {i}\n{body}\n")
    (lists / "x_main_i18n_Translation-en.lz4").write_bytes(
        lz4.compress("\n".join(stanzas).encode())
    )
    task = get_task("summarization")
    args = parse(task, "--lists-dir", str(lists), data_dir=str(tmp_path / "data"))
    splits = task.default_splits(args)
    assert sum(len(v) for v in splits.values()) == 300
    assert all(splits[s] for s in ("train", "valid", "test"))
    assert ("Pkg007 does thing number 7 " + "with many words " * 5).strip() in {
        d for d, _ in splits["train"] + splits["valid"] + splits["test"]
    }
    stamp = (tmp_path / "data" / "train.tsv").stat().st_mtime_ns
    (lists / "x_main_i18n_Translation-en.lz4").unlink()  # the built corpus is reused
    assert task.default_splits(args) == splits
    assert (tmp_path / "data" / "train.tsv").stat().st_mtime_ns == stamp


def test_one_joint_vocabulary_and_truncation_counts(capsys):
    task = get_task("summarization")
    args = parse(task, "--max-source-tokens", "12", "--max-target-tokens", "3")
    pre = task.make_preprocessor(DOCS * 5, args)
    assert pre.source_proto == pre.target_proto  # one SentencePiece model for both sides
    assert (pre.max_source_length, pre.max_target_length) == (13, 4)  # + EOS / BOS

    sp = spm.SentencePieceProcessor(model_proto=pre.source_proto)
    long_docs = sum(len(sp.encode(d)) > 12 for d, _ in DOCS)
    long_sums = sum(len(sp.encode(s)) > 3 for _, s in DOCS)
    assert long_docs > 0 and long_sums > 0  # both kinds of truncation occur

    dataset = task.dataset(DOCS, pre, args, training=True)
    report = task.truncation["train"]
    assert (report.examples, report.documents, report.summaries) == (4, long_docs, long_sums)
    out = capsys.readouterr().out
    assert f"train: {long_docs} of 4 ({long_docs / 4:.1%}) documents longer than 12" in out
    assert f"{long_sums} of 4 ({long_sums / 4:.1%}) summaries longer than 3" in out
    for (source, target_in), target_out in dataset:  # what the model sees is cut there too
        assert source.shape[1] <= 13 and target_in.shape[1] <= 4 and target_out.shape[1] <= 4
    task.dataset(DOCS[:1], pre, args, training=False)
    assert task.truncation["valid"] == count_truncated(DOCS[:1], pre)
    assert "valid: " in capsys.readouterr().out


def test_scores_baselines_and_output_statistics():
    task = get_task("summarization")
    hypotheses = ["proxy firewall tool", "maps"]
    references = [["proxy firewall"], ["vector map renderer"]]
    assert task.score(hypotheses, references) == rouge(
        hypotheses, ["proxy firewall", "vector map renderer"]
    )
    # several references: the best one counts (rouge-score's score_multi)
    best = task.score(["audio player"], [["text editor", "audio player"]])
    assert best == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}

    sources = [d for d, _ in DOCS[:2]]
    baselines = task.baselines(sources)
    assert baselines["lead-1 sentence"] == [
        "Zorp is a proxy firewall.",
        "Quux renders vector maps.",
    ]
    assert baselines["lead-8 words"][0] == "Zorp is a proxy firewall. It filters many"
    stats = task.output_stats(sources, ["zorp firewall new", "maps maps maps maps"])
    # 6 of 7 words occur in their source ("new" does not); of the 3 trigrams, the second
    # "maps maps maps" repeats the first
    assert stats == {"copy_rate": 6 / 7, "repeated_trigrams": 1 / 3}


@pytest.mark.slow
def test_recipe_end_to_end_and_cli_on_the_export(tmp_path, capsys):
    """Every common flag through the recipe on user files, then the CLI on the export."""
    import importlib.util

    from s2s_zoo import cli
    from s2s_zoo.training.runner import run

    spec = importlib.util.spec_from_file_location(
        "pg_recipe", Path(__file__).parents[1] / "recipes/summarization/pointer_generator.py"
    )
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    for split, pairs in (("train", DOCS * 8), ("valid", DOCS), ("test", DOCS[:2])):
        write_pairs(tmp_path / f"{split}.jsonl", pairs, source_field="doc", target_field="sum")
    tiny = {"embedding_dim": 8, "encoder_units": 8, "decoder_units": 16, "attention_units": 8}
    argv = [
        "--train", str(tmp_path / "train.jsonl"), "--valid", str(tmp_path / "valid.jsonl"),
        "--test", str(tmp_path / "test.jsonl"), "--source-field", "doc", "--target-field", "sum",
        "--export-dir", str(tmp_path / "exported"), "--checkpoint-dir", str(tmp_path / "ckpt"),
        "--epochs", "2", "--batch-size", "4", "--vocab-size", "60", "--max-minutes", "5",
        "--max-source-tokens", "12", "--min-length", "2", "--no-repeat-ngram-size", "2",
        "--coverage-penalty", "0.2", "--model-config", json.dumps(tiny),
    ]  # fmt: skip
    result = run(recipe.RECIPE, argv)
    out = capsys.readouterr().out
    assert "documents longer than 12 tokens" in out
    for key in ("greedy_rouge1", "beam_rougeL", "beam_copy_rate", "beam_repeated_trigrams",
                "lead-1 sentence_rouge1", "lead-8 words_rouge2"):  # fmt: skip
        assert key in result["metrics"], key
    assert (
        result["metrics"]["lead-1 sentence_rouge1"]
        == rouge([d.split(".")[0] + "." for d, _ in DOCS[:2]], [s for _, s in DOCS[:2]])["rouge1"]
    )
    export = result["export_path"]
    assert export == tmp_path / "exported" / "summarization_pointer_generator" / "1"
    decoding = json.loads((export / "assets.extra/s2s_zoo/decoding.json").read_text())
    assert (decoding["min_length"], decoding["no_repeat_ngram_size"]) == (2, 2)
    assert decoding["coverage_penalty"] == 0.2

    (tmp_path / "in.txt").write_text(DOCS[0][0] + "\n" + DOCS[1][0] + "\n")
    assert cli.main(["predict", "--model", str(export), "--input", str(tmp_path / "in.txt"),
                     "--output", str(tmp_path / "out.txt")]) == 0  # fmt: skip
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 2
    assert cli.main(["inspect", str(export)]) == 0
    assert '"decoder"' in capsys.readouterr().out
    assert cli.main(["check", str(export), "--text", DOCS[2][0]]) == 0
    png = tmp_path / "align.png"
    assert cli.main(["align", "--model", str(export), "--text", DOCS[0][0],
                     "--output", str(png)]) == 0  # fmt: skip
    assert png.read_bytes()[:4] == b"\x89PNG"

    # fine-tune from the export: version 2, same vocabulary
    result2 = run(recipe.RECIPE, [*argv[:argv.index("--model-config")],
                                  "--init-from", str(export), "--epochs", "1"])  # fmt: skip
    assert result2["export_path"].name == "2"
