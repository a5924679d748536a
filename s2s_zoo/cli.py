"""`s2s-zoo` command line: train any task with any catalog model, export checkpoints,
evaluate, predict with, inspect and check exported SavedModels; list models.

Decoding commands work on exported SavedModels through their signatures, the same
way TF Serving does, so what the CLI prints is what a server would return.
TensorFlow's C++ start-up chatter is silenced unless `--verbose` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


def _load(model_dir: str):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  the tokenizer ops the graph uses

    path = Path(model_dir)
    if not (path / "saved_model.pb").is_file():
        raise SystemExit(f"{path} is not a SavedModel version directory (no saved_model.pb)")
    return tf.saved_model.load(str(path))


def _input_names(loaded) -> list[str]:
    return sorted(loaded.signatures["greedy"].structured_input_signature[1])


def _json_request(line: str, names: list[str], number: int) -> dict:
    """One JSONL request line of a multi-input model, e.g. {"context": [...], "kb": [...]}."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise SystemExit(f"input line {number}: invalid JSON ({error.msg})") from None
    if not isinstance(item, dict) or set(item) - set(names):
        raise SystemExit(f"input line {number}: expected a JSON object with keys {names}")
    for name in names:
        value = item.setdefault(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SystemExit(f"input line {number}: {name!r} must be a list of strings")
    return item


def _batches(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line.rstrip("\r\n"))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def _predict_streams(args: argparse.Namespace) -> Iterator[tuple]:
    """(source, sink): --input/--output files, or stdin/stdout; files closed at the end."""
    source = open(args.input, encoding="utf-8") if args.input else sys.stdin
    sink = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        yield source, sink
    finally:
        if args.input:
            source.close()
        if args.output:
            sink.close()


def _warn_truncated(counts, first_line: int, hint: str = "") -> None:
    """Warn on stderr, by input line, about sources the model read only in part."""
    for index, count in enumerate(counts):
        if count:
            print(
                f"warning: line {first_line + index}: the source is {count} tokens over the "
                f"model's limit; only part of it was read{hint}",
                file=sys.stderr,
            )


def _write_hypotheses(sink, texts, scores, with_scores: bool) -> None:
    """One line per hypothesis (rows of n-best lists), with its score if asked."""
    for row_texts, row_scores in zip(texts, scores, strict=True):
        for text, score in zip(row_texts, row_scores, strict=True):
            sink.write(f"{score:.4f}\t{text}\n" if with_scores else f"{text}\n")
    sink.flush()


def cmd_predict(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from s2s_zoo.export.conformance import batch_inputs

    use_nbest = args.beam_size is not None or args.n_best is not None or args.max_length
    if use_nbest and args.mode == "greedy":
        raise SystemExit(
            "--beam-size/--n-best/--max-length apply to beam search, not --mode greedy"
        )
    if args.engine == "ctranslate2":
        return _predict_ctranslate2(args, use_nbest)
    if args.compute_type != "default" or args.threads != 1:
        raise SystemExit("--compute-type and --threads apply to --engine ctranslate2")
    loaded = _load(args.model)
    # text models take "inputs"; captioning "images" and speech "audio", given as file paths;
    # models with several inputs (dialogue: "context", "kb") one JSON object per line
    input_names = _input_names(loaded)
    beam_size = args.beam_size or max(args.n_best or 1, 4)
    n_best = args.n_best or 1
    with _predict_streams(args) as (source, sink):
        done = 0
        for batch in _batches(source, args.batch_size):
            names = list(batch)
            if len(input_names) > 1:
                items = [_json_request(x, input_names, done + i + 1) for i, x in enumerate(batch)]
                padded = batch_inputs(items, input_names)
                inputs = {k: tf.constant(v, tf.string) for k, v in padded.items()}
                names = [f"line {done + i + 1}" for i in range(len(batch))]
            else:
                if input_names != ["inputs"]:
                    batch = [_read_file(line) for line in batch]
                inputs = {input_names[0]: tf.constant(batch, tf.string)}
            if use_nbest:
                out = loaded.signatures["nbest"](
                    **inputs,
                    beam_size=tf.constant(beam_size, tf.int32),
                    num_hypotheses=tf.constant(n_best, tf.int32),
                    max_length=tf.constant(args.max_length or 0, tf.int32),
                )
                texts, scores = out["nbest_outputs"].numpy(), out["nbest_scores"].numpy()
            else:
                out = loaded.signatures[args.mode](**inputs)
                texts, scores = out["outputs"].numpy()[:, None], out["scores"].numpy()[:, None]
            errors = out["errors"].numpy() if "errors" in out else [b""] * len(names)
            for name, error in zip(names, errors, strict=True):
                if error:
                    reason = error.decode("utf-8")
                    print(f"warning: {name}: {reason} (empty output)", file=sys.stderr)
            if "source_truncated_tokens" in out:
                _warn_truncated(
                    out["source_truncated_tokens"].numpy(), done + 1, " (see s2s-zoo inspect)"
                )
            done += len(batch)
            texts = [[text.decode("utf-8") for text in row] for row in texts]
            _write_hypotheses(sink, texts, scores, args.with_scores)
    return 0


def _predict_ctranslate2(args: argparse.Namespace, use_nbest: bool) -> int:
    """`predict` on a CTranslate2 model directory (text models only)."""
    from s2s_zoo.export.ctranslate2 import CTranslate2Inference

    try:
        model = CTranslate2Inference(
            args.model, compute_type=args.compute_type, intra_threads=args.threads
        )
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    with _predict_streams(args) as (source, sink):
        done = 0
        for batch in _batches(source, args.batch_size):
            if args.mode == "greedy":
                out = model.greedy(batch)
            elif use_nbest:
                n_best = args.n_best or 1
                out = model.beam(batch, args.beam_size or max(n_best, 4), n_best,
                                 args.max_length or 0)  # fmt: skip
            else:  # the exported decoding settings, best hypothesis (as serving_default)
                out = model.beam(batch, num_hypotheses=1)
            _warn_truncated(out.truncated, done + 1)
            done += len(batch)
            _write_hypotheses(sink, out.texts, out.scores, args.with_scores)
    return 0


def _read_file(path: str) -> bytes:
    try:
        return Path(path.strip()).read_bytes()
    except OSError as error:
        raise SystemExit(f"cannot read input file {path!r}: {error}") from None


def cmd_inspect(args: argparse.Namespace) -> int:
    loaded = _load(args.model)
    print(f"SavedModel: {args.model}")
    for name, fn in sorted(loaded.signatures.items()):
        print(f"signature {name!r}")
        for key, spec in sorted(fn.structured_input_signature[1].items()):
            print(f"  input  {key}: {spec.dtype.name} {spec.shape}")
        for key, spec in sorted(fn.structured_outputs.items()):
            print(f"  output {key}: {spec.dtype.name} {spec.shape}")
    from s2s_zoo.bundle import BUNDLE_IN_EXPORT

    bundle = Path(args.model) / BUNDLE_IN_EXPORT
    for name in ("task.json", "model.json", "preprocessor.json", "decoding.json"):
        path = bundle / name
        if path.is_file():
            print(f"{name}:\n{json.dumps(json.loads(path.read_text()), indent=2)}")
    if (bundle / "model.json").is_file():
        from s2s_zoo.bundle import load_bundle

        limits = load_bundle(args.model, load_weights=False).limits()
        print("effective limits (what the signatures enforce):")
        source = limits["max_source_tokens"]
        reports = "source_truncated_tokens" in loaded.signatures["greedy"].structured_outputs
        if source is not None:
            print(
                f"  source: at most {source} tokens (EOS included); longer inputs are cut"
                + (", and each cut is reported in source_truncated_tokens" if reports else "")
            )
        print(f"  output: at most {limits['max_output_tokens']} tokens (EOS included)")
        print(f"  per item: {limits['output_budget']}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from s2s_zoo.bundle import load_bundle
    from s2s_zoo.export.conformance import check_serving

    input_names = _input_names(_load(args.model))
    samples: list = list(args.text or ["", "hello world"])
    if len(input_names) > 1:  # e.g. dialogue: --text '{"context": [...], "kb": [...]}'
        samples = (
            [_json_request(s, input_names, i + 1) for i, s in enumerate(args.text)]
            if args.text
            else _default_samples(input_names)
        )
    elif input_names != ["inputs"]:  # media models: samples are files, sent as bytes
        samples = [_read_file(s) if Path(s).is_file() else s.encode("utf-8") for s in samples]
    inference = None if args.no_compare else load_bundle(args.model)
    report = check_serving(args.model, inference, texts=samples, input_name=input_names)
    print(f"signatures: {report.signatures}")
    if report.ok:
        what = "loaded and ran" if inference is None else "match the in-process model"
        print(f"OK: every signature {what} on the TF Serving (Session) path")
        return 0
    print("FAILED:\n" + "\n".join(report.mismatches))
    return 1


def _default_samples(input_names: list[str]) -> list[dict]:
    """Requests for a multi-input model: everything empty, and one short item per input."""
    return [{n: [] for n in input_names}, {n: ["hello world"] for n in input_names}]


def cmd_align(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from s2s_zoo.plotting import save_alignment_heatmap

    loaded = _load(args.model)
    if "alignment" not in loaded.signatures:
        raise SystemExit(f"{args.model} has no 'alignment' signature (a model without attention)")
    out = loaded.signatures["alignment"](inputs=tf.constant([args.text]))
    source = [p.decode("utf-8") for p in out["source_tokens"].numpy()[0] if p]
    length = int(out["lengths"].numpy()[0])
    target = [p.decode("utf-8") for p in out["output_tokens"].numpy()[0][:length]]
    weights = out["attention"].numpy()[0][: len(target), : len(source)]
    save_alignment_heatmap(weights, source, target, args.output)
    print(f"{out['outputs'].numpy()[0].decode('utf-8')}\nalignment heatmap: {args.output}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from s2s_zoo.models.registry import CATALOG, build_from_catalog, source_features

    print(f"{'name':<20} {'encoder':<16} {'decoder':<12} {'source':<15} {'parameters':>11}")
    for name, e in sorted(CATALOG.items()):
        model = build_from_catalog(name, args.vocab, args.vocab)
        print(
            f"{name:<20} {e.encoder:<16} {e.decoder:<12} {source_features(name):<15} "
            f"{model.count_params():>11,}  {e.about}"
        )
    print(f"(parameter counts for vocabularies of {args.vocab})")
    return 0


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    from s2s_zoo.training.runner import main as run_main
    from s2s_zoo.training.runner import recipe_for

    run_main(recipe_for(args.task, args.model, args.name), argv=rest)
    return 0


def cmd_evaluate(args: argparse.Namespace, rest: list[str]) -> int:
    from s2s_zoo.training.runner import evaluate_main

    evaluate_main(args.model, args.test, args.task, rest)
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    import tempfile

    from s2s_zoo.bundle import bundle_task, load_bundle, save_bundle
    from s2s_zoo.training.averaging import average_checkpoints, latest_checkpoints

    paths = latest_checkpoints(args.weights_dir, args.last)
    if not paths:
        raise SystemExit(f"no *.weights.h5 files in {args.weights_dir}")
    inference = load_bundle(args.bundle, load_weights=False)
    with tempfile.TemporaryDirectory() as tmp:
        averaged = average_checkpoints(paths, Path(tmp) / "averaged.weights.h5")
        inference.model.training_model.load_weights(str(averaged))
    save_bundle(inference, args.out, task=bundle_task(args.bundle))
    names = ", ".join(p.name for p in paths)
    print(f"Averaged {len(paths)} checkpoints ({names}) into {args.out}")
    print(f"Export it with: s2s-zoo export --from {args.out} --name NAME")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from s2s_zoo.bundle import bundle_task, load_bundle
    from s2s_zoo.export.conformance import check_serving
    from s2s_zoo.export.saved_model import export_saved_model

    if args.format == "ctranslate2":
        return _export_ctranslate2(args)
    if args.out or args.quantization or args.force:
        raise SystemExit("OUT, --quantization and --force apply to --format ctranslate2")
    if not args.name:
        raise SystemExit("s2s-zoo export: --name is required for a SavedModel export")
    inference = load_bundle(args.source)
    path = export_saved_model(
        inference, Path(args.export_dir) / args.name, task=bundle_task(args.source)
    )
    print(f"Exported SavedModel: {path}")
    if not args.no_serving_check:
        names = inference.input_names
        samples = ["", "hello world"] if len(names) == 1 else _default_samples(names)
        report = check_serving(path, inference, texts=samples)
        if not report.ok:
            print("Serving check FAILED:\n" + "\n".join(report.mismatches))
            return 1
        print(f"Serving check (TF1 Session loader, fresh process): OK for {report.signatures}")
    return 0


def _export_ctranslate2(args: argparse.Namespace) -> int:
    """`export --format ctranslate2 --from BUNDLE OUT`, then greedy-decode a few samples
    with it and compare them with the in-process model (unless quantized: then only run)."""
    from s2s_zoo.bundle import load_bundle
    from s2s_zoo.export.ctranslate2 import CTranslate2Inference, export_ctranslate2

    if not args.out:
        raise SystemExit("s2s-zoo export --format ctranslate2: give the output directory OUT")
    if args.name:
        raise SystemExit("--name applies to SavedModel exports; CTranslate2 writes to OUT")
    inference = load_bundle(args.source)
    try:
        path = export_ctranslate2(inference, args.out, args.quantization, force=args.force)
    except (ValueError, FileExistsError) as error:
        raise SystemExit(f"CTranslate2 export failed: {error}") from None
    print(f"Exported CTranslate2 model: {path}")
    if args.no_serving_check:
        return 0
    samples = ["hello world", "one two three"]
    decoded = CTranslate2Inference(path).greedy(samples)
    if args.quantization:
        print(f"Check: the {args.quantization} model decodes (not compared: quantized)")
        return 0
    ours = inference.greedy(tf_strings(samples))
    expected = [s.decode("utf-8") for s in ours["outputs"].numpy()]
    got = [texts[0] for texts in decoded.texts]
    if got != expected:
        print(f"Check FAILED: greedy outputs {got} differ from the model's {expected}")
        return 1
    print("Check: greedy outputs equal the in-process model's on sample inputs")
    return 0


def tf_strings(texts: list[str]):
    """A [batch] string tensor (TensorFlow imported only when needed)."""
    import tensorflow as tf

    return tf.constant(texts, tf.string)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2s-zoo", description=__doc__)
    parser.add_argument(
        "--verbose", action="store_true", help="keep TensorFlow's C++ start-up messages"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="decode lines from a file or stdin")
    p.add_argument("--model", required=True, help="exported version dir, e.g. exported/NAME/1")
    p.add_argument(
        "--input",
        help="one source per line (default: stdin): text, or an image/WAV file path for "
        'captioning and speech models, or a JSON object for dialogue models ({"context": '
        '[turns], "kb": [facts]})',
    )
    p.add_argument("--output", help="write here instead of stdout")
    p.add_argument("--mode", choices=["beam", "greedy"], default="beam")
    p.add_argument("--beam-size", type=int, help="per-request beam size (nbest signature)")
    p.add_argument("--n-best", type=int, help="hypotheses per input, best first")
    p.add_argument("--max-length", type=int, help="cap on output tokens (never above export's)")
    p.add_argument("--with-scores", action="store_true", help="prefix each line with its score")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--engine",
        choices=["tensorflow", "ctranslate2"],
        default="tensorflow",
        help="tensorflow: a SavedModel version dir; ctranslate2: a directory written by "
        "`export --format ctranslate2` (text models)",
    )
    p.add_argument(
        "--compute-type",
        default="default",
        help="CTranslate2 compute type, e.g. int8 (quantize at load), float32",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CTranslate2 threads per batch (0: its default; more than 1 can contend with "
        "TensorFlow's threads, which tokenize in the same process)",
    )
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("inspect", help="print signatures and the saved config")
    p.add_argument("model")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("check", help="TF Serving conformance check in a fresh process")
    p.add_argument("model")
    p.add_argument("--text", action="append", help="sample input (repeatable)")
    p.add_argument("--no-compare", action="store_true", help="only load and run, no comparison")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("align", help="draw the attention of one translation as a PNG heatmap")
    p.add_argument("--model", required=True, help="exported version dir of an attention model")
    p.add_argument("--text", required=True, help="the source sentence")
    p.add_argument("--output", default="alignment.png", help="PNG file to write")
    p.set_defaults(func=cmd_align)

    p = sub.add_parser(
        "train",
        help="train TASK with catalog MODEL (other options: see `s2s-zoo train --task T "
        "--model M --help`)",
        add_help=False,
    )
    p.add_argument("--task", required=True, help="translation, captioning, speech, ...")
    p.add_argument("--model", required=True, help="a catalog entry (`s2s-zoo models`)")
    p.add_argument("--name", help="export name (default: TASK_MODEL)")
    p.set_defaults(func=cmd_train, passes_rest=True)

    p = sub.add_parser("evaluate", help="score an exported model on a test file", add_help=False)
    p.add_argument("--model", required=True, help="exported version dir, e.g. exported/NAME/1")
    p.add_argument("--test", required=True, help="test data in the task's formats")
    p.add_argument("--task", help="default: the task recorded in the export")
    p.set_defaults(func=cmd_evaluate, passes_rest=True)

    p = sub.add_parser(
        "export",
        help="export a checkpoint as the next SavedModel version, or as a CTranslate2 model",
    )
    p.add_argument("--from", dest="source", required=True, help="checkpoint or export dir")
    p.add_argument(
        "--format",
        choices=["saved_model", "ctranslate2"],
        default="saved_model",
        help="ctranslate2: Transformer models only, written to OUT",
    )
    p.add_argument("out", nargs="?", help="output directory (--format ctranslate2)")
    p.add_argument("--export-dir", default="exported", help="export base directory")
    p.add_argument("--name", help="model name under the export base (SavedModel)")
    p.add_argument(
        "--quantization", help="CTranslate2 weight type at save time, e.g. int8, float16"
    )
    p.add_argument("--force", action="store_true", help="replace an existing CTranslate2 OUT")
    p.add_argument(
        "--no-serving-check",
        action="store_true",
        help="skip the check after export (SavedModel: TF Serving path; CTranslate2: "
        "greedy outputs against the in-process model)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("average", help="average the last K epoch checkpoints into a bundle")
    p.add_argument("--bundle", required=True, help="checkpoint or export of the same model")
    p.add_argument("--weights-dir", required=True, help="the run's --epoch-checkpoints folder")
    p.add_argument("--last", type=int, default=5, help="how many of the newest to average")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("models", help="list the model catalog with parameter counts")
    p.add_argument("--vocab", type=int, default=8000, help="vocabulary size for the counts")
    p.set_defaults(func=cmd_models)
    return parser


def quiet_tensorflow_start(init_devices: bool = True) -> None:
    """Import TensorFlow (and initialise its devices) with file descriptor 2 muted.

    TF_CPP_MIN_LOG_LEVEL does not reach the messages printed while TensorFlow loads
    (absl's pre-initialisation notice, CUDA stubs, `cuInit`, the CPU feature guard), so
    standard error is pointed at /dev/null for that one step, then restored.
    `init_devices=False` only imports: a multi-worker strategy must configure the
    collective ops before the devices are initialised ("Collective ops must be
    configured at program startup").
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow as tf

            if init_devices:
                tf.config.list_logical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _creates_a_strategy(rest: Sequence[str]) -> bool:
    """Whether the training flags ask for a distribution strategy (--strategy X, or
    --strategy=X with X other than "default")."""
    for i, arg in enumerate(rest):
        if arg == "--strategy" and i + 1 < len(rest):
            return rest[i + 1] != "default"
        if arg.startswith("--strategy="):
            return arg.split("=", 1)[1] != "default"
    return False


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if not args.verbose:
        quiet_tensorflow_start(init_devices=not _creates_a_strategy(rest))
    if getattr(args, "passes_rest", False):
        return args.func(args, rest)
    if rest:
        raise SystemExit(f"s2s-zoo {args.command}: unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
