"""Decoding worker for benchmarks/peer_opennmt.py: one system's SavedModels, one process.

Runs under the peer's venv python (`--kind peer`: OpenNMT-tf exports, pre-tokenized
`tokens`/`length` inputs, one export per beam width) or ours (`--kind ours`: one export
with `greedy` and `beam` signatures over `inputs` strings). It loads and warms up, then
answers each `go` line on stdin with one `RESULT {json}` line on stdout: for every
search and batch size, the seconds spent in the model calls alone (inputs are built
before the clock starts) and the best outputs, regex-tokenized and joined by spaces.
Imports nothing from s2s_zoo (the peer's venv does not have it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

WORD = re.compile(r"\w+|[^\w\s]")  # the benchmark's one tokenizer, for both systems


def words(text: str) -> list[str]:
    return WORD.findall(text)


class Peer:
    """OpenNMT-tf `serving_default`: tokens [batch, time] + length [batch] -> n-best tokens."""

    def __init__(self, greedy_dir: str, beam_dir: str) -> None:
        self.calls = {
            "greedy": tf.saved_model.load(greedy_dir).signatures["serving_default"],
            "beam": tf.saved_model.load(beam_dir).signatures["serving_default"],
        }

    @staticmethod
    def inputs(batch: list[str]) -> dict:
        tokens = [words(s) or [""] for s in batch]
        width = max(len(t) for t in tokens)
        return {
            "tokens": tf.constant([t + [""] * (width - len(t)) for t in tokens], tf.string),
            "length": tf.constant([len(t) for t in tokens], tf.int32),
        }

    @staticmethod
    def outputs(result: dict) -> list[str]:  # numpy values
        tokens, lengths = result["tokens"][:, 0], result["length"][:, 0]
        # <unk> as one symbol, so that regex tokenization cannot make it three words
        return [
            " ".join(t.decode("utf-8") for t in row[:n]).replace("<unk>", "\u2047")
            for row, n in zip(tokens, lengths, strict=True)
        ]


class Ours:
    """Our export: `greedy` and `beam` signatures, `inputs` [batch] strings -> `outputs`."""

    def __init__(self, export_dir: str) -> None:
        import tensorflow_text  # noqa: F401  (SentencePiece ops of the export)

        loaded = tf.saved_model.load(export_dir)
        self.calls = {name: loaded.signatures[name] for name in ("greedy", "beam")}

    @staticmethod
    def inputs(batch: list[str]) -> dict:
        return {"inputs": tf.constant(batch, tf.string)}

    @staticmethod
    def outputs(result: dict) -> list[str]:
        return [o.decode("utf-8") for o in result["outputs"]]


def decode_all(system, search: str, batches: list[dict]) -> tuple[float, list[str]]:
    """Seconds in the model calls over all batches, and the regex-tokenized outputs."""
    call, seconds, outputs = system.calls[search], 0.0, []
    for inputs in batches:
        start = time.perf_counter()
        result = call(**inputs)
        result = {k: v.numpy() for k, v in result.items()}  # the call ends when values exist
        seconds += time.perf_counter() - start
        outputs += [" ".join(words(o)) for o in system.outputs(result)]
    return seconds, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("peer", "ours"), required=True)
    parser.add_argument("--export", help="ours: the export directory")
    parser.add_argument("--greedy", help="peer: the beam-1 export")
    parser.add_argument("--beam", help="peer: the beam-4 export")
    parser.add_argument("--sources", required=True, help="one source sentence per line")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    system = Peer(args.greedy, args.beam) if args.kind == "peer" else Ours(args.export)
    with open(args.sources, encoding="utf-8") as f:
        sources = [line.rstrip("\n") for line in f]
    plans = {
        (search, size): [system.inputs(sources[i : i + size]) for i in range(0, len(sources), size)]
        for search in ("greedy", "beam")
        for size in args.batch_sizes
    }
    for (search, _), batches in plans.items():  # warm-up: first calls of every shape class
        decode_all(system, search, batches[:2])
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        report = {}
        for (search, size), batches in plans.items():
            seconds, outputs = decode_all(system, search, batches)
            report[f"{search}/{size}"] = {"seconds": seconds, "outputs": outputs}
        print("RESULT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
