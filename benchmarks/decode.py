"""Decoding throughput of an exported SavedModel: sentences/s and target tokens/s.

    python benchmarks/decode.py [--model exported/translation_gru_bahdanau/1]

Measures the `greedy` and `beam` signatures (the exported beam size, 4 for the
default recipe) at batch sizes 1, 8 and 32 on held-out inputs of the embedded
number task (`--sources FILE`: other inputs, e.g. a gettext test TSV). Prints numbers;
asserts nothing.

    python benchmarks/decode.py --model exported/NAME/1 --ctranslate2 ct2/NAME

also times a CTranslate2 directory of the same model (`s2s-zoo export --format
ctranslate2`), greedy and beam (the exported beam size) at the same batch sizes, its
rows printed under the SavedModel's. Both include tokenization and detokenization
(the SavedModel's in its graph, CTranslate2's through our tokenizer in eager TF).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401

from s2s_zoo.export.saved_model import existing_versions  # noqa: E402
from s2s_zoo.tasks.translation.numbers import make_number_splits  # noqa: E402

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "exported/translation_gru_bahdanau"


def latest_version(model_dir: Path) -> Path:
    versions = existing_versions(model_dir)
    if not versions:
        raise SystemExit(
            f"no exported versions in {model_dir}; run recipes/translation/gru_bahdanau.py first"
        )
    return model_dir / str(versions[-1])


def measure(signature, sources: list[str], batch_size: int, min_seconds: float) -> tuple:
    batches = [sources[i : i + batch_size] for i in range(0, len(sources), batch_size)]
    signature(inputs=tf.constant(batches[0]))  # warm-up (graph already built at load)
    sentences = tokens = 0
    start = time.perf_counter()
    while True:
        for batch in batches:
            out = signature(inputs=tf.constant(batch))
            sentences += len(batch)
            tokens += int(tf.reduce_sum(out["lengths"]).numpy()) + len(batch)  # + EOS
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and sentences >= 2 * batch_size:
                return sentences / elapsed, tokens / elapsed


def measure_ctranslate2(model, mode: str, sources: list[str], batch_size: int, min_seconds: float):
    """`measure` for a `CTranslate2Inference`: (sentences/s, tokens/s, EOS counted)."""
    batches = [sources[i : i + batch_size] for i in range(0, len(sources), batch_size)]
    decode = model.greedy if mode == "greedy" else lambda b: model.beam(b, num_hypotheses=1)
    decode(batches[0])  # warm-up
    sentences = tokens = 0
    start = time.perf_counter()
    while True:
        for batch in batches:
            out = decode(batch)
            sentences += len(batch)
            tokens += sum(len(row[0]) + 1 for row in out.ids)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and sentences >= 2 * batch_size:
                return sentences / elapsed, tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="version dir (default: latest default model)")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per setting")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument(
        "--ctranslate2", type=Path, help="also time this CTranslate2 model directory"
    )
    parser.add_argument("--compute-type", default="default", help="CTranslate2 compute type")
    parser.add_argument("--ct2-threads", type=int, default=1, help="CTranslate2 intra_threads")
    parser.add_argument(
        "--sources",
        type=Path,
        help="decode these inputs (one per line; of a TSV, the first column) instead of "
        "held-out inputs of the number task",
    )
    args = parser.parse_args()
    path = args.model or latest_version(DEFAULT_MODEL_DIR)
    loaded = tf.saved_model.load(str(path))
    if args.sources:
        lines = args.sources.read_text(encoding="utf-8").splitlines()
        sources = [line.split("\t")[0] for line in lines if line.strip()]
    else:
        sources = [s for s, _ in make_number_splits(2000, 0, 512, seed=123)["test"]]
    print(f"model: {path}")
    print(f"CPU threads: {os.cpu_count()}  tensorflow {tf.__version__}")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    ct2 = None
    if args.ctranslate2:
        from s2s_zoo.export.ctranslate2 import CTranslate2Inference

        ct2 = CTranslate2Inference(
            args.ctranslate2, compute_type=args.compute_type, intra_threads=args.ct2_threads
        )
        print(
            f"CTranslate2 model: {args.ctranslate2} (compute type {args.compute_type}, "
            f"{args.ct2_threads} threads)"
        )
    print(f"{'engine':<12} {'signature':<10} {'batch':>5} {'sentences/s':>12} {'tokens/s':>10}")
    for name in ("greedy", "beam"):
        for batch_size in batch_sizes:
            sps, tps = measure(loaded.signatures[name], sources, batch_size, args.seconds)
            row = f"{name:<10} {batch_size:>5} {sps:>12.1f} {tps:>10.1f}"
            print(f"{'savedmodel':<12} {row}", flush=True)
            if ct2 is not None:
                sps, tps = measure_ctranslate2(ct2, name, sources, batch_size, args.seconds)
                row = f"{name:<10} {batch_size:>5} {sps:>12.1f} {tps:>10.1f}"
                print(f"{'ctranslate2':<12} {row}", flush=True)


if __name__ == "__main__":
    main()
