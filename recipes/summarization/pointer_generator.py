"""Headline summarization with a pointer-generator (See et al. 2017): BiLSTM encoder, LSTM
decoder with additive attention that mixes generating a token with copying one from the
document, over one SentencePiece vocabulary shared by documents and summaries.

    python recipes/summarization/pointer_generator.py          # Debian descriptions -> synopses
    python recipes/summarization/pointer_generator.py --max-minutes 10 --no-repeat-ngram-size 3
    python recipes/summarization/pointer_generator.py --train docs.jsonl --valid dev.jsonl \
        --source-field article --target-field highlights --max-source-tokens 400
    python recipes/summarization/pointer_generator.py --model-config '{"coverage": true}'

The default corpus is built (once, into --data-dir) from apt's English package
descriptions, which `apt-get update -o Acquire::Languages=en` fetches. Exports to
exported/summarization_pointer_generator/<next version>/ and prints ROUGE-1/2/L of the
exported model's greedy and beam search on the held-out split next to the lead baselines
(first sentence, first 8 words), with the copy rate and repeated-trigram rate of each, and
a few summaries. Training stops after --max-minutes (default 30; 0 = no limit) or early
stopping, whichever comes first.
"""

from s2s_zoo.inference import DecodingConfig
from s2s_zoo.training.fit import TrainConfig
from s2s_zoo.training.runner import Recipe, main

RECIPE = Recipe(
    task="summarization",
    name="summarization_pointer_generator",
    model="pointer_generator",
    train=TrainConfig(epochs=20, batch_size=64, learning_rate=2e-3, patience=2, max_minutes=30),
    decoding=DecodingConfig(
        beam_size=4,
        length_penalty=0.6,
        num_hypotheses=4,
        max_length_ratio=0.0,  # summaries do not grow with the document
        max_length_offset=40,
    ),
    options={"vocab_size": 8000, "max_source_tokens": 128, "max_target_tokens": 40},
)

if __name__ == "__main__":
    main(RECIPE, description=__doc__)
