"""Lead baselines on the Debian headline corpus: ROUGE-1/2/L of the first sentence and the
first 8 words of each long description against its synopsis, on the test split.

Any summarization model on this corpus should be compared with these numbers. The corpus is
built from apt's Translation-en index (`apt-get update -o Acquire::Languages=en` fetches it),
or read from a directory that `build_corpus` wrote before.

    python benchmarks/lead_baselines.py
    python benchmarks/lead_baselines.py --corpus-dir /tmp/debian_headlines --split valid
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from s2s_zoo.data.readers import read_pairs
from s2s_zoo.metrics import copy_rate, repeated_trigram_rate, rouge
from s2s_zoo.tasks.summarization.debian_corpus import REPORT_NAME, CorpusReport, build_corpus
from s2s_zoo.tasks.summarization.debian_index import DEFAULT_LISTS_DIR
from s2s_zoo.tasks.summarization.lead import first_sentence, first_words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus-dir", help="read (or build into) this directory")
    parser.add_argument("--lists-dir", default=str(DEFAULT_LISTS_DIR))
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--words", type=int, default=8, help="N of the lead-N-words baseline")
    args = parser.parse_args()

    corpus_dir = Path(args.corpus_dir or tempfile.mkdtemp(prefix="debian_headlines_"))
    if not (corpus_dir / f"{args.split}.tsv").exists():
        build_corpus(corpus_dir, args.lists_dir)
    report = CorpusReport(**json.loads((corpus_dir / REPORT_NAME).read_text()))
    print(f"corpus {corpus_dir}: {report.summary()}")

    pairs = read_pairs(corpus_dir / f"{args.split}.tsv").pairs
    documents = [document for document, _ in pairs]
    references = [summary for _, summary in pairs]
    print(
        f"{args.split}: {len(pairs)} pairs, median words document "
        f"{statistics.median(len(d.split()) for d in documents):g}, synopsis "
        f"{statistics.median(len(r.split()) for r in references):g}; reference copy rate "
        f"{copy_rate(documents, references):.3f}"
    )
    baselines = {
        "lead-1 sentence": [first_sentence(d) for d in documents],
        f"lead-{args.words} words": [first_words(d, args.words) for d in documents],
    }
    print(f"{'baseline':<18} {'R-1':>6} {'R-2':>6} {'R-L':>6} {'words':>6} {'rep3':>6}")
    for name, hypotheses in baselines.items():
        scores = rouge(hypotheses, references)
        words = statistics.median(len(h.split()) for h in hypotheses)
        print(
            f"{name:<18} {scores['rouge1']:6.1f} {scores['rouge2']:6.1f} {scores['rougeL']:6.1f} "
            f"{words:6g} {repeated_trigram_rate(hypotheses):6.3f}"
        )


if __name__ == "__main__":
    main()
